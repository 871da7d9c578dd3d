// Package esdb is the scale-out event log: an eventstore.Store on an
// EventStoreDB server or cluster, through the gRPC client
// github.com/EventStore/EventStore-Client-Go/v4/esdb.
//
// It translates the port onto EventStoreDB and must not add semantics the
// server does not give: no local caches of stream versions, no second log.
//
// # Versions and revisions
//
// Port versions start at 1 (the first event of a stream is version 1, an empty
// stream is at version 0); EventStoreDB revisions start at 0. So an event's
// version is its revision + 1, Exactly(0) and NoStream become esdb.NoStream,
// Exactly(n) becomes esdb.Revision(n-1) and Any becomes esdb.Any.
//
// # Positions
//
// The port's Position is the event's commit position in $all. On EventStoreDB
// 20+ an append outside an explicit transaction (the only kind the gRPC API
// and this package write) stores every event as its own committed prepare
// record, and the server reports commit == prepare == that record's log
// position. Positions are therefore byte offsets in the transaction log:
// strictly increasing in commit order, never reused, but sparse — there are
// holes between consecutive events, and system events ("$"-typed, hidden from
// this store) sit in some of them. Callers may rely only on order, never on
// density. Events written elsewhere inside an explicit (TCP-era) transaction
// share one commit position; this package does not support them.
//
// A position handed to ReadAll or Subscribe must be 0, a position this engine
// returned (an event's, an append's or Head's), or one beyond the end of the
// log. Any other value may fall inside a log record, and what the server does
// with that is not defined. Values above math.MaxInt64 are answered locally:
// no EventStoreDB log position is that large.
//
// # Envelope
//
// The event id is the EventStoreDB event id (the port's id must therefore be
// a UUID in canonical form). Type and data map to the event type and JSON
// data. The rest of the envelope travels in the user metadata JSON:
// "$correlationId" and "$causationId" (the names EventStoreDB's own
// projections understand), "actor", "schemaVersion", and "recordedAt", the
// time this store accepted the append (RFC 3339, UTC). recordedAt is read back
// as RecordedEvent.RecordedAt so that an event keeps its time across migration
// between engines; events written by other tools fall back to the server's
// created date.
//
// Stream names must be valid UTF-8 and must not start with "$", event types
// must be valid UTF-8 and must not start with "$": both would otherwise be
// changed by the server or hidden as system data. They are refused with
// eventstore.ErrInvalidEvent.
//
// # What EventStoreDB does differently from the embedded engine
//
//   - AppendMany is not one transaction: EventStoreDB has none across
//     streams. Each request is an ordinary Append of its own, run
//     concurrently (at most WithAppendConcurrency at a time), each with its own
//     result or error, exactly as the port allows.
//   - The server treats a re-sent append with the same event ids and expected
//     revision as already done (idempotent write) instead of a conflict.
//   - An append whose context ends while the request is in flight may still
//     land. Append then looks for its last event once (a short read that does
//     not use the ended context) and reports success if it is there; a server
//     that commits even later than that look is a window this package cannot
//     close.
//   - Subscriptions are EventStoreDB catch-up subscriptions to $all with the
//     server-side exclude-system-events filter. When the server drops one, it
//     is re-opened from the last position handed to the caller, after a
//     growing delay, so the caller sees no gap and no duplicate.
//   - Competing consumers (ConsumerGroup) are EventStoreDB persistent
//     subscriptions: at-least-once, with server-side retries and parking.
package esdb
