package eventstoretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"herald/infra/eventstore"
)

func testSubscription(t *testing.T, open Opener) {
	t.Run("FromAnyCheckpointWithLiveWriters", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		var appended []string // ids of every event the test appended
		var mu sync.Mutex
		appendSome := func(s eventstore.Store, stream string, n int) eventstore.AppendResult {
			evs := newEvents("Followed", n)
			res, err := s.Append(t.Context(), stream, eventstore.Any, evs...)
			if err != nil {
				t.Errorf("append to %s: %v", stream, err)
				return res
			}
			mu.Lock()
			appended = append(appended, eventIDs(evs)...)
			mu.Unlock()
			return res
		}

		// Events already committed when the subscriptions start.
		for i := range 10 {
			appendSome(f.store, f.stream(fmt.Sprintf("before-%d", i%3)), 1+i%3)
		}
		committed := f.mine(readAllToHead(t, f.store, f.head))
		if len(committed) != len(appended) {
			t.Fatalf("$all has %d of the %d events appended", len(committed), len(appended))
		}
		checkpoints := []struct {
			name  string
			after eventstore.Position
		}{
			{"zero", 0},
			{"head-before-writing", f.head},
			{"middle", committed[len(committed)/2].Position},
			{"middle-twin", committed[len(committed)/2].Position},
			{"head-after-writing", committed[len(committed)-1].Position},
		}
		collectors := make([]*collector, len(checkpoints))
		for i, cp := range checkpoints {
			sub, err := f.store.Subscribe(t.Context(), cp.after)
			if err != nil {
				t.Fatalf("subscribe after %d: %v", cp.after, err)
			}
			collectors[i] = collect(t, sub)
		}

		// Live writers, racing the subscriptions' catch-up.
		var wg sync.WaitGroup
		var last sync.Map // writer -> its last result
		for w := range 4 {
			wg.Go(func() {
				for i := range 8 {
					res := appendSome(f.store, f.stream(fmt.Sprintf("live-%d", w)), 1+i%2)
					last.Store(w, res.Position)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		var target eventstore.Position
		last.Range(func(_, v any) bool { target = max(target, v.(eventstore.Position)); return true })

		// What the log holds, and which of it is ours.
		log := readAll(t, f.store, f.head, target, 100)
		ours := f.mine(log)
		if !sameIDSet(recordedIDs(ours), appended) {
			t.Fatalf("$all holds %d events of ours, %d were appended", len(ours), len(appended))
		}

		seen := make([][]eventstore.RecordedEvent, len(checkpoints))
		for i, cp := range checkpoints {
			c := collectors[i]
			c.waitUntil(t, target)
			got := c.stop(t, target)
			seen[i] = got
			t.Run(cp.name, func(t *testing.T) {
				truth := readAll(t, f.store, cp.after, target, 100)
				assertSameEvents(t, fmt.Sprintf("subscription after %d", cp.after), got, truth)
				var want []string
				for _, e := range ours {
					if e.Position > cp.after {
						want = append(want, e.ID)
					}
				}
				if gotIDs := recordedIDs(f.mine(got)); !slices.Equal(gotIDs, want) {
					t.Errorf("subscription after %d saw %d of our events, want the %d after it, in order\n got %v\nwant %v",
						cp.after, len(gotIDs), len(want), gotIDs, want)
				}
			})
		}
		assertSameEvents(t, "twin subscription", seen[3], seen[2])
	})

	t.Run("ResumeAcrossReopen", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("resume")
		var first []eventstore.EventData
		for range 5 {
			evs := newEvents("Queued", 4)
			appendOK(t, f.store, stream, eventstore.Any, evs...)
			first = append(first, evs...)
		}

		// Process the first 8 of our events, one at a time, keeping the
		// position of the last one processed as the checkpoint.
		const processed = 8
		sub, err := f.store.Subscribe(t.Context(), f.head)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		var checkpoint eventstore.Position
		var done []string
	consume:
		for {
			evs := nextWithin(t, sub)
			for _, e := range evs {
				checkpoint = e.Position
				if e.Stream != stream {
					continue
				}
				done = append(done, e.ID)
				if len(done) == processed {
					break consume
				}
			}
		}
		if !slices.Equal(done, eventIDs(first[:processed])) {
			t.Fatalf("first %d events processed: %v, want %v", processed, done, eventIDs(first[:processed]))
		}
		if err := sub.Close(); err != nil {
			t.Errorf("close subscription: %v", err)
		}
		if err := f.store.Close(); err != nil {
			t.Fatalf("close store: %v", err)
		}

		s := f.reopen(t)
		t.Cleanup(func() { s.Close() })
		assertStream(t, s, stream, first)
		sub, err = s.Subscribe(t.Context(), checkpoint)
		if err != nil {
			t.Fatalf("subscribe after reopen from %d: %v", checkpoint, err)
		}
		c := collect(t, sub)
		var more []eventstore.EventData
		var res eventstore.AppendResult
		for range 5 {
			evs := newEvents("Sent", 2)
			res = appendOK(t, s, stream, eventstore.Exactly(uint64(len(first)+len(more))), evs...)
			more = append(more, evs...)
		}
		c.waitUntil(t, res.Position)
		got := c.stop(t, res.Position)
		if len(got) > 0 && got[0].Position <= checkpoint {
			t.Errorf("resumed after %d, first event is at %d", checkpoint, got[0].Position)
		}
		want := append(eventIDs(first[processed:]), eventIDs(more)...)
		var gotIDs []string
		for _, e := range got {
			if e.Stream == stream {
				gotIDs = append(gotIDs, e.ID)
			}
		}
		if !slices.Equal(gotIDs, want) {
			t.Errorf("resumed subscription saw %d events, want %d once each in order\n got %v\nwant %v", len(gotIDs), len(want), gotIDs, want)
		}
		assertSameEvents(t, "resumed subscription", got, readAll(t, s, checkpoint, res.Position, 100))
	})

	t.Run("CloseIsIdempotentAndEndsNext", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		sub, err := f.store.Subscribe(t.Context(), f.head)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		// Events are waiting, so a Next that ignored the Close would
		// have something to return.
		appendOK(t, f.store, f.stream("closed"), eventstore.NoStream, newEvents("Queued", 3)...)
		if err := sub.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := sub.Close(); err != nil && !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("second close: %v", err)
		}
		for range 2 {
			ctx, cancel := context.WithTimeout(t.Context(), promptly)
			evs, err := next(t, sub, ctx)
			cancel()
			if !errors.Is(err, eventstore.ErrClosed) || len(evs) != 0 {
				t.Errorf("Next after Close: %d events, error %v; want ErrClosed", len(evs), err)
			}
		}
	})

	t.Run("NextWithCancelledContextLosesNothing", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		sub, err := f.store.Subscribe(t.Context(), f.head)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Close()
		cancelled, cancel := context.WithCancel(t.Context())
		cancel()

		// Nothing to read.
		start := time.Now()
		if _, err := next(t, sub, cancelled); !errors.Is(err, context.Canceled) {
			t.Errorf("Next with a cancelled context and nothing to read: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > promptly {
			t.Errorf("Next with a cancelled context took %v", d)
		}

		// Events waiting: a cancelled Next may not consume them.
		stream := f.stream("kept")
		evs := newEvents("Queued", 3)
		appendOK(t, f.store, stream, eventstore.NoStream, evs...)
		got, err := next(t, sub, cancelled)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Next with a cancelled context: %v, want context.Canceled", err)
		}
		if err == nil {
			t.Logf("Next with a cancelled context returned %d waiting events", len(got))
		}
		for len(f.mine(got)) < len(evs) {
			got = append(got, nextWithin(t, sub)...)
		}
		if ids := recordedIDs(f.mine(got)); !slices.Equal(ids, eventIDs(evs)) {
			t.Errorf("after a cancelled Next the subscription saw %v, want %v", ids, eventIDs(evs))
		}
	})

	t.Run("CancellingSubscribeContextEndsIt", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		subCtx, cancelSub := context.WithCancel(t.Context())
		sub, err := f.store.Subscribe(subCtx, f.head)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Close()

		// Next waits under a context of its own, which outlives the test's
		// patience: only the end of the subscription can release it.
		waitCtx, cancelWait := context.WithTimeout(t.Context(), 2*waitTimeout)
		defer cancelWait()
		res := make(chan error, 1)
		go func() {
			for {
				evs, err := sub.Next(waitCtx)
				if err != nil || len(f.mine(evs)) > 0 {
					res <- err
					return
				}
			}
		}()
		cancelSub()
		select {
		case err := <-res:
			if !errors.Is(err, eventstore.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Errorf("Next after the Subscribe context ended: %v, want ErrClosed or context.Canceled", err)
			}
		case <-timeAfter(t, waitTimeout):
			t.Fatalf("Next still blocked %v after the Subscribe context was cancelled", waitTimeout)
		}

		// It stays ended, even with events to read.
		appendOK(t, f.store, f.stream("late"), eventstore.NoStream, newEvents("Queued", 1)...)
		ctx, cancel := context.WithTimeout(t.Context(), promptly)
		defer cancel()
		if evs, err := next(t, sub, ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next on an ended subscription: %d events, error %v; want it to fail at once", len(evs), err)
		}
	})
}

// nextWithin calls Next with a timeout and fails the test if it errs.
func nextWithin(t *testing.T, sub eventstore.Subscription) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout-time.Second)
	defer cancel()
	evs, err := next(t, sub, ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if len(evs) == 0 {
		t.Fatal("Next returned an empty batch")
	}
	return evs
}

// assertSameEvents checks that got is want: same events at the same
// positions, in the same order, each once.
func assertSameEvents(t *testing.T, what string, got, want []eventstore.RecordedEvent) {
	t.Helper()
	seen := make(map[string]bool, len(got))
	for i, e := range got {
		if seen[e.ID] {
			t.Errorf("%s: event %s delivered twice", what, e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("%s: position %d after %d", what, e.Position, got[i-1].Position)
		}
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Position != w.Position || g.Stream != w.Stream || g.Version != w.Version {
			t.Fatalf("%s: event %d is %s (%s v%d at %d), want %s (%s v%d at %d)",
				what, i, g.ID, g.Stream, g.Version, g.Position, w.ID, w.Stream, w.Version, w.Position)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d", what, len(got), len(want))
	}
}

func sameIDSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
