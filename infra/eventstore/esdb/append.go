package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"herald/infra/eventstore"
)

// Append adds events to stream if its version satisfies expected. It returns
// when the server has acknowledged the write, which EventStoreDB does once
// the events are durable (on a cluster: on a majority of nodes). A version
// mismatch returns a *eventstore.WrongVersionError with the version the server
// reported. Appending no events checks expected against a read of the
// stream's last event and writes nothing.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	if err := s.enter(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	if err := checkStream(stream); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("append: %w", err)
	}
	now := time.Now()
	data := make([]esdb.EventData, len(events))
	for i := range events {
		id, err := checkEvent(&events[i])
		if err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
		}
		if data[i], err = toEventData(&events[i], id, now); err != nil {
			return eventstore.AppendResult{}, fmt.Errorf("append to %s: %w: %v", stream, eventstore.ErrInvalidEvent, err)
		}
	}
	if len(data) == 0 {
		return s.appendNothing(ctx, stream, expected)
	}

	res, err := s.client.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: expectedRevision(expected)}, data...)
	if err != nil {
		return s.appendFailed(ctx, stream, expected, events, err)
	}
	out := eventstore.AppendResult{
		Version:  versionOf(res.NextExpectedVersion),
		Position: eventstore.Position(res.CommitPosition),
	}
	if len(data) > 1 {
		// The server's answer to a multi-event append carries one
		// position, and which of the events it belongs to is not part of
		// any documented contract; the port wants the last event's. One
		// read of that event settles it.
		if e, ok := s.eventAt(ctx, stream, res.NextExpectedVersion); ok && e.Position != 0 && e.ID == events[len(events)-1].ID {
			out.Position = e.Position
		}
	}
	return out, nil
}

// appendFailed maps the error of an append that the server refused or that
// did not complete.
func (s *Store) appendFailed(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData, err error) (eventstore.AppendResult, error) {
	if isWrongVersion(err) {
		actual, ok := wrongVersionActual(err)
		if !ok {
			// Older or newer clients may word the error otherwise: ask
			// the stream. Racy, but only informative.
			actual, _, _ = s.currentVersion(ctx, stream)
		}
		return eventstore.AppendResult{}, &eventstore.WrongVersionError{Stream: stream, Expected: expected, Actual: actual}
	}
	if ctx.Err() != nil {
		// The request may have reached the server before the context
		// ended; then the events are there and the append succeeded.
		if res, ok := s.landed(ctx, stream, expected, events); ok {
			return res, nil
		}
	}
	return eventstore.AppendResult{}, s.portError(ctx, "append to "+stream, err)
}

// landed looks once, under a short timeout of its own, for the last event of
// an append whose context ended, and returns where it landed.
func (s *Store) landed(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, bool) {
	probe, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.probeTimeout)
	defer cancel()
	last := events[len(events)-1].ID
	if v, ok := expected.Version(); ok {
		// Had it landed, its last event would be at this revision.
		rev := v + uint64(len(events)) - 1
		if e, found := s.eventAt(probe, stream, rev); found && e.ID == last {
			return eventstore.AppendResult{Version: e.Version, Position: e.Position}, true
		}
		return eventstore.AppendResult{}, false
	}
	// With Any, the append lies somewhere near the end of the stream.
	const window = 256
	rs, err := s.client.ReadStream(probe, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, window)
	if err != nil {
		return eventstore.AppendResult{}, false
	}
	defer rs.Close()
	for {
		ev, err := rs.Recv()
		if err != nil {
			return eventstore.AppendResult{}, false
		}
		if ev.Event != nil && ev.Event.EventID.String() == last {
			e := toRecorded(ev.Event)
			return eventstore.AppendResult{Version: e.Version, Position: e.Position}, true
		}
	}
}

// eventAt reads the event at revision rev of stream.
func (s *Store) eventAt(ctx context.Context, stream string, rev uint64) (eventstore.RecordedEvent, bool) {
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: esdb.Revision(rev)}, 1)
	if err != nil {
		return eventstore.RecordedEvent{}, false
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil || ev.Event == nil || ev.Event.EventNumber != rev {
		return eventstore.RecordedEvent{}, false
	}
	return toRecorded(ev.Event), true
}

// currentVersion returns the stream's version and the position of its last
// event (0 and 0 when it has none).
func (s *Store) currentVersion(ctx context.Context, stream string) (uint64, eventstore.Position, error) {
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, 0, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	switch {
	case errors.Is(err, io.EOF), isStreamMissing(err):
		return 0, 0, nil
	case err != nil:
		return 0, 0, err
	case ev.Event == nil:
		return 0, 0, nil
	}
	e := toRecorded(ev.Event)
	return e.Version, e.Position, nil
}

// appendNothing checks expected without writing: the gRPC append of no
// events is not something the port can rely on across server versions.
func (s *Store) appendNothing(ctx context.Context, stream string, expected eventstore.ExpectedVersion) (eventstore.AppendResult, error) {
	version, pos, err := s.currentVersion(ctx, stream)
	if err != nil {
		return eventstore.AppendResult{}, s.portError(ctx, "append to "+stream, err)
	}
	if !expected.Allows(version) {
		return eventstore.AppendResult{}, &eventstore.WrongVersionError{Stream: stream, Expected: expected, Actual: version}
	}
	return eventstore.AppendResult{Version: version, Position: pos}, nil
}

// AppendMany performs each request as an Append of its own: EventStoreDB has
// no transaction across streams. Up to WithAppendConcurrency requests run at
// once, in no particular order; each result and error is at its request's
// index. Two requests for one stream may land in either order.
func (s *Store) AppendMany(ctx context.Context, reqs []eventstore.AppendRequest) ([]eventstore.AppendResult, []error) {
	results := make([]eventstore.AppendResult, len(reqs))
	errs := make([]error, len(reqs))
	sem := make(chan struct{}, s.cfg.appendConcurrency)
	var wg sync.WaitGroup
	for i, r := range reqs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i], errs[i] = s.Append(ctx, r.Stream, r.Expected, r.Events...)
		})
	}
	wg.Wait()
	return results, errs
}
