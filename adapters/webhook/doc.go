// Package webhook delivers notifications to generic HTTP endpoints: one
// JSON POST per attempt to the delivery's address, signed as the Standard
// Webhooks specification describes (webhook-id, webhook-timestamp,
// webhook-signature), so a receiver can authenticate the call and drop the
// duplicates that at-least-once delivery produces. Verify is the receiver's
// half of the scheme.
//
// The package classifies each answer into a channel.Failure and nothing
// more: it does not retry, schedule, or record events (the dispatcher does),
// it never follows redirects, and it only reaches the network through the
// SSRF-guarded client it is configured with. Signing secrets and the
// address's path and query never appear in a Failure's Reason or error.
package webhook
