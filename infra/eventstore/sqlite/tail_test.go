package sqlite

import (
	"testing"

	"herald/infra/eventstore"
)

func events(positions ...eventstore.Position) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, len(positions))
	for i, p := range positions {
		out[i].Position = p
	}
	return out
}

func TestTailKeepsOneRunWithoutHoles(t *testing.T) {
	tl := newTail(4)
	tl.add(events(1, 2, 3))
	if evs, ok := tl.read(1, 10); !ok || len(evs) != 2 || evs[0].Position != 2 {
		t.Fatalf("read after 1: %v %v", evs, ok)
	}
	tl.add(events(4, 5)) // over the bound: the oldest go
	if _, ok := tl.read(0, 10); ok {
		t.Error("position 1 still held past the bound")
	}
	if evs, ok := tl.read(3, 10); !ok || len(evs) != 2 || evs[1].Position != 5 {
		t.Fatalf("read after 3: %v %v", evs, ok)
	}
	tl.add(events(9)) // not after 5: the run starts over
	if _, ok := tl.read(4, 10); ok {
		t.Error("read across a gap answered from the tail")
	}
	tl.add(events(10, 12)) // a hole inside: nothing is kept
	if _, ok := tl.read(8, 10); ok {
		t.Error("tail kept a batch with a hole")
	}
	if _, ok := tl.read(5, 10); ok {
		t.Error("read past what is held answered from the tail")
	}
}
