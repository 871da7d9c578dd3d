package eventstoretest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"herald/infra/eventstore"
)

func testExpectedVersion(t *testing.T, open Opener) {
	t.Run("AnyOnNewAndExistingStream", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("any")
		first := newEvents("Queued", 1)
		res := appendOK(t, f.store, stream, eventstore.Any, first...)
		got := assertStream(t, f.store, stream, first)
		assertResult(t, stream, res, got, 1)
		if res.Position <= f.head {
			t.Errorf("first append at position %d, not after the head %d it started from", res.Position, f.head)
		}

		more := newEvents("Sent", 2)
		res2 := appendOK(t, f.store, stream, eventstore.Any, more...)
		got = assertStream(t, f.store, stream, append(first, more...))
		assertResult(t, stream, res2, got, 3)
		if res2.Position <= res.Position {
			t.Errorf("second append at position %d, not after the first at %d", res2.Position, res.Position)
		}
	})

	t.Run("NoStreamAndExactlyZeroOnNewStream", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		for name, expected := range map[string]eventstore.ExpectedVersion{
			"no-stream": eventstore.NoStream,
			"exactly-0": eventstore.Exactly(0),
		} {
			stream := f.stream(name)
			evs := newEvents("Queued", 2)
			res := appendOK(t, f.store, stream, expected, evs...)
			got := assertStream(t, f.store, stream, evs)
			assertResult(t, stream, res, got, 2)
		}
	})

	t.Run("ExactlyTheCurrentVersion", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("exact")
		var all []eventstore.EventData
		var version uint64
		// 130 events take more than one multi-row insert in engines that
		// batch them.
		for _, n := range []int{1, 3, 1, 2, 130} {
			evs := newEvents("Attempted", n)
			res := appendOK(t, f.store, stream, eventstore.Exactly(version), evs...)
			all = append(all, evs...)
			version += uint64(n)
			got := assertStream(t, f.store, stream, all)
			assertResult(t, stream, res, got, version)
		}
	})

	t.Run("Mismatch", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name     string
			existing int // events in the stream before the append
			expected eventstore.ExpectedVersion
		}{
			{"NoStreamOnExisting", 3, eventstore.NoStream},
			{"ExactlyZeroOnExisting", 3, eventstore.Exactly(0)},
			{"ExactlyBehind", 3, eventstore.Exactly(2)},
			{"ExactlyAhead", 3, eventstore.Exactly(4)},
			{"ExactlyFarAhead", 1, eventstore.Exactly(1000)},
			{"ExactlyOneOnNew", 0, eventstore.Exactly(1)},
			{"ExactlyOnNew", 0, eventstore.Exactly(5)},
		}
		f := newFixture(t, open)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				stream := f.stream(tc.name)
				before := newEvents("Queued", tc.existing)
				if tc.existing > 0 {
					appendOK(t, f.store, stream, eventstore.NoStream, before...)
				}
				h := head(t, f.store)

				// Two events, so that a half-done append would show.
				evs := newEvents("Rejected", 2)
				_, err := f.store.Append(t.Context(), stream, tc.expected, evs...)
				wrongVersion(t, err, stream, tc.expected, uint64(tc.existing))

				if tc.existing > 0 {
					assertStream(t, f.store, stream, before)
				} else {
					assertNoStream(t, f.store, stream)
				}
				assertNotInAll(t, f.store, h, eventIDs(evs)...)

				// The stream still takes the right expectation afterwards.
				after := newEvents("Accepted", 1)
				appendOK(t, f.store, stream, eventstore.Exactly(uint64(tc.existing)), after...)
				assertStream(t, f.store, stream, append(before, after...))
			})
		}
	})

	t.Run("MultiEventAppendIsContiguousInAll", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		// Writers to other streams run alongside, so that an engine that
		// interleaved one append's events with another's would show it.
		const writers, appends, size = 4, 10, 5
		type landed struct {
			stream string
			ids    []string
			res    eventstore.AppendResult
		}
		var (
			mu  sync.Mutex
			all []landed
			wg  sync.WaitGroup
		)
		for w := range writers {
			wg.Go(func() {
				stream := f.stream(fmt.Sprintf("multi-%d", w))
				for range appends {
					evs := newEvents("Batched", size)
					res, err := f.store.Append(t.Context(), stream, eventstore.Any, evs...)
					if err != nil {
						t.Errorf("append to %s: %v", stream, err)
						return
					}
					mu.Lock()
					all = append(all, landed{stream, eventIDs(evs), res})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		log := readAllToHead(t, f.store, f.head)
		index := make(map[string]int, len(log))
		for i, e := range log {
			index[e.ID] = i
		}
		for _, a := range all {
			i, ok := index[a.ids[0]]
			if !ok {
				t.Errorf("event %s of an append to %s is not in $all", a.ids[0], a.stream)
				continue
			}
			if i+size > len(log) {
				t.Errorf("append to %s: only %d of its %d events at the end of $all", a.stream, len(log)-i, size)
				continue
			}
			for j, id := range a.ids {
				e := log[i+j]
				if e.ID != id || e.Stream != a.stream || e.Version != a.res.Version-uint64(size-1-j) {
					t.Errorf("$all[%d] is %s (%s v%d); want event %d of an append to %s: %s v%d",
						i+j, e.ID, e.Stream, e.Version, j, a.stream, id, a.res.Version-uint64(size-1-j))
				}
			}
			if last := log[i+size-1]; last.Position != a.res.Position {
				t.Errorf("append to %s: result position %d, its last event is at %d", a.stream, a.res.Position, last.Position)
			}
		}
	})
}

func testInvalidInput(t *testing.T, open Opener) {
	t.Run("Append", func(t *testing.T) {
		t.Parallel()
		good := func() eventstore.EventData { return NewEvent("Queued", map[string]string{"to": "alice"}) }
		tests := []struct {
			name string
			bad  func() eventstore.EventData
		}{
			{"EmptyID", func() eventstore.EventData { e := good(); e.ID = ""; return e }},
			{"EmptyType", func() eventstore.EventData { e := good(); e.Type = ""; return e }},
			{"TruncatedJSON", func() eventstore.EventData { e := good(); e.Data = []byte(`{"to":`); return e }},
			{"NotJSON", func() eventstore.EventData { e := good(); e.Data = []byte(`hello`); return e }},
			{"TrailingGarbage", func() eventstore.EventData { e := good(); e.Data = []byte(`{} {}`); return e }},
		}
		f := newFixture(t, open)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				h := head(t, f.store)

				// On a new stream, after a valid event: the valid one
				// must not be written either.
				fresh := f.stream(tc.name + "-new")
				evs := []eventstore.EventData{good(), tc.bad()}
				_, err := f.store.Append(t.Context(), fresh, eventstore.NoStream, evs...)
				if !errors.Is(err, eventstore.ErrInvalidEvent) {
					t.Errorf("append with %s to a new stream: error %v, want ErrInvalidEvent", tc.name, err)
				}
				assertNoStream(t, f.store, fresh)

				// On an existing stream, with Any.
				existing := f.stream(tc.name + "-existing")
				before := []eventstore.EventData{good()}
				appendOK(t, f.store, existing, eventstore.NoStream, before...)
				evs2 := []eventstore.EventData{tc.bad(), good()}
				_, err = f.store.Append(t.Context(), existing, eventstore.Any, evs2...)
				if !errors.Is(err, eventstore.ErrInvalidEvent) {
					t.Errorf("append with %s to an existing stream: error %v, want ErrInvalidEvent", tc.name, err)
				}
				assertStream(t, f.store, existing, before)

				assertNotInAll(t, f.store, h, append(eventIDs(evs), eventIDs(evs2)...)...)
			})
		}
	})

	t.Run("AppendManyMixed", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		existing, otherExisting, third := f.stream("existing"), f.stream("other-existing"), f.stream("third")
		seed, seed2, seed3 := newEvents("Seeded", 1), newEvents("Seeded", 2), newEvents("Seeded", 1)
		appendOK(t, f.store, existing, eventstore.NoStream, seed...)
		appendOK(t, f.store, otherExisting, eventstore.NoStream, seed2...)
		appendOK(t, f.store, third, eventstore.NoStream, seed3...)
		h := head(t, f.store)

		invalid := NewEvent("Queued", nil)
		invalid.Type = ""
		notJSON := NewEvent("Queued", nil)
		notJSON.Data = []byte("{")

		reqs := []eventstore.AppendRequest{
			{Stream: f.stream("new-a"), Expected: eventstore.NoStream, Events: newEvents("Queued", 2)},
			{Stream: third, Expected: eventstore.Exactly(5), Events: newEvents("Rejected", 1)},
			{Stream: f.stream("new-invalid"), Expected: eventstore.NoStream, Events: []eventstore.EventData{NewEvent("Queued", 1), invalid}},
			{Stream: existing, Expected: eventstore.Any, Events: newEvents("Sent", 3)},
			{Stream: f.stream("new-b"), Expected: eventstore.Exactly(0), Events: newEvents("Queued", 1)},
			{Stream: otherExisting, Expected: eventstore.Exactly(2), Events: []eventstore.EventData{notJSON}},
			{Stream: f.stream("new-wrong"), Expected: eventstore.Exactly(3), Events: newEvents("Rejected", 2)},
			{Stream: otherExisting, Expected: eventstore.NoStream, Events: newEvents("Rejected", 1)},
		}
		results, errs := f.store.AppendMany(t.Context(), reqs)
		if len(results) != len(reqs) || len(errs) != len(reqs) {
			t.Fatalf("AppendMany of %d requests: %d results and %d errors", len(reqs), len(results), len(errs))
		}

		// Successes.
		for _, i := range []int{0, 4} {
			if errs[i] != nil {
				t.Errorf("request %d: %v, want success", i, errs[i])
				continue
			}
			got := assertStream(t, f.store, reqs[i].Stream, reqs[i].Events)
			assertResult(t, reqs[i].Stream, results[i], got, uint64(len(reqs[i].Events)))
		}
		if errs[3] != nil {
			t.Errorf("request 3: %v, want success", errs[3])
		} else {
			got := assertStream(t, f.store, existing, append(seed, reqs[3].Events...))
			assertResult(t, existing, results[3], got, 4)
		}

		// Failures, each with its own error and nothing written.
		// No two requests that could both succeed share a stream: the
		// order in which AppendMany applies them is not part of the contract.
		wrongVersion(t, errs[1], third, eventstore.Exactly(5), 1)
		wrongVersion(t, errs[6], f.stream("new-wrong"), eventstore.Exactly(3), 0)
		wrongVersion(t, errs[7], otherExisting, eventstore.NoStream, 2)
		for _, i := range []int{2, 5} {
			if !errors.Is(errs[i], eventstore.ErrInvalidEvent) {
				t.Errorf("request %d: error %v, want ErrInvalidEvent", i, errs[i])
			}
		}
		assertNoStream(t, f.store, f.stream("new-invalid"))
		assertNoStream(t, f.store, f.stream("new-wrong"))
		assertStream(t, f.store, otherExisting, seed2)
		assertStream(t, f.store, third, seed3)
		var failed []string
		for _, i := range []int{1, 2, 5, 6, 7} {
			failed = append(failed, eventIDs(reqs[i].Events)...)
		}
		assertNotInAll(t, f.store, h, failed...)

		// No requests, no work.
		results, errs = f.store.AppendMany(t.Context(), nil)
		if len(results) != 0 || len(errs) != 0 {
			t.Errorf("AppendMany of no requests: %d results, %d errors", len(results), len(errs))
		}
	})
}

func testClosed(t *testing.T, open Opener) {
	t.Run("AppendAfterClose", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("closed")
		appendOK(t, f.store, stream, eventstore.NoStream, newEvents("Queued", 1)...)
		if err := f.store.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		_, err := f.store.Append(t.Context(), stream, eventstore.Any, newEvents("Sent", 1)...)
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("append after close: %v, want ErrClosed", err)
		}
		_, err = f.store.Append(t.Context(), f.stream("new"), eventstore.NoStream, newEvents("Sent", 1)...)
		if !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("append to a new stream after close: %v, want ErrClosed", err)
		}
		_, errs := f.store.AppendMany(t.Context(), []eventstore.AppendRequest{
			{Stream: stream, Expected: eventstore.Any, Events: newEvents("Sent", 1)},
			{Stream: f.stream("other"), Expected: eventstore.NoStream, Events: newEvents("Sent", 1)},
		})
		for i, err := range errs {
			if !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("AppendMany after close, request %d: %v, want ErrClosed", i, err)
			}
		}
		if _, err := f.store.Subscribe(t.Context(), 0); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("subscribe after close: %v, want ErrClosed", err)
		}
		f.store.Close() // a second Close must be harmless
	})

	t.Run("CloseDuringAppends", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		// Writers append until the store refuses; Close lands somewhere in
		// the middle. Every append that returned nil must be there after a
		// reopen, and every one that failed must have left nothing.
		const writers = 8
		type outcome struct {
			stream string
			evs    []eventstore.EventData
			err    error
		}
		var (
			mu       sync.Mutex
			outcomes []outcome
			wg       sync.WaitGroup
			started  = make(chan struct{}, writers)
		)
		for w := range writers {
			wg.Go(func() {
				var once sync.Once
				defer once.Do(func() { started <- struct{}{} })
				for i := 0; ; i++ {
					stream := f.stream(fmt.Sprintf("w%d-%d", w, i))
					evs := newEvents("Queued", 1+i%3)
					_, err := f.store.Append(t.Context(), stream, eventstore.NoStream, evs...)
					mu.Lock()
					outcomes = append(outcomes, outcome{stream, evs, err})
					mu.Unlock()
					if err != nil {
						return
					}
					if i == 2 {
						once.Do(func() { started <- struct{}{} })
					}
				}
			})
		}
		for range writers {
			<-started
		}
		if err := f.store.Close(); err != nil {
			t.Errorf("close during appends: %v", err)
		}
		wg.Wait()

		s := f.reopen(t)
		t.Cleanup(func() { s.Close() })
		var ok, failed int
		for _, o := range outcomes {
			if o.err == nil {
				ok++
				assertStream(t, s, o.stream, o.evs)
				continue
			}
			failed++
			if !errors.Is(o.err, eventstore.ErrClosed) {
				t.Errorf("append to %s during close: %v, want success or ErrClosed", o.stream, o.err)
			}
			assertNoStream(t, s, o.stream)
		}
		if failed != writers {
			t.Errorf("%d appends failed, want one per writer (%d)", failed, writers)
		}
		t.Logf("%d appends landed before close, %d refused", ok, failed)
	})

	t.Run("SubscriptionAfterStoreClose", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		sub, err := f.store.Subscribe(t.Context(), head(t, f.store))
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Close()
		// A Next blocked with nothing to read must end when the store
		// closes, not hang until its context does.
		res := make(chan error, 1)
		go func() {
			for {
				evs, err := sub.Next(t.Context())
				if err != nil || len(f.mine(evs)) > 0 {
					res <- err
					return
				}
			}
		}()
		if err := f.store.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		select {
		case err := <-res:
			if !errors.Is(err, eventstore.ErrClosed) {
				t.Errorf("Next on a subscription of a closed store: %v, want ErrClosed", err)
			}
		case <-timeAfter(t, waitTimeout):
			t.Fatalf("Next still blocked %v after the store was closed", waitTimeout)
		}
	})
}

// testStreamNames appends to streams with unusual names, reopens the store and
// appends again. A name the store accepted once must keep working; a name it
// cannot hold must be refused as invalid input. Each write goes through
// AppendMany next to an ordinary request, which must succeed whatever
// happens to its neighbour.
func testStreamNames(t *testing.T, open Opener) {
	f := newFixture(t, open)
	names := []string{
		"unicode-żółć-✓-通知-📨",
		"with spaces and \"quotes\" and \\backslashes\\",
		"sql-like-%_-and-json-<tag>&amp;",
		"line-separator-\u2028-\u2029",
		"control-\t-\n-\x1b",
		"not-utf8-\xff\xfe",
	}
	accepted := make(map[string][]eventstore.EventData)
	for _, name := range names {
		stream := f.stream(name)
		evs := newEvents("Named", 1)
		_, err := f.store.Append(t.Context(), stream, eventstore.NoStream, evs...)
		if err != nil {
			if !errors.Is(err, eventstore.ErrInvalidEvent) {
				t.Errorf("append to stream %q: %v; want success or ErrInvalidEvent", stream, err)
			}
			assertNoStream(t, f.store, stream)
			continue
		}
		more := newEvents("Named", 1)
		appendOK(t, f.store, stream, eventstore.Any, more...)
		accepted[stream] = append(evs, more...)
	}
	if err := f.store.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	s := f.reopen(t)
	t.Cleanup(func() { s.Close() })
	for i, name := range names {
		stream := f.stream(name)
		want, ok := accepted[stream]
		if !ok {
			continue
		}
		neighbour := f.stream(fmt.Sprintf("neighbour-%d", i))
		reqs := []eventstore.AppendRequest{
			{Stream: neighbour, Expected: eventstore.NoStream, Events: newEvents("Neighbour", 1)},
			{Stream: stream, Expected: eventstore.Any, Events: newEvents("Named", 1)},
		}
		results, errs := s.AppendMany(t.Context(), reqs)
		if errs[0] != nil {
			t.Errorf("AppendMany: request to %s failed next to one to %q: %v", neighbour, stream, errs[0])
		} else {
			got := assertStream(t, s, neighbour, reqs[0].Events)
			assertResult(t, neighbour, results[0], got, 1)
		}
		if errs[1] != nil {
			t.Errorf("append with Any to stream %q, accepted before the reopen: %v", stream, errs[1])
			continue
		}
		want = append(want, reqs[1].Events...)
		last := newEvents("Named", 1)
		if _, err := s.Append(t.Context(), stream, eventstore.Exactly(3), last...); err != nil {
			t.Errorf("append with Exactly(3) to stream %q: %v", stream, err)
			continue
		}
		want = append(want, last...)
		assertStream(t, s, stream, want)
	}
	for _, e := range f.mine(readAllToHead(t, s, f.head)) {
		if _, known := accepted[e.Stream]; !known && !strings.HasPrefix(e.Stream, f.stream("neighbour-")) {
			t.Errorf("$all has an event of stream %q, which was never appended to", e.Stream)
		}
	}
}
