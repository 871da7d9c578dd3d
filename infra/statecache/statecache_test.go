package statecache_test

import (
	"fmt"
	"sync"
	"testing"

	"herald/infra/statecache"
)

type state struct {
	v    int
	name string
}

func (s state) Version() int { return s.v }

func TestCacheKeepsTheLatestVersion(t *testing.T) {
	c := statecache.New[string, state](1024)
	if _, ok := c.Get("a"); ok {
		t.Fatal("empty cache found a")
	}
	c.Put("a", state{2, "two"})
	c.Put("a", state{1, "one"}) // older: ignored
	if got, ok := c.Get("a"); !ok || got.name != "two" {
		t.Errorf("after putting versions 2 then 1: %+v %v, want version 2", got, ok)
	}
	c.Put("a", state{3, "three"})
	if got, _ := c.Get("a"); got.name != "three" {
		t.Errorf("after version 3: %+v", got)
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := statecache.New[string, state](64) // two per shard
	for i := range 10000 {
		c.Put(fmt.Sprint(i), state{1, ""})
	}
	held := 0
	for i := range 10000 {
		if _, ok := c.Get(fmt.Sprint(i)); ok {
			held++
		}
	}
	if held == 0 || held > 64 {
		t.Errorf("holds %d of 10,000 entries, want between 1 and 64", held)
	}
}

func TestNilCacheFindsNothing(t *testing.T) {
	var c *statecache.Cache[string, state]
	c.Put("a", state{1, ""})
	if _, ok := c.Get("a"); ok {
		t.Error("a nil cache found an entry")
	}
}

func TestCacheConcurrentUse(t *testing.T) {
	c := statecache.New[string, state](1 << 10)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for v := 1; v <= 200; v++ {
				c.Put(fmt.Sprint(v%16), state{v, fmt.Sprint(w)})
				c.Get(fmt.Sprint(v % 16))
			}
		})
	}
	wg.Wait()
	for k := range 16 {
		got, ok := c.Get(fmt.Sprint(k))
		if !ok {
			t.Fatalf("key %d missing", k)
		}
		// The highest version put for key k is the largest v <= 200 with v%16 == k.
		want := 200 - (200-k)%16
		if got.v != want {
			t.Errorf("key %d holds version %d, want %d", k, got.v, want)
		}
	}
}
