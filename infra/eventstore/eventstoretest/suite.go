package eventstoretest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/infra/eventstore"
)

// Opener opens a store for one test. reopen closes nothing itself: the suite
// closes the current store, then calls reopen to open the same underlying
// data again (for SQLite: the same file; for EventStoreDB: a new client to the
// same server).
//
// The suite calls Close on every store it gets, and an Opener may register
// Close with t.Cleanup as well: closing a store twice must be harmless.
type Opener func(t *testing.T) (store eventstore.Store, reopen func(t *testing.T) eventstore.Store)

// waitTimeout bounds every wait of the suite: for a subscription to deliver,
// for a blocked call to return. Reaching it is a failure, never a success.
const waitTimeout = 15 * time.Second

// promptly bounds how long a call that must not block (a Next whose context
// is already cancelled, say) may take.
const promptly = 5 * time.Second

// Options describe what an engine guarantees beyond the port's contract, so
// that the suite checks each engine as strictly as it can.
type Options struct {
	// SparsePositions says the engine's positions increase in commit order
	// but are not consecutive (EventStoreDB's are log offsets). The suite
	// then checks that positions strictly increase and that a reader that
	// saw position N never later sees a new event below N, instead of
	// checking that the events after a head h sit at h+1, h+2, ...; and it
	// hands ReadAll only positions the engine returned, 0, or values past
	// the end of the log, never a number between two events.
	SparsePositions bool
}

// Run runs the whole contract suite against the stores open returns, for an
// engine with dense positions (1, 2, 3, ... with no holes). Its subtests run
// in parallel and each opens stores of its own.
func Run(t *testing.T, open Opener) {
	t.Helper()
	RunWithOptions(t, open, Options{})
}

// RunWithOptions is Run for an engine that opts describe.
func RunWithOptions(t *testing.T, open Opener, opts Options) {
	t.Helper()
	groups := []struct {
		name string
		test func(*testing.T, Opener)
	}{
		{"ExpectedVersion", testExpectedVersion},
		{"RacingWritersOnOneStream", testRacingWritersOnOneStream},
		{"ManyStreamsConcurrently", testManyStreamsConcurrently},
		{"AllOrder", func(t *testing.T, open Opener) { testAllOrder(t, open, opts) }},
		{"Subscription", testSubscription},
		{"Read", func(t *testing.T, open Opener) { testRead(t, open, opts) }},
		{"StreamNames", testStreamNames},
		{"LargeAndEmpty", testLargeAndEmpty},
		{"Envelope", testEnvelope},
		{"Context", testContext},
		{"InvalidInput", testInvalidInput},
		{"Closed", testClosed},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.test(t, open)
		})
	}
}

// NewEvent returns an event of type typ and schema version 1 whose data is
// data encoded as JSON and whose ID is a fresh UUIDv7. It panics if data
// cannot be encoded, which is a bug in the calling test.
func NewEvent(typ string, data any) eventstore.EventData {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("eventstoretest: encode %T: %v", data, err))
	}
	return eventstore.EventData{ID: newID(), Type: typ, SchemaVersion: 1, Data: raw}
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// newEvents returns n events of type typ, numbered from 1 in their data.
func newEvents(typ string, n int) []eventstore.EventData {
	evs := make([]eventstore.EventData, n)
	for i := range evs {
		evs[i] = NewEvent(typ, map[string]int{"n": i + 1})
	}
	return evs
}

// fixture is one test's store, its stream prefix and the $all head before the
// test wrote anything.
type fixture struct {
	store  eventstore.Store
	reopen func(*testing.T) eventstore.Store
	prefix string
	head   eventstore.Position
}

func newFixture(t *testing.T, open Opener) *fixture {
	t.Helper()
	s, reopen := open(t)
	if s == nil {
		t.Fatal("opener returned a nil store")
	}
	t.Cleanup(func() { s.Close() })
	return &fixture{
		store:  s,
		reopen: reopen,
		prefix: "contract-" + newID() + "-",
		head:   head(t, s),
	}
}

func (f *fixture) stream(name string) string { return f.prefix + name }

// mine keeps the events of evs that belong to the fixture's streams.
func (f *fixture) mine(evs []eventstore.RecordedEvent) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, e := range evs {
		if strings.HasPrefix(e.Stream, f.prefix) {
			out = append(out, e)
		}
	}
	return out
}

func head(t *testing.T, s eventstore.Store) eventstore.Position {
	t.Helper()
	h, err := s.Head(t.Context())
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	return h
}

func appendOK(t *testing.T, s eventstore.Store, stream string, expected eventstore.ExpectedVersion, evs ...eventstore.EventData) eventstore.AppendResult {
	t.Helper()
	res, err := s.Append(t.Context(), stream, expected, evs...)
	if err != nil {
		t.Fatalf("append %d events to %s (expected %s): %v", len(evs), stream, expected, err)
	}
	return res
}

// readStream reads the whole stream in pages.
func readStream(t *testing.T, s eventstore.Store, stream string) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	var after uint64
	for {
		page, err := s.ReadStream(t.Context(), stream, after, 100)
		if err != nil {
			t.Fatalf("read stream %s after %d: %v", stream, after, err)
		}
		if len(page) > 100 {
			t.Fatalf("read stream %s: %d events, limit was 100", stream, len(page))
		}
		out = append(out, page...)
		if len(page) < 100 {
			return out
		}
		after = page[len(page)-1].Version
	}
}

// assertNoStream checks that stream has no events.
func assertNoStream(t *testing.T, s eventstore.Store, stream string) {
	t.Helper()
	evs, err := s.ReadStream(t.Context(), stream, 0, 10)
	if !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("read stream %s: got %d events and error %v, want ErrStreamNotFound", stream, len(evs), err)
	}
}

// readAll reads the $all log after after up to and including position upTo,
// page events at a time, and checks that positions strictly increase.
func readAll(t *testing.T, s eventstore.Store, after, upTo eventstore.Position, page int) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	last := after
	for last < upTo {
		evs, err := s.ReadAll(t.Context(), last, page)
		if err != nil {
			t.Fatalf("read $all after %d: %v", last, err)
		}
		if len(evs) == 0 {
			t.Fatalf("read $all after %d: no events, but the head was %d", last, upTo)
		}
		if len(evs) > page {
			t.Fatalf("read $all after %d: %d events, limit was %d", last, len(evs), page)
		}
		for _, e := range evs {
			if e.Position <= last {
				t.Fatalf("read $all: position %d (%s) after position %d", e.Position, e.ID, last)
			}
			last = e.Position
			if e.Position <= upTo {
				out = append(out, e)
			}
		}
	}
	return out
}

// readAllToHead reads the $all log after after up to the current head.
func readAllToHead(t *testing.T, s eventstore.Store, after eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	return readAll(t, s, after, head(t, s), 100)
}

// assertNotInAll checks that no event of ids is in the $all log after after.
func assertNotInAll(t *testing.T, s eventstore.Store, after eventstore.Position, ids ...string) {
	t.Helper()
	unwanted := make(map[string]bool, len(ids))
	for _, id := range ids {
		unwanted[id] = true
	}
	for _, e := range readAllToHead(t, s, after) {
		if unwanted[e.ID] {
			t.Errorf("$all holds event %s (%s v%d at %d), which should not have been written", e.ID, e.Stream, e.Version, e.Position)
		}
	}
}

func eventIDs(evs []eventstore.EventData) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func recordedIDs(evs []eventstore.RecordedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

// sameEnvelope reports how got differs from the appended event want.
func sameEnvelope(got eventstore.RecordedEvent, want eventstore.EventData) error {
	var diffs []string
	if got.ID != want.ID {
		diffs = append(diffs, fmt.Sprintf("id %q, want %q", got.ID, want.ID))
	}
	if got.Type != want.Type {
		diffs = append(diffs, fmt.Sprintf("type %q, want %q", got.Type, want.Type))
	}
	if got.SchemaVersion != want.SchemaVersion {
		diffs = append(diffs, fmt.Sprintf("schema version %d, want %d", got.SchemaVersion, want.SchemaVersion))
	}
	if got.Metadata != want.Metadata {
		diffs = append(diffs, fmt.Sprintf("metadata %+v, want %+v", got.Metadata, want.Metadata))
	}
	if !bytes.Equal(got.Data, want.Data) {
		diffs = append(diffs, fmt.Sprintf("data %s, want %s", abbrev(got.Data), abbrev(want.Data)))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("event %s v%d at %d: %s", got.Stream, got.Version, got.Position, strings.Join(diffs, "; "))
}

func abbrev(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q... (%d bytes)", b[:80], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// assertStream checks that stream holds exactly want, versions 1..len(want).
func assertStream(t *testing.T, s eventstore.Store, stream string, want []eventstore.EventData) []eventstore.RecordedEvent {
	t.Helper()
	got := readStream(t, s, stream)
	if len(got) != len(want) {
		t.Fatalf("stream %s has %d events %v, want %d %v", stream, len(got), recordedIDs(got), len(want), eventIDs(want))
	}
	for i, e := range got {
		if e.Stream != stream || e.Version != uint64(i+1) {
			t.Errorf("event %d of %s: stream %q version %d, want %q version %d", i, stream, e.Stream, e.Version, stream, i+1)
		}
		if err := sameEnvelope(e, want[i]); err != nil {
			t.Error(err)
		}
		if i > 0 && e.Position <= got[i-1].Position {
			t.Errorf("stream %s: version %d at position %d, not after version %d at %d", stream, e.Version, e.Position, got[i-1].Version, got[i-1].Position)
		}
	}
	return got
}

// assertResult checks that res is where the append of n events ending the
// stream landed: its version and the position of its last event.
func assertResult(t *testing.T, stream string, res eventstore.AppendResult, evs []eventstore.RecordedEvent, wantVersion uint64) {
	t.Helper()
	if res.Version != wantVersion {
		t.Errorf("append to %s: result version %d, want %d", stream, res.Version, wantVersion)
	}
	for _, e := range evs {
		if e.Version == wantVersion {
			if res.Position != e.Position {
				t.Errorf("append to %s: result position %d, but its last event (v%d) is at %d", stream, res.Position, e.Version, e.Position)
			}
			return
		}
	}
	t.Errorf("append to %s: no event with the result's version %d", stream, wantVersion)
}

// wrongVersion checks that err is a wrong-expected-version error for stream
// with the given expectation and actual version.
func wrongVersion(t *testing.T, err error, stream string, expected eventstore.ExpectedVersion, actual uint64) {
	t.Helper()
	if err == nil {
		t.Errorf("append to %s with expected %s: no error, want ErrWrongExpectedVersion", stream, expected)
		return
	}
	if !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Errorf("append to %s with expected %s: error %v does not match ErrWrongExpectedVersion", stream, expected, err)
	}
	var wv *eventstore.WrongVersionError
	if !errors.As(err, &wv) {
		t.Errorf("append to %s with expected %s: error %v (%T) is not a *WrongVersionError", stream, expected, err, err)
		return
	}
	if wv.Stream != stream || wv.Expected != expected || wv.Actual != actual {
		t.Errorf("wrong version error {stream %q, expected %s, actual %d}, want {stream %q, expected %s, actual %d}",
			wv.Stream, wv.Expected, wv.Actual, stream, expected, actual)
	}
}

// checkFor calls f every interval until it returns nil, and fails the test
// with f's last error if that has not happened within timeout.
func checkFor(t *testing.T, timeout, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("after %v: %v", timeout, err)
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting: %v", err)
		}
	}
}

// collector follows a subscription in a goroutine of its own, so that the
// subscription keeps reading while the test appends.
type collector struct {
	sub    eventstore.Subscription
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	evs []eventstore.RecordedEvent
	err error
}

func collect(t *testing.T, sub eventstore.Subscription) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	c := &collector{sub: sub, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			evs, err := sub.Next(ctx)
			c.mu.Lock()
			if err == nil && len(evs) == 0 {
				err = errors.New("Next returned no events and no error")
			}
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.evs = append(c.evs, evs...)
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		c.cancel()
		sub.Close()
		select {
		case <-c.done:
		case <-time.After(waitTimeout):
			t.Errorf("subscription Next still running %v after its context was cancelled and it was closed", waitTimeout)
		}
	})
	return c
}

// waitUntil waits until the collector has seen an event at or past position
// upTo, and fails if the subscription ends first.
func (c *collector) waitUntil(t *testing.T, upTo eventstore.Position) {
	t.Helper()
	checkFor(t, waitTimeout, 2*time.Millisecond, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			return nil // reported by stop
		}
		if n := len(c.evs); n > 0 && c.evs[n-1].Position >= upTo {
			return nil
		}
		return fmt.Errorf("subscription has %d events, has not reached position %d", len(c.evs), upTo)
	})
}

// stop ends the collector and returns what it saw up to position upTo. It
// fails the test if the subscription ended for any reason but the stop.
func (c *collector) stop(t *testing.T, upTo eventstore.Position) []eventstore.RecordedEvent {
	t.Helper()
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		t.Fatalf("subscription ended early: %v", err)
	}
	c.cancel()
	select {
	case <-c.done:
	case <-timeAfter(t, waitTimeout):
		t.Fatalf("subscription Next still running %v after its context was cancelled", waitTimeout)
	}
	if !errors.Is(c.err, context.Canceled) {
		t.Errorf("subscription Next after its context was cancelled: %v, want context.Canceled", c.err)
	}
	var out []eventstore.RecordedEvent
	for _, e := range c.evs {
		if e.Position <= upTo {
			out = append(out, e)
		}
	}
	return out
}

// timeAfter is time.After with its timer stopped when the test ends.
func timeAfter(t *testing.T, d time.Duration) <-chan time.Time {
	tm := time.NewTimer(d)
	t.Cleanup(func() { tm.Stop() })
	return tm.C
}

// next calls sub.Next(ctx) and fails the test if Next has not returned within
// waitTimeout: every context the suite gives Next ends sooner than that, so
// a Next still running then ignores its context.
func next(t *testing.T, sub eventstore.Subscription, ctx context.Context) ([]eventstore.RecordedEvent, error) {
	t.Helper()
	type result struct {
		evs []eventstore.RecordedEvent
		err error
	}
	ch := make(chan result, 1)
	go func() {
		evs, err := sub.Next(ctx)
		ch <- result{evs, err}
	}()
	select {
	case r := <-ch:
		return r.evs, r.err
	case <-timeAfter(t, waitTimeout):
		sub.Close()
		t.Fatalf("Next did not return within %v", waitTimeout)
		return nil, nil
	}
}
