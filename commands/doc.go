// Package commands is Herald's write side: one handler per command (send,
// batch send, cancel, resend, record receipt) and the command HTTP endpoints.
//
// Every handler follows the same loop: load the notification stream, decide
// with the pure domain, append the resulting events with the stream version
// it decided on as the expected version, and on a version conflict reload
// and decide again, a bounded number of times. Nothing here keeps state
// between requests: the event log is the only truth, which is what makes
// idempotency keys hold forever and across restarts.
//
// It imports only the standard library, chi, google/uuid, domain and the
// event store port (never a driver). It does no authentication: the
// composition root passes middleware and a function naming the caller in
// HTTPOptions. It must not read views or projections: a command decides on
// the log alone.
package commands
