// Package dispatcher delivers what the ledger owes, at least once.
//
// At start it reads the pending deliveries (planned, retry scheduled, or in
// flight with a lease) from the notifications projection through
// projections.DeliveryBacklog, then follows the event log after that
// projection's checkpoint, so a restart neither forgets a delivery nor
// replays the whole log. Work waits in per-channel priority lanes (high,
// normal, low, picked by smooth weighted round robin so high goes first and
// low never starves) and in a timer heap for retries that are not due.
//
// The lanes are a watermill message.Subscriber, and every channel is one
// handler on a watermill Router (correlation id, recoverer, timeout and
// Prometheus middleware); the subscriber hands a channel at most its
// Concurrency deliveries at a time, and a token bucket per channel enforces
// its Rate. On the channels where every address is an account of its own
// (a webhook endpoint, a chat robot, a push subscription) at most
// AddressConcurrency of them go to one address at once, so a receiver that
// hangs holds only that share of the workers, and a provider's 429 or
// Retry-After pauses that address only; on the other channels it pauses
// the channel.
//
// An attempt is: StartAttempt through commands (DeliveryAttempted with a
// lease: another worker may take over only after it ends), Send with the
// delivery's stable idempotency key, then RecordOutcome (succeeded, or
// failed with the retry the channel's RetryPolicy chose, or dead-lettered).
// Expired notifications get NotificationExpired instead of an attempt;
// cancelled ones are skipped. The dispatcher never writes events or views
// itself, and never decides a status: the domain does.
//
// Shutdown: when Run's context ends the lanes stop handing out work, the
// attempts in flight finish (bounded by CloseTimeout) and record their
// outcomes, and Run returns nil.
package dispatcher
