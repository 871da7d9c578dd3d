package groups

import (
	"context"
	"errors"
	"fmt"

	"herald/domain"
	"herald/infra/eventstore"
)

// MaxConflictRetries is how many times a command reloads its stream and
// decides again after another writer appended first.
const MaxConflictRetries = 5

// readPageSize is how many events a load reads per ReadStream call.
const readPageSize = 256

// aggregate tells the shared loop how to name and fold one aggregate type.
type aggregate[S any] struct {
	stream  func(id string) string
	replay  func(state S, events []domain.Event) S
	version func(S) int
}

var groupAggregate = aggregate[domain.Group]{
	stream:  func(id string) string { return domain.GroupStream(domain.GroupID(id)) },
	replay:  domain.ReplayGroup,
	version: domain.Group.Version,
}

var batchAggregate = aggregate[domain.Batch]{
	stream: func(id string) string { return domain.BatchStream(domain.BatchID(id)) },
	replay: func(b domain.Batch, events []domain.Event) domain.Batch {
		for _, e := range events {
			b = domain.EvolveBatch(b, e)
		}
		return b
	},
	version: domain.Batch.Version,
}

// loadFrom folds the stream's events after state's version into state, up
// to version upTo (0: to the end). A stream that does not exist leaves
// state as it is.
func loadFrom[S any](ctx context.Context, store eventstore.Store, a aggregate[S], id string, state S, upTo int) (S, error) {
	stream := a.stream(id)
	after := uint64(a.version(state))
	var pending []domain.Event
	for upTo == 0 || after < uint64(upTo) {
		limit := readPageSize
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
	return a.replay(state, pending), nil
}

func encode(events []domain.Event, meta eventstore.Metadata, newID func() string) ([]eventstore.EventData, error) {
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

// execute loads the aggregate (through load), decides, and appends
// expecting the version it decided on; on a conflict it reloads and decides
// again, at most MaxConflictRetries times. It returns the state after the
// append and the events appended (none for a no-op). Decision errors are
// returned as they are.
func execute[S any](ctx context.Context, store eventstore.Store, newID func() string, a aggregate[S], id string,
	meta eventstore.Metadata, load func(context.Context) (S, error), decide func(S) ([]domain.Event, error)) (S, []domain.Event, error) {
	stream := a.stream(id)
	for attempt := 0; ; attempt++ {
		state, err := load(ctx)
		if err != nil {
			return state, nil, err
		}
		events, err := decide(state)
		if err != nil || len(events) == 0 {
			return state, nil, err
		}
		data, err := encode(events, meta, newID)
		if err != nil {
			return state, nil, fmt.Errorf("encode for %s: %w", stream, err)
		}
		_, err = store.Append(ctx, stream, eventstore.Exactly(uint64(a.version(state))), data...)
		switch {
		case err == nil:
			return a.replay(state, events), events, nil
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
			return state, nil, fmt.Errorf("append to %s: %w", stream, err)
		case attempt >= MaxConflictRetries:
			return state, nil, fmt.Errorf("append to %s: %w: %w", stream, ErrContention, err)
		}
	}
}
