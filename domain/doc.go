// Package domain holds Herald's notification ledger model: the Notification
// aggregate, its events and commands, the value types they are made of
// (channels, priorities, statuses, recipients, content) and request
// validation.
//
// Deciding and evolving are pure functions. DecideNotification turns the
// current state and a command into new events or a domain error;
// EvolveNotification folds one event into a new state. Everything the logic
// needs from the outside world (the current time, identifiers, addresses
// resolved from recipient profiles) travels in the command, so the same
// inputs always give the same outputs and any state can be rebuilt by
// replaying a stream.
//
// The package must not: read the clock, generate identifiers, do I/O, log,
// read configuration, keep global mutable state, import anything outside the
// standard library (not even other Herald packages), or know about HTTP.
// Its errors are sentinels and small structs that callers translate at their
// own boundary.
package domain
