package commands

import (
	"herald/domain"
	"herald/infra/eventstore"
)

// stateCacheSize bounds the notifications whose state the handlers keep
// between commands. The dispatcher's attempt and outcome follow a send by
// milliseconds, so a short recent window is what pays; an older
// notification's state (a retry's, a receipt's, a resend's) is read from
// its stream. The states are a large part of a serving process's live
// heap, which every collection marks: 65,536 of them made the heap of the
// api benchmarks 401 to 484 MB live, 16,384 made it 272 to 334 MB. 16,384
// against 2,048, interleaved (the projections' caches at 2,048 too):
// e2e_webhook at 2,000/s p99 20, 15, 51, 18, 29 and 15 ms against 16, 18,
// 13, 13, 13 and 18 ms; api_send 10,393 and 12,238 requests/s against
// 14,921 and 13,016; api_batch 24,406 and 31,496 notifications/s against
// 33,621 and 36,922.
const stateCacheSize = 1 << 11

// stateCache keeps the latest state the handlers appended or loaded for a
// notification, so the next command decides on it without reading the
// stream (see execute). It is only a starting point: appends still name the
// version they decided on, so a stale entry costs a conflict and a reload,
// never a wrong decision. Entries are never ahead of the log: only states
// read from it or appended to it are stored. The methods of a nil
// *stateCache do nothing.
type stateCache struct {
	c *eventstore.StateCache[domain.NotificationID, domain.Notification]
}

func newStateCache() *stateCache {
	return &stateCache{c: eventstore.NewStateCache[domain.NotificationID, domain.Notification](stateCacheSize)}
}

// get returns the cached state of id, or the zero Notification.
func (c *stateCache) get(id domain.NotificationID) domain.Notification {
	if c == nil {
		return domain.Notification{}
	}
	n, _, _ := c.c.Get(id)
	return n
}

// put stores n unless the cache already holds a later version of it.
func (c *stateCache) put(n domain.Notification) {
	if c == nil || !n.Exists() {
		return
	}
	c.c.Put(n.ID(), n, uint64(n.Version()))
}
