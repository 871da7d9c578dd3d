package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"herald/infra/eventstore"
	"herald/infra/eventstore/eventstoretest"
	"herald/infra/eventstore/sqlite"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) (eventstore.Store, func(t *testing.T) eventstore.Store) {
		path := filepath.Join(t.TempDir(), "events.db")
		open := func(t *testing.T) eventstore.Store {
			t.Helper()
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatalf("open %s: %v", path, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(t), open
	})
}

// TestLargeAppendManyWhileGroupWaits is a regression test: a group commit
// waiting for the callers of the previous group must still take, write and
// answer an AppendMany that alone fills the batch.
func TestLargeAppendManyWhileGroupWaits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ev := func() eventstore.EventData { return eventstoretest.NewEvent("T", map[string]int{"n": 1}) }
	// Callers appending all along keep the writer waiting for the rest of
	// each group, so the large requests arrive while it waits.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Append(ctx, fmt.Sprintf("busy-%d-%d", i, n), eventstore.NoStream, ev()); err != nil {
					t.Error(err)
					return
				}
			}
		}(i)
	}
	defer func() { close(stop); wg.Wait() }()
	for round := 0; round < 20; round++ {
		reqs := make([]eventstore.AppendRequest, 1030)
		for i := range reqs {
			reqs[i] = eventstore.AppendRequest{Stream: fmt.Sprintf("big-%d-%d", round, i), Expected: eventstore.NoStream, Events: []eventstore.EventData{ev(), ev()}}
		}
		done := make(chan []error, 1)
		go func() { _, errs := s.AppendMany(ctx, reqs); done <- errs }()
		select {
		case errs := <-done:
			for i, err := range errs {
				if err != nil {
					t.Fatalf("round %d item %d: %v", round, i, err)
				}
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: AppendMany of 2,060 events never answered", round)
		}
	}
}
