package eventstoretest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/infra/eventstore"
)

func testRead(t *testing.T, open Opener, opts Options) {
	t.Run("NeverWritten", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		for _, after := range []uint64{0, 5} {
			evs, err := f.store.ReadStream(t.Context(), f.stream("never"), after, 10)
			if !errors.Is(err, eventstore.ErrStreamNotFound) {
				t.Errorf("read never-written stream after %d: %d events, error %v; want ErrStreamNotFound", after, len(evs), err)
			}
		}
	})

	t.Run("StreamVersions", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		two, one, never := f.stream("versions-two"), f.stream("versions-one"), f.stream("versions-never")
		appendOK(t, f.store, two, eventstore.NoStream, newEvents("Queued", 2)...)
		appendOK(t, f.store, one, eventstore.NoStream, newEvents("Queued", 1)...)
		got, err := eventstore.StreamVersions(t.Context(), f.store, []string{two, never, one, two})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]uint64{two: 2, one: 1}
		if len(got) != len(want) || got[two] != 2 || got[one] != 1 {
			t.Errorf("StreamVersions = %v, want %v (a stream never written left out)", got, want)
		}
		if got, err := eventstore.StreamVersions(t.Context(), f.store, nil); err != nil || len(got) != 0 {
			t.Errorf("StreamVersions of no streams = %v, %v", got, err)
		}
	})

	t.Run("AfterAndLimit", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("paged")
		var all []eventstore.EventData
		for _, n := range []int{4, 1, 5} {
			evs := newEvents("Paged", n)
			appendOK(t, f.store, stream, eventstore.Any, evs...)
			all = append(all, evs...)
		}
		// A stream whose name extends this one's must not leak into it.
		appendOK(t, f.store, stream+"-longer", eventstore.NoStream, newEvents("Other", 2)...)
		appendOK(t, f.store, stream, eventstore.Any, newEvents("Paged", 0)...)

		tests := []struct {
			after uint64
			limit int
			want  []uint64 // versions
		}{
			{0, 100, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{0, 10, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
			{0, 1, []uint64{1}},
			{3, 4, []uint64{4, 5, 6, 7}},
			{8, 10, []uint64{9, 10}},
			{9, 1, []uint64{10}},
			{10, 10, nil},
			{20, 10, nil},
			{0, 0, nil},
			{3, -1, nil},
		}
		for _, tc := range tests {
			got, err := f.store.ReadStream(t.Context(), stream, tc.after, tc.limit)
			if err != nil {
				t.Errorf("read %s after %d limit %d: %v", stream, tc.after, tc.limit, err)
				continue
			}
			var versions []uint64
			for _, e := range got {
				versions = append(versions, e.Version)
				if e.Stream != stream || e.Version == 0 || e.Version > uint64(len(all)) {
					t.Errorf("read %s: event %s v%d", stream, e.Stream, e.Version)
					continue
				}
				if err := sameEnvelope(e, all[e.Version-1]); err != nil {
					t.Error(err)
				}
			}
			if !slices.Equal(versions, tc.want) {
				t.Errorf("read %s after %d limit %d: versions %v, want %v", stream, tc.after, tc.limit, versions, tc.want)
			}
		}

		// Paging by three walks the whole stream.
		var paged []string
		var after uint64
		for {
			page, err := f.store.ReadStream(t.Context(), stream, after, 3)
			if err != nil {
				t.Fatalf("page after %d: %v", after, err)
			}
			if len(page) == 0 {
				break
			}
			paged = append(paged, recordedIDs(page)...)
			after = page[len(page)-1].Version
		}
		if !slices.Equal(paged, eventIDs(all)) {
			t.Errorf("paging by 3: %v, want %v", paged, eventIDs(all))
		}

		for _, limit := range []int{0, -1} {
			if evs, err := f.store.ReadAll(t.Context(), f.head, limit); err != nil || len(evs) != 0 {
				t.Errorf("read $all with limit %d: %d events, error %v; want nothing", limit, len(evs), err)
			}
		}
		if evs, err := f.store.ReadAll(t.Context(), f.head, 1); err != nil || len(evs) != 1 {
			t.Errorf("read $all with limit 1: %d events, error %v; want 1", len(evs), err)
		}
	})

	// Reading after the end gives nothing, however far after: positions and
	// versions are uint64 and a checkpoint may hold any of them.
	t.Run("AfterTheEnd", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("some")
		appendOK(t, f.store, stream, eventstore.NoStream, newEvents("Queued", 3)...)
		h := head(t, f.store)

		t.Run("ReadStream", func(t *testing.T) {
			for _, after := range []uint64{3, 4, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64} {
				evs, err := f.store.ReadStream(t.Context(), stream, after, 10)
				if err != nil || len(evs) != 0 {
					t.Errorf("read %s (version 3) after %d: %d events, error %v; want nothing", stream, after, len(evs), err)
				}
			}
		})
		t.Run("ReadAll", func(t *testing.T) {
			// A shared store may have events after h, but none at or
			// before any of these positions.
			afters := []eventstore.Position{h, h + 1, 1 << 62, math.MaxInt64, math.MaxInt64 + 1, math.MaxUint64 - 1, math.MaxUint64}
			if opts.SparsePositions {
				// h+1 may lie inside the record of the event at h.
				afters = slices.DeleteFunc(afters, func(p eventstore.Position) bool { return p == h+1 })
			}
			for _, after := range afters {
				for _, limit := range []int{10, 5000} {
					evs, err := f.store.ReadAll(t.Context(), after, limit)
					if err != nil {
						t.Errorf("read $all after %d, limit %d: %v", after, limit, err)
					}
					for _, e := range evs {
						if e.Position <= after {
							t.Errorf("read $all after %d, limit %d: got %s at position %d", after, limit, e.ID, e.Position)
							break
						}
					}
				}
			}
		})
		t.Run("Subscribe", func(t *testing.T) {
			for _, after := range []eventstore.Position{math.MaxInt64 + 1, math.MaxUint64} {
				sub, err := f.store.Subscribe(t.Context(), after)
				if err != nil {
					t.Errorf("subscribe after %d: %v", after, err)
					continue
				}
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				evs, err := next(t, sub, ctx)
				cancel()
				sub.Close()
				if len(evs) > 0 {
					t.Errorf("subscription after %d delivered %s at position %d", after, evs[0].ID, evs[0].Position)
				}
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("subscription after %d: Next gave %v, want context.DeadlineExceeded", after, err)
				}
			}
		})
	})
}

func testLargeAndEmpty(t *testing.T, open Opener) {
	t.Run("ManyEventsInOneAppend", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		stream := f.stream("many")
		evs := newEvents("Imported", 2500)
		h := head(t, f.store)
		res := appendOK(t, f.store, stream, eventstore.NoStream, evs...)
		got := assertStream(t, f.store, stream, evs)
		assertResult(t, stream, res, got, uint64(len(evs)))
		log := readAll(t, f.store, h, res.Position, 5000)
		if i := slices.IndexFunc(log, func(e eventstore.RecordedEvent) bool { return e.ID == evs[0].ID }); i >= 0 {
			log = log[i:]
		}
		if !slices.Equal(recordedIDs(log), eventIDs(evs)) {
			t.Errorf("$all from the append's first event to its result position holds %d events, not the append's %d in order", len(log), len(evs))
		}
	})

	t.Run("OneMebibyteEvent", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		sub, err := f.store.Subscribe(t.Context(), f.head)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		c := collect(t, sub)

		large := NewEvent("Attachment", nil)
		large.Data = mebibyteJSON()
		stream := f.stream("large")
		evs := []eventstore.EventData{NewEvent("Before", 1), large, NewEvent("After", 2)}
		res := appendOK(t, f.store, stream, eventstore.NoStream, evs...)

		check := func(how string, got []eventstore.RecordedEvent) {
			t.Helper()
			got = f.mine(got)
			if len(got) != len(evs) {
				t.Fatalf("%s: %d events, want %d", how, len(got), len(evs))
			}
			for i, e := range got {
				if err := sameEnvelope(e, evs[i]); err != nil {
					t.Errorf("%s: %v", how, err)
				}
			}
		}
		check("read stream", readStream(t, f.store, stream))
		check("read $all", readAll(t, f.store, f.head, res.Position, 2))
		c.waitUntil(t, res.Position)
		check("subscription", c.stop(t, res.Position))
	})

	t.Run("EmptyAppends", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		fresh := f.stream("fresh")
		assertNoStream(t, f.store, fresh)

		for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Any} {
			res, err := f.store.Append(t.Context(), fresh, expected)
			if err != nil {
				t.Errorf("append no events to a new stream with %s: %v", expected, err)
			}
			if res.Version != 0 {
				t.Errorf("append no events to a new stream with %s: version %d, want 0", expected, res.Version)
			}
			assertNoStream(t, f.store, fresh)
		}
		_, err := f.store.Append(t.Context(), fresh, eventstore.Exactly(3))
		wrongVersion(t, err, fresh, eventstore.Exactly(3), 0)
		assertNoStream(t, f.store, fresh)

		existing := f.stream("existing")
		evs := newEvents("Queued", 2)
		appendOK(t, f.store, existing, eventstore.NoStream, evs...)
		for _, expected := range []eventstore.ExpectedVersion{eventstore.Exactly(2), eventstore.Any} {
			res, err := f.store.Append(t.Context(), existing, expected)
			if err != nil {
				t.Errorf("append no events to a stream at version 2 with %s: %v", expected, err)
			}
			if res.Version != 2 {
				t.Errorf("append no events to a stream at version 2 with %s: version %d, want 2", expected, res.Version)
			}
		}
		for _, expected := range []eventstore.ExpectedVersion{eventstore.NoStream, eventstore.Exactly(1), eventstore.Exactly(3)} {
			_, err := f.store.Append(t.Context(), existing, expected)
			wrongVersion(t, err, existing, expected, 2)
		}
		assertStream(t, f.store, existing, evs)

		for _, e := range readAllToHead(t, f.store, f.head) {
			if e.Stream == fresh {
				t.Errorf("$all holds %s v%d, but only empty appends went to it", e.Stream, e.Version)
			}
		}
	})
}

// mebibyteJSON returns a JSON document of exactly 1 MiB, with spacing and
// non-ASCII text that a store re-encoding the JSON would change.
func mebibyteJSON() []byte {
	const size = 1 << 20
	head := `{ "note" : "żółć ✓ \u00e9 \"quoted\"",` + "\n\t" + `"nested": {"a": [1, 2.50, true, null]},` + "\n\t" + `"blob": "`
	tail := "\"\n}"
	var b strings.Builder
	b.Grow(size)
	b.WriteString(head)
	for i := 0; b.Len() < size-len(tail); i++ {
		b.WriteByte("abcdefghijklmnopqrstuvwxyz0123456789"[i*7%36])
	}
	b.WriteString(tail)
	data := []byte(b.String())
	if len(data) != size || !json.Valid(data) {
		panic(fmt.Sprintf("eventstoretest: built %d bytes of JSON (valid: %v)", len(data), json.Valid(data)))
	}
	return data
}

func testEnvelope(t *testing.T, open Opener) {
	f := newFixture(t, open)
	sub, err := f.store.Subscribe(t.Context(), f.head)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	c := collect(t, sub)

	stream := f.stream("envelope")
	causation := newID()
	evs := []eventstore.EventData{
		{
			ID:            newID(),
			Type:          "NotificationQueued",
			SchemaVersion: 3,
			Data:          json.RawMessage(`{"recipient":"alice@example.com", "channels": ["email","sms"],"body":"Grüße ✉"}`),
			Metadata: eventstore.Metadata{
				CorrelationID: "corr-" + newID(),
				CausationID:   causation,
				Actor:         "user:alice",
			},
		},
		{
			ID:            newID(),
			Type:          "DeliveryAttempted",
			SchemaVersion: 0,
			Data:          json.RawMessage(`[]`),
		},
		{
			ID:            newID(),
			Type:          "Délivré",
			SchemaVersion: 12,
			Data:          json.RawMessage(`"just a string"`),
			Metadata:      eventstore.Metadata{Actor: "système ✓"},
		},
	}
	before := time.Now()
	res := appendOK(t, f.store, stream, eventstore.NoStream, evs...)
	after := time.Now()

	check := func(how string, got []eventstore.RecordedEvent) {
		t.Helper()
		got = f.mine(got)
		if len(got) != len(evs) {
			t.Fatalf("%s: %d events, want %d", how, len(got), len(evs))
		}
		for i, e := range got {
			if err := sameEnvelope(e, evs[i]); err != nil {
				t.Errorf("%s: %v", how, err)
			}
			if e.Stream != stream || e.Version != uint64(i+1) {
				t.Errorf("%s: event %d is %s v%d, want %s v%d", how, i, e.Stream, e.Version, stream, i+1)
			}
			if want := res.Position; i == len(got)-1 && e.Position != want {
				t.Errorf("%s: last event at %d, the append said %d", how, e.Position, want)
			}
			if e.Position <= f.head || (i > 0 && e.Position <= got[i-1].Position) {
				t.Errorf("%s: event %d at position %d", how, i, e.Position)
			}
			const skew = 5 * time.Second // clocks of a store on another machine
			switch {
			case e.RecordedAt.IsZero():
				t.Errorf("%s: event %d has no recording time", how, i)
			case e.RecordedAt.Location() != time.UTC:
				t.Errorf("%s: event %d recorded at %v, not in UTC", how, i, e.RecordedAt)
			case e.RecordedAt.Before(before.Add(-skew)) || e.RecordedAt.After(after.Add(skew)):
				t.Errorf("%s: event %d recorded at %v, the append ran from %v to %v", how, i, e.RecordedAt, before, after)
			}
		}
	}
	fromStream := readStream(t, f.store, stream)
	check("read stream", fromStream)
	fromAll := readAll(t, f.store, f.head, res.Position, 100)
	check("read $all", fromAll)
	c.waitUntil(t, res.Position)
	fromSub := c.stop(t, res.Position)
	check("subscription", fromSub)
	for i, e := range f.mine(fromAll) {
		if !e.RecordedAt.Equal(fromStream[i].RecordedAt) || !e.RecordedAt.Equal(f.mine(fromSub)[i].RecordedAt) {
			t.Errorf("event %d recorded at %v (stream), %v ($all), %v (subscription)", i, fromStream[i].RecordedAt, e.RecordedAt, f.mine(fromSub)[i].RecordedAt)
		}
	}
}

func testContext(t *testing.T, open Opener) {
	t.Run("AlreadyCancelled", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		existing := f.stream("existing")
		seed := newEvents("Queued", 2)
		appendOK(t, f.store, existing, eventstore.NoStream, seed...)
		h := head(t, f.store)

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		evs := newEvents("Cancelled", 2)
		_, err := f.store.Append(ctx, existing, eventstore.Any, evs...)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("append with a cancelled context: %v, want context.Canceled", err)
		}
		fresh := f.stream("fresh")
		evs2 := newEvents("Cancelled", 1)
		_, err = f.store.Append(ctx, fresh, eventstore.NoStream, evs2...)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("append to a new stream with a cancelled context: %v, want context.Canceled", err)
		}
		evs3 := newEvents("Cancelled", 1)
		_, errs := f.store.AppendMany(ctx, []eventstore.AppendRequest{{Stream: fresh, Expected: eventstore.Any, Events: evs3}})
		if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("AppendMany with a cancelled context: %v, want context.Canceled", errs)
		}
		assertStream(t, f.store, existing, seed)
		assertNoStream(t, f.store, fresh)
		assertNotInAll(t, f.store, h, append(append(eventIDs(evs), eventIDs(evs2)...), eventIDs(evs3)...)...)

		if _, err := f.store.ReadStream(ctx, existing, 0, 10); !errors.Is(err, context.Canceled) {
			t.Errorf("read stream with a cancelled context: %v, want context.Canceled", err)
		}
		if _, err := f.store.ReadAll(ctx, f.head, 10); !errors.Is(err, context.Canceled) {
			t.Errorf("read $all with a cancelled context: %v, want context.Canceled", err)
		}
		sub, err := f.store.Subscribe(ctx, f.head)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("subscribe with a cancelled context: %v, want context.Canceled", err)
		}
		if sub != nil {
			sub.Close()
		}
	})

	t.Run("CancelledDuringAppend", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		// Contexts cancelled at staggered moments, while other appends
		// keep the store busy, land before, during and after the work.
		const appends = 48
		type outcome struct {
			stream string
			evs    []eventstore.EventData
			res    eventstore.AppendResult
			err    error
		}
		outcomes := make([]outcome, appends)
		var wg sync.WaitGroup
		for i := range appends {
			wg.Go(func() {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				timer := time.AfterFunc(time.Duration(i%16)*50*time.Microsecond, cancel)
				defer timer.Stop()
				o := outcome{stream: f.stream(fmt.Sprintf("c%d", i)), evs: newEvents("Raced", 3)}
				o.res, o.err = f.store.Append(ctx, o.stream, eventstore.NoStream, o.evs...)
				outcomes[i] = o
			})
		}
		wg.Wait()
		var landed, cancelled int
		for _, o := range outcomes {
			if o.err == nil {
				landed++
				got := assertStream(t, f.store, o.stream, o.evs)
				assertResult(t, o.stream, o.res, got, 3)
				continue
			}
			cancelled++
			if !errors.Is(o.err, context.Canceled) {
				t.Errorf("append to %s cancelled in flight: %v, want success or context.Canceled", o.stream, o.err)
			}
			assertNoStream(t, f.store, o.stream)
			assertNotInAll(t, f.store, f.head, eventIDs(o.evs)...)
		}
		t.Logf("%d appends landed, %d were cancelled", landed, cancelled)
	})

	t.Run("BlockedNextReturnsOnCancel", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, open)
		sub, err := f.store.Subscribe(t.Context(), head(t, f.store))
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		defer sub.Close()
		for _, tc := range []struct {
			name string
			ctx  func() (context.Context, context.CancelFunc)
			want error
		}{
			{"Cancel", func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(20*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
			{"Deadline", func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(t.Context(), 20*time.Millisecond)
			}, context.DeadlineExceeded},
		} {
			ctx, cancel := tc.ctx()
			start := time.Now()
			var err error
			for err == nil { // a shared store may deliver other tests' events
				var evs []eventstore.RecordedEvent
				evs, err = next(t, sub, ctx)
				if mine := f.mine(evs); len(mine) > 0 {
					t.Fatalf("%s: Next returned events of ours, none were appended", tc.name)
				}
			}
			cancel()
			if !errors.Is(err, tc.want) {
				t.Errorf("%s: blocked Next returned %v, want %v", tc.name, err, tc.want)
			}
			if d := time.Since(start); d > promptly {
				t.Errorf("%s: blocked Next took %v to notice its context ended", tc.name, d)
			}
		}
		// The subscription still works afterwards.
		evs := newEvents("Queued", 1)
		appendOK(t, f.store, f.stream("after"), eventstore.NoStream, evs...)
		var got []eventstore.RecordedEvent
		for len(f.mine(got)) == 0 {
			got = append(got, nextWithin(t, sub)...)
		}
		if ids := recordedIDs(f.mine(got)); !slices.Equal(ids, eventIDs(evs)) {
			t.Errorf("after cancelled Nexts the subscription saw %v, want %v", ids, eventIDs(evs))
		}
	})
}
