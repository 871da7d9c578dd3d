package aggexec_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"herald/commands/aggexec"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

var schedule = aggexec.Aggregate[domain.Schedule]{
	Stream:  func(id string) string { return domain.ScheduleStream(domain.ScheduleID(id)) },
	Replay:  aggexec.Evolving(domain.EvolveSchedule),
	Version: domain.Schedule.Version,
}

// racingStore makes every append conflict, as if another writer always
// got there first.
type racingStore struct {
	eventstore.Store
	appends int
}

func (s *racingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.appends++
	return s.Store.Append(ctx, stream, eventstore.Exactly(1<<40), events...) // a version the stream never has
}

var errBusy = errors.New("busy")

func TestExecute(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	n := 0
	newID := func() string { n++; return fmt.Sprintf("event-%d", n) }
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	create := func(sc domain.Schedule) ([]domain.Event, error) {
		if sc.Version() > 0 {
			return nil, nil // already there: nothing to do
		}
		return []domain.Event{domain.ScheduleCreated{ScheduleID: "daily", Spec: domain.ScheduleSpec{EverySeconds: 3600, TimeZone: "UTC", StartAt: start}, CreatedAt: start}}, nil
	}
	load := func(s eventstore.Store) func(context.Context) (domain.Schedule, error) {
		return func(ctx context.Context) (domain.Schedule, error) {
			return aggexec.LoadFrom(ctx, s, schedule, "daily", domain.Schedule{}, 0)
		}
	}
	loop := aggexec.Loop{Store: store, NewID: newID, Contention: errBusy}

	sc, events, err := aggexec.Execute(ctx, loop, schedule, "daily", eventstore.Metadata{Actor: "test"}, load(store), create)
	if err != nil || len(events) != 1 || sc.Version() != 1 {
		t.Fatalf("create: version %d, %d events, %v", sc.Version(), len(events), err)
	}
	// A repeat decides nothing and appends nothing.
	sc, events, err = aggexec.Execute(ctx, loop, schedule, "daily", eventstore.Metadata{}, load(store), create)
	if err != nil || len(events) != 0 || sc.Version() != 1 {
		t.Fatalf("repeat: version %d, %d events, %v", sc.Version(), len(events), err)
	}
	// A refusal comes back as it is, with the state it was decided on.
	refusal := errors.New("refused")
	sc, _, err = aggexec.Execute(ctx, loop, schedule, "daily", eventstore.Metadata{}, load(store),
		func(domain.Schedule) ([]domain.Event, error) { return nil, refusal })
	if err != refusal || sc.Version() != 1 {
		t.Fatalf("refusal: version %d, %v", sc.Version(), err)
	}
	// Endless conflicts: MaxConflictRetries retries, then the loop's
	// contention error.
	racing := &racingStore{Store: store}
	loop.Store = racing
	_, _, err = aggexec.Execute(ctx, loop, schedule, "other", eventstore.Metadata{}, load(racing),
		func(domain.Schedule) ([]domain.Event, error) {
			return []domain.Event{domain.SchedulePaused{ScheduleID: "other", PausedAt: start}}, nil
		})
	if !errors.Is(err, errBusy) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) || racing.appends != aggexec.MaxConflictRetries+1 {
		t.Fatalf("contention: %v after %d appends, want errBusy after %d", err, racing.appends, aggexec.MaxConflictRetries+1)
	}
}
