package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"herald/infra/eventstore"
	"herald/infra/eventstore/eventstoretest"
	"herald/infra/eventstore/sqlite"
)

func TestContract(t *testing.T) {
	// The default tail, one so small that reads keep crossing from memory
	// to SQLite, and none.
	for _, tc := range []struct {
		name string
		tail int
	}{{"", 0}, {"TinyTail", 5}, {"NoTail", -1}} {
		run := func(t *testing.T) {
			eventstoretest.Run(t, func(t *testing.T) (eventstore.Store, func(t *testing.T) eventstore.Store) {
				path := filepath.Join(t.TempDir(), "events.db")
				open := func(t *testing.T) eventstore.Store {
					t.Helper()
					s, err := sqlite.Open(t.Context(), path, sqlite.Options{TailEvents: tc.tail})
					if err != nil {
						t.Fatalf("open %s: %v", path, err)
					}
					t.Cleanup(func() { s.Close() })
					return s
				}
				return open(t), open
			})
		}
		if tc.name == "" {
			run(t)
		} else {
			t.Run(tc.name, run)
		}
	}
}

// TestTailReadsEqualSQLiteReads compares what ReadAll gives from the tail
// with what the same events read back from SQLite give, field by field,
// while two Stores on one file (as two processes) take turns appending.
func TestTailReadsEqualSQLiteReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	a, err := sqlite.Open(ctx, path, sqlite.Options{TailEvents: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path, sqlite.Options{TailEvents: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	plain, err := sqlite.Open(ctx, path, sqlite.Options{TailEvents: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	// The tail is kept while a Store has subscribers.
	for _, s := range []*sqlite.Store{a, b} {
		sub, err := s.Subscribe(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
	}

	for round := range 30 {
		w := a
		if round%4 == 3 {
			w = b // another writer: a's tail must not paper over its events
		}
		evs := make([]eventstore.EventData, 1+round%3)
		for i := range evs {
			evs[i] = eventstoretest.NewEvent("T", map[string]int{"round": round, "i": i})
			evs[i].Metadata = eventstore.Metadata{CorrelationID: "c", CausationID: fmt.Sprint(round), Actor: "tester"}
			evs[i].SchemaVersion = 1 + round%2
			if i == 1 {
				evs[i].Data = nil // stored and read back as null
			}
		}
		buf := evs[0].Data
		if _, err := w.Append(ctx, fmt.Sprintf("s-%d", round%5), eventstore.Any, evs...); err != nil {
			t.Fatal(err)
		}
		if len(buf) > 0 {
			buf[0] = 'X' // the caller reuses its buffer: what was logged stays
		}

		want, err := plain.ReadAll(ctx, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []*sqlite.Store{a, b} {
			for after := range len(want) + 1 {
				got, err := s.ReadAll(ctx, eventstore.Position(after), 7)
				if err != nil {
					t.Fatal(err)
				}
				exp := want[after:min(len(want), after+7)]
				if len(got) == 0 && len(exp) > 0 {
					t.Fatalf("round %d: read after %d gave nothing, want %d events", round, after, len(exp))
				}
				for i := range got {
					if !reflect.DeepEqual(got[i], exp[i]) {
						t.Fatalf("round %d, read after %d, event %d:\n got %+v\nwant %+v", round, after, i, got[i], exp[i])
					}
				}
			}
		}
	}
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

// TestCreateOfExistingStreamNotInCache covers the writer's fast path for
// appends expecting no stream: it skips the version lookup and lets the
// (stream, version) index catch a stream that exists. After a reopen the
// writer's cache is empty, so an existing stream takes that path; it must
// be refused alone, with its real version, while the fresh streams
// appended in the same group commits succeed.
func TestCreateOfExistingStreamNotInCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev := func() eventstore.EventData { return eventstoretest.NewEvent("T", map[string]int{"n": 1}) }
	for i := range 8 {
		if _, err := s.Append(ctx, fmt.Sprintf("old-%d", i), eventstore.NoStream, ev(), ev()); err != nil {
			t.Fatal(err)
		}
	}
	head, _ := s.Head(ctx)
	s.Close()

	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	positions := map[eventstore.Position]bool{}
	for w := range 32 {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := range 20 {
				stream, existing := fmt.Sprintf("new-%d-%d", w, n), false
				if n%5 == 0 && w < 8 {
					stream, existing = fmt.Sprintf("old-%d", w), true
				}
				res, err := s.Append(ctx, stream, eventstore.NoStream, ev())
				if existing {
					var wv *eventstore.WrongVersionError
					if !errors.As(err, &wv) || wv.Actual != 2 {
						t.Errorf("create of existing %s: %v, want a wrong version error with actual 2", stream, err)
					}
					continue
				}
				if err != nil || res.Version != 1 {
					t.Errorf("create of %s: %+v, %v", stream, res, err)
					continue
				}
				mu.Lock()
				positions[res.Position] = true
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	// No holes: every position after the old head belongs to an accepted
	// create, and the log reads back the same.
	evs, err := s.ReadAll(ctx, head, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(positions) {
		t.Fatalf("log holds %d new events, %d creates were acknowledged", len(evs), len(positions))
	}
	for i, e := range evs {
		if e.Position != head+eventstore.Position(i+1) || !positions[e.Position] || e.Version != 1 {
			t.Fatalf("event %d: position %d version %d (acknowledged %v)", i, e.Position, e.Version, positions[e.Position])
		}
	}
	for i := range 8 {
		recs, err := s.ReadStream(ctx, fmt.Sprintf("old-%d", i), 0, 10)
		if err != nil || len(recs) != 2 {
			t.Fatalf("old-%d: %d events, %v", i, len(recs), err)
		}
	}
}

// TestStreamVersionsWithoutTheReader checks the stream-by-stream fallback of
// eventstore.StreamVersions against this store's one-query answer.
func TestStreamVersionsWithoutTheReader(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var streams []string
	for i := range 10 {
		stream := fmt.Sprintf("s-%d", i)
		streams = append(streams, stream)
		if i%3 == 0 {
			continue // never written
		}
		evs := make([]eventstore.EventData, i)
		for j := range evs {
			evs[j] = eventstoretest.NewEvent("T", map[string]int{"n": j})
		}
		if _, err := s.Append(ctx, stream, eventstore.NoStream, evs...); err != nil {
			t.Fatal(err)
		}
	}
	type plainStore struct{ eventstore.Store } // hides StreamVersions
	one, err := eventstore.StreamVersions(ctx, s, streams)
	if err != nil {
		t.Fatal(err)
	}
	each, err := eventstore.StreamVersions(ctx, plainStore{s}, streams)
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 6 || !maps.Equal(one, each) {
		t.Fatalf("one query: %v; stream by stream: %v; want the 6 written streams in both", one, each)
	}
	for i, stream := range streams {
		if v, ok := one[stream]; ok != (i%3 != 0) || (ok && v != uint64(i)) {
			t.Errorf("%s: version %d, present %v", stream, v, ok)
		}
	}
}
