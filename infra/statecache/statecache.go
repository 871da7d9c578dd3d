// Package statecache keeps, in memory, the latest state computed for many
// event-sourced aggregates (or the folds of their streams), so that the
// next command or the next projected batch starts from it instead of
// reading and folding the stream again.
//
// A state at version v is the fold of its stream's first v events: the
// same whoever computed it, committed or not. A reader uses an entry only
// when its version is the one it needs (the command's append then names
// that version; a projection needs the version just before the batch's
// first event of that stream), so a missing or older entry costs a read,
// never a wrong answer.
package statecache

import (
	"hash/maphash"
	"sync"
)

// Versioned is a state that knows the stream version it was folded up to.
type Versioned interface{ Version() int }

const shards = 32

// Cache maps keys to the highest-version state put for them, holding at
// most about its size in entries (past that, an arbitrary entry of the
// same shard goes). Safe for concurrent use. The states are shared between
// the callers: they must be values nobody modifies in place. The methods of
// a nil *Cache do nothing (Get finds nothing).
type Cache[K ~string, V Versioned] struct {
	seed     maphash.Seed
	perShard int
	shards   [shards]shard[K, V]
}

type shard[K ~string, V Versioned] struct {
	mu sync.Mutex
	m  map[K]V
}

// New returns a Cache holding about size entries (at least one per shard).
func New[K ~string, V Versioned](size int) *Cache[K, V] {
	c := &Cache[K, V]{seed: maphash.MakeSeed(), perShard: max(1, size/shards)}
	for i := range c.shards {
		c.shards[i].m = make(map[K]V)
	}
	return c
}

func (c *Cache[K, V]) shard(k K) *shard[K, V] {
	return &c.shards[maphash.String(c.seed, string(k))%shards]
}

// Get returns the state held for k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.m[k]
	s.mu.Unlock()
	return v, ok
}

// Put holds v for k unless a state of a later version is held already.
func (c *Cache[K, V]) Put(k K, v V) {
	if c == nil {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok {
		if old.Version() >= v.Version() {
			return
		}
	} else if len(s.m) >= c.perShard {
		for victim := range s.m { // evict an arbitrary entry
			delete(s.m, victim)
			break
		}
	}
	s.m[k] = v
}
