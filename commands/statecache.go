package commands

import (
	"hash/maphash"
	"sync"

	"herald/domain"
)

// stateCacheSize bounds the notifications whose state the handlers keep
// between commands. The dispatcher's attempt and outcome follow a send by
// milliseconds to seconds, so a recent window is what pays.
const stateCacheSize = 1 << 16

// stateCache keeps the latest state the handlers appended or loaded for a
// notification, so the next command reads only the events appended since
// (usually none) instead of the whole stream and decodes nothing twice. It
// is only a starting point: appends still name the version they decided
// on, so a stale entry costs a conflict and a reload, never a wrong
// decision. Entries are never ahead of the log: only states read from it
// or appended to it are stored. Safe for concurrent use; states are values
// that evolve never modifies in place.
type stateCache struct {
	seed   maphash.Seed
	shards [32]stateShard
}

type stateShard struct {
	mu sync.Mutex
	m  map[domain.NotificationID]domain.Notification
}

func newStateCache() *stateCache {
	c := &stateCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[domain.NotificationID]domain.Notification)
	}
	return c
}

func (c *stateCache) shard(id domain.NotificationID) *stateShard {
	return &c.shards[maphash.String(c.seed, string(id))%uint64(len(c.shards))]
}

// get returns the cached state of id, or the zero Notification.
func (c *stateCache) get(id domain.NotificationID) domain.Notification {
	if c == nil {
		return domain.Notification{}
	}
	s := c.shard(id)
	s.mu.Lock()
	n := s.m[id]
	s.mu.Unlock()
	return n
}

// put stores n unless the cache already holds a later version of it.
func (c *stateCache) put(n domain.Notification) {
	if c == nil || !n.Exists() {
		return
	}
	s := c.shard(n.ID())
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[n.ID()]; ok && old.Version() >= n.Version() {
		return
	}
	if len(s.m) >= stateCacheSize/len(c.shards) {
		for k := range s.m { // evict an arbitrary entry
			delete(s.m, k)
			break
		}
	}
	s.m[n.ID()] = n
}
