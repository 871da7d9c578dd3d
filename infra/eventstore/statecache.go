package eventstore

import (
	"hash/maphash"
	"sync"
)

// StateCache keeps, in memory, the latest state a reader folded from each
// of many streams, with the stream version it folded up to, so that the
// next command or the next projected batch starts from it instead of
// reading and folding the stream again.
//
// A state folded up to version v is the fold of its stream's first v
// events: the same whoever computed it, committed or not. A reader uses an
// entry only when its version is the one it needs (a projection, the
// version just before its batch's first event of that stream), or as a
// guess that something else checks (a command's append names the version
// it decided on), so a missing or older entry costs a read, never a wrong
// answer.
//
// It holds at most about its size in entries and is safe for concurrent
// use. Past its size, the entry of the same shard that was added first
// goes: the states worth keeping are the recent ones (a notification's
// attempt and outcome follow its request), and with an arbitrary victim
// an entry outlived n later additions only with a chance of about
// e^(-n/size): a backlog half the cache's size lost two in five.
//
// States are shared between callers: they must be values nobody modifies
// in place. The methods of a nil *StateCache do nothing (Get finds
// nothing).
type StateCache[K ~string, S any] struct {
	seed     maphash.Seed
	perShard int
	shards   [stateShards]stateShard[K, S]
}

const stateShards = 32

type stateShard[K ~string, S any] struct {
	mu sync.Mutex
	m  map[K]versioned[S]
	// order holds the shard's keys in the order they were added, as a
	// ring once full: order[next] is the oldest.
	order []K
	next  int
}

type versioned[S any] struct {
	state   S
	version uint64
}

// NewStateCache returns a StateCache holding about size entries (at least
// one per shard).
func NewStateCache[K ~string, S any](size int) *StateCache[K, S] {
	c := &StateCache[K, S]{seed: maphash.MakeSeed(), perShard: max(1, size/stateShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[K]versioned[S])
	}
	return c
}

func (c *StateCache[K, S]) shard(k K) *stateShard[K, S] {
	return &c.shards[maphash.String(c.seed, string(k))%stateShards]
}

// Get returns the state held for k and the stream version it was folded
// up to.
func (c *StateCache[K, S]) Get(k K) (state S, version uint64, ok bool) {
	if c == nil {
		return state, 0, false
	}
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.m[k]
	s.mu.Unlock()
	return e.state, e.version, ok
}

// Put holds state, folded up to version, for k unless a state of a later
// version is held already.
func (c *StateCache[K, S]) Put(k K, state S, version uint64) {
	if c == nil {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok {
		if old.version >= version {
			return
		}
	} else if len(s.order) < c.perShard {
		s.order = append(s.order, k)
	} else {
		delete(s.m, s.order[s.next])
		s.order[s.next] = k
		s.next = (s.next + 1) % len(s.order)
	}
	s.m[k] = versioned[S]{state, version}
}
