// Package eventstore is the event log port: the types and interfaces every
// event log engine implements, and nothing else.
//
// Like database/sql it imports no driver. The embedded engine lives in
// eventstore/sqlite, the scale-out engine in eventstore/esdb, and both pass the
// contract suite in eventstore/eventstoretest.
//
// The contract, in short:
//
//   - A stream is an ordered sequence of events. The first event of a stream
//     has version 1; a stream's version is the version of its last event, and
//     0 when the stream has no events.
//   - Append is atomic (all of its events or none) and durable when it returns
//     without error: the events survive a crash of the process or the machine.
//   - Every event has a global position in the $all log. Positions start at 1,
//     increase in commit order, and a reader that has seen position N never
//     later sees a new event below N. Position 0 means "before everything".
//   - Reads and subscriptions take the position after which they start, so a
//     checkpoint is simply the position of the last event processed.
package eventstore
