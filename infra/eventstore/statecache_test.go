package eventstore_test

import (
	"fmt"
	"sync"
	"testing"

	"herald/infra/eventstore"
)

func TestStateCacheKeepsTheLatestVersion(t *testing.T) {
	c := eventstore.NewStateCache[string, string](1024)
	if _, _, ok := c.Get("a"); ok {
		t.Fatal("empty cache found a")
	}
	c.Put("a", "two", 2)
	c.Put("a", "one", 1) // older: ignored
	if got, v, ok := c.Get("a"); !ok || got != "two" || v != 2 {
		t.Errorf("after putting versions 2 then 1: %q at %d, %v; want two at 2", got, v, ok)
	}
	c.Put("a", "three", 3)
	if got, v, _ := c.Get("a"); got != "three" || v != 3 {
		t.Errorf("after version 3: %q at %d", got, v)
	}
}

func TestStateCacheIsBounded(t *testing.T) {
	c := eventstore.NewStateCache[string, int](64) // two per shard
	for i := range 10000 {
		c.Put(fmt.Sprint(i), i, 1)
	}
	held := 0
	for i := range 10000 {
		if _, _, ok := c.Get(fmt.Sprint(i)); ok {
			held++
		}
	}
	if held == 0 || held > 64 {
		t.Errorf("holds %d of 10,000 entries, want between 1 and 64", held)
	}
}

// A full cache lets its oldest entries go first: the entries added since
// are all still held, and the first ones added are gone (with an
// arbitrary victim, some of the recent ones went too).
func TestStateCacheEvictsOldestFirst(t *testing.T) {
	const size, recent = 8192, 2048
	c := eventstore.NewStateCache[string, int](size)
	for i := range size + recent {
		c.Put(fmt.Sprint(i), i, 1)
	}
	for i := size; i < size+recent; i++ {
		if _, _, ok := c.Get(fmt.Sprint(i)); !ok {
			t.Fatalf("entry %d, one of the %d added last, was evicted", i, recent)
		}
	}
	held := 0
	for i := range recent {
		if _, _, ok := c.Get(fmt.Sprint(i)); ok {
			held++
		}
	}
	// Shards fill unevenly, so a few of the oldest may remain.
	if held > recent/4 {
		t.Errorf("%d of the %d entries added first are still held", held, recent)
	}
}

func TestNilStateCacheFindsNothing(t *testing.T) {
	var c *eventstore.StateCache[string, int]
	c.Put("a", 1, 1)
	if _, _, ok := c.Get("a"); ok {
		t.Error("a nil cache found an entry")
	}
}

func TestStateCacheConcurrentUse(t *testing.T) {
	c := eventstore.NewStateCache[string, int](1 << 10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for v := 1; v <= 200; v++ {
				c.Put(fmt.Sprint(v%16), v, uint64(v))
				c.Get(fmt.Sprint(v % 16))
			}
		})
	}
	wg.Wait()
	for k := range 16 {
		got, v, ok := c.Get(fmt.Sprint(k))
		if !ok {
			t.Fatalf("key %d missing", k)
		}
		// The highest version put for key k is the largest v <= 200 with v%16 == k.
		want := 200 - (200-k)%16
		if got != want || v != uint64(want) {
			t.Errorf("key %d holds %d at version %d, want %d", k, got, v, want)
		}
	}
}
