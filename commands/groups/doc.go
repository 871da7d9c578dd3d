// Package groups is the write side and the HTTP surface of recipient
// groups and of the batches sent to them: creating a group, adding and
// removing members (one by one or by a streamed CSV / JSON lines import),
// listing members, sending to a group, approving or rejecting a batch, and
// reading a batch's status and progress.
//
// A group is the domain.Group aggregate in "group-<id>", a batch the
// domain.Batch aggregate in "batch-<id>". Commands load the stream, decide,
// and append expecting the version they decided on, retrying on a
// conflict. A send pins the group's stream version, so the fan-out
// (adapters/fanout) walks exactly the membership the batch was decided on,
// whatever changes afterwards. Groups are cached in memory by version; a
// load only reads the events appended since, so paging through 100,000
// members does not replay the group per page.
//
// The package must not: create notifications (the fan-out does, through
// the notification commands), write anything but group and batch streams,
// read configuration or the environment, or decide who is an admin (the
// caller's IsAdmin does).
package groups
