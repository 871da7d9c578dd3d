package eventstoretest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/infra/eventstore"
)

// testRacingWritersOnOneStream has many writers race for the same stream with
// Exactly(v): each version must go to exactly one of them.
func testRacingWritersOnOneStream(t *testing.T, open Opener) {
	const (
		racers    = 32
		winsEach  = 3   // a racer stops after winning this many times
		maxRounds = 400 // or after this many attempts
	)
	f := newFixture(t, open)
	stream := f.stream("contended")

	type win struct {
		id      string
		version uint64
	}
	var (
		mu     sync.Mutex
		wins   []win
		lost   []string // ids of the losers' events
		losses atomic.Int64
		wg     sync.WaitGroup
		start  = make(chan struct{})
	)
	for r := range racers {
		wg.Go(func() {
			<-start
			var seen uint64 // this racer's view of the stream version
			won := 0
			for round := 0; round < maxRounds && won < winsEach; round++ {
				evs, err := f.store.ReadStream(t.Context(), stream, seen, 1000)
				switch {
				case errors.Is(err, eventstore.ErrStreamNotFound) && seen == 0:
				case err != nil:
					t.Errorf("racer %d: read %s after %d: %v", r, stream, seen, err)
					return
				case len(evs) > 0:
					seen = evs[len(evs)-1].Version
				}
				ev := NewEvent("Claimed", map[string]int{"racer": r, "round": round})
				expected := eventstore.Exactly(seen)
				res, err := f.store.Append(t.Context(), stream, expected, ev)
				if err == nil {
					if res.Version != seen+1 {
						t.Errorf("racer %d: append with %s gave version %d, want %d", r, expected, res.Version, seen+1)
					}
					mu.Lock()
					wins = append(wins, win{ev.ID, res.Version})
					mu.Unlock()
					won++
					seen = res.Version
					continue
				}
				mu.Lock()
				lost = append(lost, ev.ID)
				mu.Unlock()
				losses.Add(1)
				var wv *eventstore.WrongVersionError
				if !errors.Is(err, eventstore.ErrWrongExpectedVersion) || !errors.As(err, &wv) {
					t.Errorf("racer %d: losing append: %v (%T), want a *WrongVersionError", r, err, err)
					return
				}
				if wv.Stream != stream || wv.Expected != expected || wv.Actual <= seen {
					t.Errorf("racer %d: expected %s, got wrong version error {%q, %s, actual %d}: the stream cannot have been at or below %d",
						r, expected, wv.Stream, wv.Expected, wv.Actual, seen)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}

	got := readStream(t, f.store, stream)
	if len(got) != len(wins) {
		t.Fatalf("stream has %d events, but %d appends succeeded", len(got), len(wins))
	}
	if len(got) == 0 {
		t.Fatal("no append succeeded")
	}
	byID := make(map[string]uint64, len(wins))
	for _, w := range wins {
		if _, dup := byID[w.id]; dup {
			t.Errorf("event %s won twice", w.id)
		}
		byID[w.id] = w.version
	}
	for i, e := range got {
		if e.Version != uint64(i+1) {
			t.Errorf("event %d of the stream has version %d", i, e.Version)
		}
		v, ok := byID[e.ID]
		if !ok {
			t.Errorf("version %d is event %s, which no successful append wrote", e.Version, e.ID)
			continue
		}
		if v != e.Version {
			t.Errorf("event %s is version %d, but its append reported version %d", e.ID, e.Version, v)
		}
		delete(byID, e.ID)
	}
	assertNotInAll(t, f.store, f.head, lost...)
	t.Logf("%d versions, %d lost races", len(got), losses.Load())
}

// testManyStreamsConcurrently has many writers create many streams at once.
func testManyStreamsConcurrently(t *testing.T, open Opener) {
	const writers, streamsEach = 64, 50
	f := newFixture(t, open)
	type created struct {
		stream string
		evs    []eventstore.EventData
		res    eventstore.AppendResult
	}
	var (
		mu  sync.Mutex
		all []created
		wg  sync.WaitGroup
	)
	// Large pages, as a projection rebuild reads them.
	tail := startTailer(t, f.store, f.head, 2000)
	for w := range writers {
		wg.Go(func() {
			for i := range streamsEach {
				stream := f.stream(fmt.Sprintf("w%d-s%d", w, i))
				evs := newEvents("Queued", 1+(w+i)%3)
				res, err := f.store.Append(t.Context(), stream, eventstore.NoStream, evs...)
				if err != nil {
					t.Errorf("append to new stream %s: %v", stream, err)
					return
				}
				mu.Lock()
				all = append(all, created{stream, evs, res})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(all) != writers*streamsEach {
		t.Fatalf("%d streams created, want %d", len(all), writers*streamsEach)
	}
	h := head(t, f.store)
	tailed := tail.finish(t, h)
	log := readAll(t, f.store, f.head, h, 100)
	assertSameEvents(t, "tailer reading pages of 2000 while appends committed", tailed, log)
	assertSameEvents(t, "read of $all in pages of 5000", readAll(t, f.store, f.head, h, 5000), log)

	// Read them back concurrently too.
	work := make(chan created)
	for range 8 {
		wg.Go(func() {
			for c := range work {
				got := assertStreamNoFatal(t, f.store, c.stream, c.evs)
				if got != nil {
					assertResult(t, c.stream, c.res, got, uint64(len(c.evs)))
				}
			}
		})
	}
	for _, c := range all {
		work <- c
	}
	close(work)
	wg.Wait()
}

// assertStreamNoFatal is assertStream for use outside the test's goroutine.
func assertStreamNoFatal(t *testing.T, s eventstore.Store, stream string, want []eventstore.EventData) []eventstore.RecordedEvent {
	t.Helper()
	got, err := s.ReadStream(t.Context(), stream, 0, len(want)+1)
	if err != nil {
		t.Errorf("read stream %s: %v", stream, err)
		return nil
	}
	if len(got) != len(want) {
		t.Errorf("stream %s has %d events, want %d", stream, len(got), len(want))
		return nil
	}
	for i, e := range got {
		if e.Stream != stream || e.Version != uint64(i+1) {
			t.Errorf("event %d of %s: stream %q version %d", i, stream, e.Stream, e.Version)
		}
		if err := sameEnvelope(e, want[i]); err != nil {
			t.Error(err)
		}
	}
	return got
}

// testAllOrder checks the $all log after concurrent appends: commit order, no
// gaps, each append's events together, each stream in version order. A reader
// tails the log while the writers run and must see the same log as a reader
// that comes after them: no gap it saw was filled later.
func testAllOrder(t *testing.T, open Opener, opts Options) {
	const (
		writers  = 12
		appends  = 15
		pageSize = 7 // small, so that pages split appends
	)
	f := newFixture(t, open)

	type landed struct {
		stream     string
		ids        []string
		res        eventstore.AppendResult
		start, end int64 // logical clock: start >= other.end means other returned first
	}
	var (
		clock atomic.Int64
		mu    sync.Mutex
		all   []landed
		wg    sync.WaitGroup
	)
	tail := startTailer(t, f.store, f.head, pageSize)

	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				// Each writer has streams of its own and shares four
				// with everyone, so that appends to one stream race.
				stream := f.stream(fmt.Sprintf("own-%d-%d", w, i%2))
				if i%3 == 0 {
					stream = f.stream(fmt.Sprintf("shared-%d", (w+i)%4))
				}
				evs := newEvents("Ordered", 1+(w+i)%3)
				start := clock.Load()
				res, err := f.store.Append(t.Context(), stream, eventstore.Any, evs...)
				end := clock.Add(1)
				if err != nil {
					t.Errorf("append to %s: %v", stream, err)
					return
				}
				mu.Lock()
				all = append(all, landed{stream, eventIDs(evs), res, start, end})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	h := head(t, f.store)
	tailed := tail.finish(t, h)
	if t.Failed() {
		return
	}

	log := readAll(t, f.store, f.head, h, pageSize)

	if opts.SparsePositions {
		// Holes are allowed, reordering is not: positions strictly
		// increase from the recorded head, and the tailer below, which
		// read while the appends committed, must have seen the same
		// log, so no event appeared later below a position it had seen.
		prev := f.head
		for i, e := range log {
			if e.Position <= prev {
				t.Fatalf("$all[%d] after head %d is at position %d, not after %d: reordering", i, f.head, e.Position, prev)
			}
			prev = e.Position
		}
	} else {
		// No gaps: the store owns the whole log, so the positions after
		// the recorded head are exactly head+1, head+2, ...
		for i, e := range log {
			if want := f.head + eventstore.Position(i+1); e.Position != want {
				t.Fatalf("$all[%d] after head %d is at position %d, want %d: gap or reordering", i, f.head, e.Position, want)
			}
		}
	}
	assertSameEvents(t, "tailer reading while appends committed", tailed, log)

	// Every append is there once, its events together and in order, and
	// its result position is that of its last event.
	index := make(map[string]int, len(log))
	for i, e := range log {
		if _, dup := index[e.ID]; dup {
			t.Errorf("event %s is in $all twice", e.ID)
		}
		index[e.ID] = i
	}
	first := make([]eventstore.Position, len(all))
	for k, a := range all {
		i, ok := index[a.ids[0]]
		if !ok || i+len(a.ids) > len(log) {
			t.Errorf("append to %s (%s...) is not in $all", a.stream, a.ids[0])
			continue
		}
		first[k] = log[i].Position
		for j, id := range a.ids {
			if log[i+j].ID != id {
				t.Errorf("$all[%d] is %s (%s); want event %d of an append to %s, %s", i+j, log[i+j].ID, log[i+j].Stream, j, a.stream, id)
			}
		}
		if last := log[i+len(a.ids)-1]; last.Position != a.res.Position || last.Version != a.res.Version {
			t.Errorf("append to %s: result {v%d, at %d}, its last event is v%d at %d", a.stream, a.res.Version, a.res.Position, last.Version, last.Position)
		}
	}

	// Commit order: an append that returned before another started has
	// the lower positions.
	for _, a := range all {
		for k, b := range all {
			if b.start >= a.end && first[k] != 0 && first[k] <= a.res.Position {
				t.Fatalf("append to %s returned (at %d) before an append to %s started, which landed at %d",
					a.stream, a.res.Position, b.stream, first[k])
			}
		}
	}

	// Per stream, $all order is version order.
	next := make(map[string]uint64)
	for _, e := range f.mine(log) {
		next[e.Stream]++
		if e.Version != next[e.Stream] {
			t.Errorf("$all has %s v%d at %d, want v%d", e.Stream, e.Version, e.Position, next[e.Stream])
			next[e.Stream] = e.Version
		}
	}
	for stream, n := range next {
		got := readStream(t, f.store, stream)
		if uint64(len(got)) != n {
			t.Errorf("stream %s has %d events, $all has %d of it", stream, len(got), n)
		}
	}
}

// tailer reads the $all log in pages while a test appends, as a projection
// catching up would, so that a gap it saw and that was filled later shows.
type tailer struct {
	done    chan struct{}
	target  atomic.Uint64
	writing atomic.Bool
	evs     []eventstore.RecordedEvent
}

func startTailer(t *testing.T, s eventstore.Store, after eventstore.Position, page int) *tailer {
	t.Helper()
	tl := &tailer{done: make(chan struct{})}
	tl.writing.Store(true)
	t.Cleanup(func() { <-tl.done }) // it returns once the test's context ends
	go func() {
		defer close(tl.done)
		last := after
		idle := time.NewTicker(time.Millisecond)
		defer idle.Stop()
		for {
			evs, err := s.ReadAll(t.Context(), last, page)
			if t.Context().Err() != nil {
				return // the test is over
			}
			if err != nil {
				t.Errorf("tailing $all after %d: %v", last, err)
				return
			}
			if len(evs) > page {
				t.Errorf("tailing $all after %d: %d events, limit %d", last, len(evs), page)
				return
			}
			for _, e := range evs {
				if e.Position <= last {
					t.Errorf("tailing $all: position %d after %d", e.Position, last)
					return
				}
				last = e.Position
			}
			tl.evs = append(tl.evs, evs...)
			if len(evs) > 0 {
				continue
			}
			if !tl.writing.Load() && uint64(last) >= tl.target.Load() {
				return
			}
			select {
			case <-idle.C:
			case <-t.Context().Done():
				return
			}
		}
	}()
	return tl
}

// finish waits for the tailer to reach position upTo, once the writers are
// done, and returns what it read up to there.
func (tl *tailer) finish(t *testing.T, upTo eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	tl.target.Store(uint64(upTo))
	tl.writing.Store(false)
	select {
	case <-tl.done:
	case <-timeAfter(t, waitTimeout):
		t.Fatalf("tailer did not reach position %d within %v", upTo, waitTimeout)
	}
	var out []eventstore.RecordedEvent
	for _, e := range tl.evs {
		if e.Position <= upTo {
			out = append(out, e)
		}
	}
	return out
}
