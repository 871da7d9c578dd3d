package esdb

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"herald/infra/eventstore"
)

// ReadStream returns up to limit events of stream with version > after, in
// version order. A stream never written, or deleted, gives
// eventstore.ErrStreamNotFound.
func (s *Store) ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	op := "read stream " + stream
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	if after >= maxLogPosition {
		// No stream is that long; only whether it exists is left to say.
		version, _, err := s.currentVersion(ctx, stream)
		switch {
		case err != nil:
			return nil, s.portError(ctx, op, err)
		case version == 0:
			return nil, fmt.Errorf("%s: %w", op, eventstore.ErrStreamNotFound)
		}
		return nil, nil
	}
	rs, err := s.client.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Forwards, From: firstRevisionAfter(after)}, uint64(limit))
	if err != nil {
		return nil, s.readError(ctx, op, err)
	}
	defer rs.Close()
	var out []eventstore.RecordedEvent
	for len(out) < limit {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.readError(ctx, op, err)
		}
		if ev.Event == nil {
			continue
		}
		out = append(out, toRecorded(ev.Event))
	}
	return out, nil
}

func (s *Store) readError(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil && isStreamMissing(err) {
		return fmt.Errorf("%s: %w", op, eventstore.ErrStreamNotFound)
	}
	return s.portError(ctx, op, err)
}

// ReadAll returns up to limit events of $all with position > after, in
// commit order, leaving out EventStoreDB's system events. after must be 0, a
// position this store returned, or beyond the end of the log (see the
// package documentation).
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error) {
	op := fmt.Sprintf("read $all after %d", after)
	if err := s.enter(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if limit <= 0 || after > maxLogPosition {
		return nil, nil
	}
	out := make([]eventstore.RecordedEvent, 0, min(limit, 1024))
	last := after
	from := allFrom(after)
	for len(out) < limit {
		// One more than needed, since a read from a position includes
		// the event there; system events may take some of the page, so
		// read on until the page comes back short.
		want := min(limit-len(out)+1, 4096)
		got, err := s.readAllPage(ctx, from, want, func(e *esdb.RecordedEvent) {
			pos := positionOf(e.Position)
			if pos <= last || len(out) == limit {
				return
			}
			last = pos
			if !isSystemType(e.EventType) {
				out = append(out, toRecorded(e))
			}
		})
		if err != nil {
			return nil, s.portError(ctx, op, err)
		}
		if got < want {
			break
		}
		from = esdb.Position{Commit: uint64(last), Prepare: uint64(last)}
	}
	return out, nil
}

// readAllPage reads up to n events of $all forward from from, handing each to
// f, and returns how many the server sent.
func (s *Store) readAllPage(ctx context.Context, from esdb.AllPosition, n int, f func(*esdb.RecordedEvent)) (int, error) {
	rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Forwards, From: from}, uint64(n))
	if err != nil {
		return 0, err
	}
	defer rs.Close()
	got := 0
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got++
		if e := ev.OriginalEvent(); e != nil {
			f(e)
		}
	}
}

// Head returns the position of the last event of $all that is not a system
// event, or 0 when there is none. It reads $all backwards from the end: one
// event, and more pages only while the newest events are the server's own.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	const op = "read $all head"
	if err := s.enter(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer s.leave()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	var from esdb.AllPosition = esdb.End{}
	n := 1
	for {
		var head eventstore.Position
		var oldest *esdb.Position
		got := 0
		rs, err := s.client.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: from}, uint64(n))
		if err != nil {
			return 0, s.portError(ctx, op, err)
		}
		for head == 0 {
			ev, err := rs.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rs.Close()
				return 0, s.portError(ctx, op, err)
			}
			got++
			e := ev.OriginalEvent()
			if e == nil {
				continue
			}
			p := e.Position
			oldest = &p
			if !isSystemType(e.EventType) {
				head = positionOf(e.Position)
			}
		}
		rs.Close()
		if head != 0 || got < n || oldest == nil {
			return head, nil
		}
		// Backward reads exclude the event at their starting position.
		from, n = *oldest, 64
	}
}
