package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// Subscriptions answer from the store's in-memory tail and ask SQLite once
// per poll interval. These tests use poll intervals far longer than their
// deadlines where the answer must not wait for a poll, so a subscription
// that waits for one fails them instead of passing late.

func openStore(t *testing.T, path string, poll time.Duration) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{PollInterval: poll})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendOne(t *testing.T, s eventstore.Store, stream string) eventstore.Position {
	t.Helper()
	res, err := s.Append(t.Context(), stream, eventstore.NoStream, eventstore.EventData{
		ID: fmt.Sprintf("%s-e", stream), Type: "test", SchemaVersion: 1, Data: []byte(`{"n":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	return res.Position
}

// next returns the next batch of sub, failing the test if none comes
// within d.
func next(t *testing.T, sub eventstore.Subscription, d time.Duration) []eventstore.RecordedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	evs, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	return evs
}

// A tail left from before the store's last subscriber closed would say a
// new subscriber at its end had everything; the appends made meanwhile
// must reach it at once.
func TestSubscriptionAfterAnUnfollowedAppendReadsIt(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "events.db"), time.Hour)
	first, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	p1 := appendOne(t, s, "s-1")
	if evs := next(t, first, 10*time.Second); len(evs) != 1 || evs[0].Position != p1 {
		t.Fatalf("first subscriber got %+v", evs)
	}
	first.Close()
	p2 := appendOne(t, s, "s-2") // no one follows: the tail is not kept
	again, err := s.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	var got []eventstore.Position
	for len(got) < 2 {
		for _, e := range next(t, again, 10*time.Second) {
			got = append(got, e.Position)
		}
	}
	if len(got) != 2 || got[0] != p1 || got[1] != p2 {
		t.Fatalf("subscriber from 0 got positions %v, want [%d %d]", got, p1, p2)
	}
}

// A subscriber at the end of the tail learns of another process's append
// by asking SQLite once per poll interval, even while its own store writes
// nothing.
func TestIdleSubscriberSeesAnotherProcessAppend(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	a, b := openStore(t, path, 20*time.Millisecond), openStore(t, path, time.Hour)
	sub, err := a.Subscribe(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	p1 := appendOne(t, a, "s-a")
	if evs := next(t, sub, 10*time.Second); len(evs) != 1 || evs[0].Position != p1 {
		t.Fatalf("got %+v", evs)
	}
	p2 := appendOne(t, b, "s-b")
	if evs := next(t, sub, 10*time.Second); len(evs) != 1 || evs[0].Position != p2 {
		t.Fatalf("after another process appended: %+v, want the event at %d", evs, p2)
	}
}

// A new subscription asks SQLite first, even at the end of a tail that
// other subscribers keep: another process may have written past it.
func TestNewSubscriptionReadsTheLogFirst(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.db")
	a, b := openStore(t, path, time.Hour), openStore(t, path, time.Hour)
	keeper, err := a.Subscribe(t.Context(), 0) // keeps a's tail
	if err != nil {
		t.Fatal(err)
	}
	defer keeper.Close()
	p1 := appendOne(t, a, "s-a")
	if evs := next(t, keeper, 10*time.Second); len(evs) != 1 {
		t.Fatalf("got %+v", evs)
	}
	p2 := appendOne(t, b, "s-b")
	sub, err := a.Subscribe(t.Context(), p1)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if evs := next(t, sub, 10*time.Second); len(evs) != 1 || evs[0].Position != p2 {
		t.Fatalf("new subscriber from %d got %+v, want the event at %d", p1, evs, p2)
	}
}
