package commands

import (
	"herald/domain"
	"herald/infra/eventstore"
)

// stateCacheSize bounds the notifications whose state the handlers keep
// between commands. The dispatcher's attempt and outcome follow a send by
// milliseconds to seconds, so a recent window is what pays; an older
// notification's state is read from its stream. The states are a large
// part of a serving process's live heap, whose size the collector's mark
// phases grow with: 65,536 of them made the heap of the api benchmarks
// 401 to 484 MB live, 16,384 made it 272 to 334 MB, and requests went
// faster (api_send 10,014 / 10,017 / 10,399 requests/s against 10,578 /
// 11,984 / 12,489; api_batch 25,165 / 29,996 / 27,120 notifications/s
// against 28,946 / 34,010 / 33,966), with e2e_webhook unchanged.
const stateCacheSize = 1 << 14

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
