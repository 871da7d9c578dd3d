// Package fanout is the role that turns an accepted or approved batch into
// one ordinary notification per recipient.
//
// It follows the event log from position 0 (the batch streams are the
// only state it needs; it keeps a small in-memory set of batches still to
// do), so unfinished batches are recovered at start whatever happened
// before. For each runnable batch it walks the recipients in the batch's
// fixed order (the group's members at the pinned version, sorted, or the
// explicit list) from the recorded cursor, in chunks: each chunk goes to
// the Sender as items whose idempotency keys are domain.BatchItemKey, and
// only then is FanOutProgressed appended. A crash between the two redoes
// the chunk, and the keys make the redone sends find the notifications of
// the first try instead of creating new ones: nobody is notified twice.
//
// It must not create notifications other than through the Sender, append
// anything but FanOutProgressed and BatchCompleted, or keep state that the
// log cannot rebuild.
package fanout
