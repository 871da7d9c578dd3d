// Package commands will hold one handler per command (send, batch send,
// cancel, resend, record receipt, ...): load the stream, decide with the pure
// domain, append with the expected version, retry on conflict; and the
// command HTTP endpoints.
//
// It imports only domain and the event store port. Nothing here yet: the
// command side is issue 3.
package commands
