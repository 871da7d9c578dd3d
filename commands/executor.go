package commands

import (
	"context"
	"errors"
	"fmt"

	"herald/commands/aggexec"
	"herald/domain"
	"herald/infra/eventstore"
)

// MaxConflictRetries is how many times a command reloads its stream and
// decides again after another writer appended first: as many as the other
// aggregates' commands (aggexec). Each round lets at least one competing
// writer through, so contention this deep is a sign of a hot stream,
// reported as ErrContention rather than spinning.
const MaxConflictRetries = aggexec.MaxConflictRetries

// decideFunc is one decision on a loaded state. Returning (nil, nil) means
// nothing to append.
type decideFunc func(state domain.Notification) ([]domain.Event, error)

// executor runs the load → decide → append loop shared by every handler.
type executor struct {
	store eventstore.Store
	newID func() string
	cache *stateCache // nil: every load reads the whole stream
}

// outcome is what an execution left behind.
type outcome struct {
	// State is the notification after the appended events (or as loaded
	// when nothing was appended).
	State domain.Notification
	// Events are the events appended; empty for a no-op.
	Events []domain.Event
}

// load rebuilds the notification from its stream, reading it in pages,
// from the cached state when there is one (then only the events appended
// since are read). A stream that does not exist gives the zero
// Notification.
//
// With trust set, a cached state is returned as it is, without asking the
// log whether anything was appended since; unread then says so.
func (x executor) load(ctx context.Context, id domain.NotificationID, trust bool) (state domain.Notification, unread bool, err error) {
	stream := domain.NotificationStream(id)
	state = x.cache.get(id)
	if trust && state.Exists() {
		return state, true, nil
	}
	after := uint64(state.Version())
	for {
		recs, err := x.store.ReadStream(ctx, stream, after, aggexec.ReadPageSize)
		if errors.Is(err, eventstore.ErrStreamNotFound) {
			return state, false, nil
		}
		if err != nil {
			return domain.Notification{}, false, fmt.Errorf("load %s: %w", stream, err)
		}
		for _, rec := range recs {
			e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
			if err != nil {
				return domain.Notification{}, false, fmt.Errorf("load %s version %d: %w", stream, rec.Version, err)
			}
			state = domain.EvolveNotification(state, e)
			after = rec.Version
		}
		if len(recs) < aggexec.ReadPageSize {
			x.cache.put(state)
			return state, false, nil
		}
	}
}

// encode turns domain events into event store records with fresh UUIDv7
// IDs and the command's metadata.
func (x executor) encode(events []domain.Event, meta eventstore.Metadata) ([]eventstore.EventData, error) {
	out := make([]eventstore.EventData, len(events))
	for i, e := range events {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			return nil, err
		}
		out[i] = eventstore.EventData{
			ID:            x.newID(),
			Type:          typ,
			SchemaVersion: domain.EventSchemaVersion,
			Data:          data,
			Metadata:      meta,
		}
	}
	return out, nil
}

// execute loads the stream of id, decides, and appends the events expecting
// the version it decided on. On a version conflict it reloads and decides
// again, at most MaxConflictRetries times, then gives up with ErrContention.
// Decision errors are returned as they are (wrapping domain sentinels).
//
// The first decision starts from the cached state without reading the log
// (the dispatcher's attempt and its outcome follow the send that cached
// it, and that read was a tenth of the delivery path's CPU): an append
// names the version it decided on, so a state that was stale costs a
// conflict and a reload. A refusal or a no-op appends nothing to check it
// against, so one decided on an unread state is decided again after
// reading the log.
func (x executor) execute(ctx context.Context, id domain.NotificationID, meta eventstore.Metadata, decide decideFunc) (outcome, error) {
	stream := domain.NotificationStream(id)
	trust := true
	for conflicts := 0; ; {
		state, unread, err := x.load(ctx, id, trust)
		if err != nil {
			return outcome{}, err
		}
		trust = false
		events, err := decide(state)
		if unread && (err != nil || len(events) == 0) {
			continue
		}
		if err != nil {
			return outcome{State: state}, err
		}
		if len(events) == 0 {
			return outcome{State: state}, nil
		}
		data, err := x.encode(events, meta)
		if err != nil {
			return outcome{}, fmt.Errorf("encode for %s: %w", stream, err)
		}
		_, err = x.store.Append(ctx, stream, eventstore.Exactly(uint64(state.Version())), data...)
		switch {
		case err == nil:
			next := evolveAll(state, events)
			x.cache.put(next)
			return outcome{State: next, Events: events}, nil
		case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
			return outcome{}, fmt.Errorf("append to %s: %w", stream, err)
		case conflicts >= MaxConflictRetries:
			return outcome{}, fmt.Errorf("append to %s: %w: %w", stream, ErrContention, err)
		}
		conflicts++
		if err := aggexec.Backoff(ctx, conflicts); err != nil {
			return outcome{}, fmt.Errorf("append to %s: %w", stream, err)
		}
	}
}

func evolveAll(state domain.Notification, events []domain.Event) domain.Notification {
	for _, e := range events {
		state = domain.EvolveNotification(state, e)
	}
	return state
}
