package recipients

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"herald/domain"
	"herald/infra/eventstore"
)

// MaxConflictRetries is how many times a command reloads the stream and
// decides again after another writer appended first, before giving up with
// ErrContention.
const MaxConflictRetries = 5

// readPageSize is how many events a load reads per ReadStream call.
const readPageSize = 256

// executor runs the load → decide → append loop of every recipient
// command: the template commands' loop, for the RecipientProfile aggregate.
type executor struct {
	store eventstore.Store
	newID func() string
	// writes, when set, counts the appends this process made to recipient
	// streams: the Planner's cache drops what it knew when it moves.
	writes *atomic.Int64
}

// load rebuilds the recipient from its stream; a stream that does not
// exist gives the zero RecipientProfile.
func (x executor) load(ctx context.Context, id domain.RecipientID) (domain.RecipientProfile, error) {
	stream := domain.RecipientStream(id)
	var (
		state domain.RecipientProfile
		after uint64
	)
	for {
		recs, err := x.store.ReadStream(ctx, stream, after, readPageSize)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return state, nil
		}
		if err != nil {
			return domain.RecipientProfile{}, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range recs {
			e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
			if err != nil {
				return domain.RecipientProfile{}, fmt.Errorf("load %s version %d: %w", stream, rec.Version, err)
			}
			state = domain.EvolveRecipient(state, e)
			after = rec.Version
		}
		if len(recs) < readPageSize {
			return state, nil
		}
	}
}

func (x executor) encode(events []domain.Event, meta eventstore.Metadata) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.EventData{ID: x.newID(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: data, Metadata: meta}
	}
	return out, nil
}

// execute loads the recipient, decides, and appends expecting the version
// it decided on; on a conflict it reloads and decides again, at most
// MaxConflictRetries times. Decision errors are returned as they are.
func (x executor) execute(ctx context.Context, id domain.RecipientID, meta eventstore.Metadata,
	decide func(domain.RecipientProfile) ([]domain.Event, error)) (Result, error) {
	stream := domain.RecipientStream(id)
	for attempt := 0; ; attempt++ {
		state, err := x.load(ctx, id)
		if err != nil {
			return Result{}, err
		}
		events, err := decide(state)
		if err != nil {
			return Result{Recipient: state}, err
		}
		if len(events) == 0 {
			return Result{Recipient: state}, nil
		}
		data, err := x.encode(events, meta)
		if err != nil {
			return Result{}, fmt.Errorf("encode for %s: %w", stream, err)
		}
		_, err = x.store.Append(ctx, stream, eventstore.Exactly(uint64(state.Version())), data...)
		switch {
		case err == nil:
			if x.writes != nil {
				x.writes.Add(1)
			}
			created := !state.Exists()
			for _, e := range events {
				state = domain.EvolveRecipient(state, e)
			}
			return Result{Recipient: state, Changed: true, Created: created}, nil
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
			return Result{}, fmt.Errorf("append to %s: %w", stream, err)
		case attempt >= MaxConflictRetries:
			return Result{}, fmt.Errorf("append to %s: %w: %w", stream, ErrContention, err)
		}
	}
}
