// Package aggexec is the load → decide → append loop of the event-sourced
// aggregates other than notifications (groups, batches, schedules, and the
// loading of templates and recipients): read a stream and fold it, decide,
// append expecting the version decided on, and on a conflict reload and
// decide again a bounded number of times.
//
// It knows nothing of any one aggregate: an Aggregate value says how to
// name its stream and fold its events. The notification commands keep their
// own loop (commands/executor.go), which adds a state cache.
package aggexec

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// MaxConflictRetries is how many times a command reloads its stream and
// decides again after another writer appended first.
const MaxConflictRetries = 5

// ReadPageSize is how many events a load reads per ReadStream call.
const ReadPageSize = 256

// Aggregate tells the loop how to name and fold one aggregate type.
type Aggregate[S any] struct {
	Stream  func(id string) string
	Replay  func(state S, events []domain.Event) S
	Version func(S) int
}

// Evolving makes Replay from a one-event evolve function.
func Evolving[S any](evolve func(S, domain.Event) S) func(S, []domain.Event) S {
	return func(state S, events []domain.Event) S {
		for _, e := range events {
			state = evolve(state, e)
		}
		return state
	}
}

// LoadFrom folds the stream's events after state's version into state, up
// to version upTo (0: to the end). A stream that does not exist leaves
// state as it is.
func LoadFrom[S any](ctx context.Context, store eventstore.Store, a Aggregate[S], id string, state S, upTo int) (S, error) {
	stream := a.Stream(id)
	after := uint64(a.Version(state))
	var pending []domain.Event
	for upTo == 0 || after < uint64(upTo) {
		limit := ReadPageSize
		if upTo > 0 && uint64(upTo)-after < uint64(limit) {
			limit = int(uint64(upTo) - after)
		}
		recs, err := store.ReadStream(ctx, stream, after, limit)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			break
		}
		if err != nil {
			return state, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range recs {
			e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
			if err != nil {
				return state, fmt.Errorf("load %s version %d: %w", stream, rec.Version, err)
			}
			pending = append(pending, e)
			after = rec.Version
		}
		if len(recs) < limit {
			break
		}
	}
	return a.Replay(state, pending), nil
}

// Encode turns domain events into log events carrying meta, each with a
// new ID.
func Encode(events []domain.Event, meta eventstore.Metadata, newID func() string) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.EventData{ID: newID(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: data, Metadata: meta}
	}
	return out, nil
}

// Loop is where Execute appends: the log, the event ID source, and the
// error a command gives up with after MaxConflictRetries conflicts (each
// package has its own, which its problem catalogue maps).
type Loop struct {
	Store      eventstore.Store
	NewID      func() string
	Contention error
}

// Execute loads the aggregate (through load), decides, and appends
// expecting the version it decided on; on a conflict it reloads and decides
// again, at most MaxConflictRetries times. It returns the state after the
// append and the events appended (none for a no-op). Decision errors are
// returned as they are, with the state they were decided on.
func Execute[S any](ctx context.Context, l Loop, a Aggregate[S], id string, meta eventstore.Metadata,
	load func(context.Context) (S, error), decide func(S) ([]domain.Event, error)) (S, []domain.Event, error) {
	stream := a.Stream(id)
	for attempt := 0; ; attempt++ {
		state, err := load(ctx)
		if err != nil {
			return state, nil, err
		}
		events, err := decide(state)
		if err != nil || len(events) == 0 {
			return state, nil, err
		}
		data, err := Encode(events, meta, l.NewID)
		if err != nil {
			return state, nil, fmt.Errorf("encode for %s: %w", stream, err)
		}
		_, err = l.Store.Append(ctx, stream, eventstore.Exactly(uint64(a.Version(state))), data...)
		switch {
		case err == nil:
			return a.Replay(state, events), events, nil
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
			return state, nil, fmt.Errorf("append to %s: %w", stream, err)
		case attempt >= MaxConflictRetries:
			return state, nil, fmt.Errorf("append to %s: %w: %w", stream, l.Contention, err)
		}
		if err := Backoff(ctx, attempt+1); err != nil {
			return state, nil, fmt.Errorf("append to %s: %w", stream, err)
		}
	}
}

// Backoff waits before a command that has lost n appends (n ≥ 1) to other
// writers of its stream reloads and decides again: a random 0 to 2n ms. The
// writers that lost a round to the same winner would otherwise reload and
// collide again together, one winning per round, and some use up their
// retries: a notification's five deliveries, started and finished at once
// by five workers, lost the outcome of a sent message that way until its
// lease ran out. The pause spreads them over the log's group commits. It
// returns ctx's error if ctx ends first.
func Backoff(ctx context.Context, n int) error {
	t := time.NewTimer(rand.N(time.Duration(n) * 2 * time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
