package esdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"herald/infra/eventstore"
)

// Subscribe follows $all after position after through an EventStoreDB
// catch-up subscription with the server-side filter that leaves out system
// events. Events already committed come first, then live ones, each once and
// in commit order. When the server drops the subscription (a restart, a
// leader change, a network fault) it is re-opened from the position of the
// last event handed to the caller, after a delay that doubles from the
// WithResubscribeBackoff minimum, so the caller sees neither a gap nor a
// duplicate. The first subscription is opened before Subscribe returns, so an
// unreachable server shows here.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error) {
	op := fmt.Sprintf("subscribe to $all after %d", after)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.startWorker(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	subCtx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.life, func() { cancel(eventstore.ErrClosed) })
	open := func(ctx context.Context, after eventstore.Position) (feed, error) {
		sub, err := s.client.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{
			From:   allFrom(after),
			Filter: esdb.ExcludeSystemEventsFilter(),
		})
		if err != nil {
			return nil, err
		}
		return sub, nil
	}
	first, err := open(subCtx, after)
	if err != nil {
		stop()
		cancel(nil)
		s.workers.Done()
		return nil, s.portError(ctx, op, err)
	}
	return follow(subCtx, cancel, first, after, open, followConfig{
		batch:      s.cfg.batchSize,
		backoffMin: s.cfg.backoffMin,
		backoffMax: s.cfg.backoffMax,
	}, func() {
		stop()
		s.workers.Done()
	}), nil
}

// feed is what a follower needs of an *esdb.Subscription: the next message,
// and a way to end it that also releases a blocked Recv.
type feed interface {
	Recv() *esdb.SubscriptionEvent
	Close() error
}

// feedOpener opens a feed of $all events after position after.
type feedOpener func(ctx context.Context, after eventstore.Position) (feed, error)

type followConfig struct {
	batch                  int
	backoffMin, backoffMax time.Duration
}

// subscription is an eventstore.Subscription fed by one goroutine that owns
// the server subscription and re-opens it when dropped.
type subscription struct {
	events chan eventstore.RecordedEvent
	batch  int

	ended chan struct{} // closed when the follower stopped; err is set
	err   error

	closing   chan struct{}
	closeOnce sync.Once
	cancel    context.CancelCauseFunc
	done      chan struct{} // closed when the follower goroutine returned
}

// follow starts the goroutine that reads first (and its successors) and
// returns the subscription it feeds. ctx ends the subscription; its cause
// (eventstore.ErrClosed, or the caller's context error) is what Next reports
// then. onExit runs when the goroutine returns.
func follow(ctx context.Context, cancel context.CancelCauseFunc, first feed, after eventstore.Position, open feedOpener, cfg followConfig, onExit func()) *subscription {
	s := &subscription{
		events:  make(chan eventstore.RecordedEvent, 2*cfg.batch),
		batch:   cfg.batch,
		ended:   make(chan struct{}),
		closing: make(chan struct{}),
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		defer onExit()
		s.err = s.run(ctx, first, after, open, cfg)
		close(s.ended)
	}()
	return s
}

// run delivers events until ctx ends or the server refuses to subscribe, and
// returns the error that ended it.
func (s *subscription) run(ctx context.Context, f feed, after eventstore.Position, open feedOpener, cfg followConfig) error {
	last := after
	delay := cfg.backoffMin
	for {
		if f == nil {
			if !wait(ctx, delay) {
				return endCause(ctx)
			}
			delay = min(2*delay, cfg.backoffMax)
			var err error
			if f, err = open(ctx, last); err != nil {
				if ctx.Err() != nil {
					return endCause(ctx)
				}
				if permanent(err) {
					return fmt.Errorf("resubscribe to $all after %d: %w", last, permanentError(err))
				}
				continue
			}
		}
		cur := f
		stop := context.AfterFunc(ctx, func() { cur.Close() })
		delivered := s.drain(ctx, cur, &last)
		stop()
		cur.Close()
		f = nil
		if ctx.Err() != nil {
			return endCause(ctx)
		}
		if delivered {
			delay = cfg.backoffMin
		}
	}
}

// drain hands the events of f after *last to the caller until f is dropped,
// and reports whether it handed over any.
func (s *subscription) drain(ctx context.Context, f feed, last *eventstore.Position) (delivered bool) {
	for {
		msg := f.Recv()
		switch {
		case msg == nil:
			return delivered
		case msg.SubscriptionDropped != nil:
			return delivered
		case msg.EventAppeared != nil:
			e := msg.EventAppeared.OriginalEvent()
			if e == nil {
				continue
			}
			pos := positionOf(e.Position)
			// A re-opened subscription may start at the last event
			// delivered; the server filter already drops system events,
			// this is a second guard.
			if pos <= *last || isSystemType(e.EventType) {
				continue
			}
			select {
			case s.events <- toRecorded(e):
				*last = pos
				delivered = true
			case <-ctx.Done():
				return delivered
			}
		}
		// Checkpoints, caught-up and fell-behind notices carry nothing
		// the port needs.
	}
}

// Next returns the next events: it waits for one, then adds those already
// received, up to the batch size, without waiting for more. It returns
// ctx.Err() when ctx ends first, eventstore.ErrClosed after Close or the
// store's Close, and the context error of Subscribe once that context ended.
func (s *subscription) Next(ctx context.Context) ([]eventstore.RecordedEvent, error) {
	select {
	case <-s.closing:
		return nil, eventstore.ErrClosed
	case <-s.ended:
		return nil, s.err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var first eventstore.RecordedEvent
	select {
	case first = <-s.events:
	case <-s.closing:
		return nil, eventstore.ErrClosed
	case <-s.ended:
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	batch := make([]eventstore.RecordedEvent, 1, min(s.batch, 1+len(s.events)))
	batch[0] = first
	for len(batch) < s.batch {
		select {
		case e := <-s.events:
			batch = append(batch, e)
		default:
			return batch, nil
		}
	}
	return batch, nil
}

// Close ends the subscription and waits for its goroutine. It is safe to
// call more than once.
func (s *subscription) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel(eventstore.ErrClosed)
	})
	<-s.done
	return nil
}

// endCause is the error a subscription ended by ctx reports.
func endCause(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, eventstore.ErrClosed) {
		return eventstore.ErrClosed
	}
	if cause == nil {
		cause = ctx.Err()
	}
	return fmt.Errorf("subscription to $all ended: %w", cause)
}

// permanent reports whether retrying to subscribe cannot help.
func permanent(err error) bool {
	code, ok := errorCode(err)
	if !ok {
		return false
	}
	switch code {
	case esdb.ErrorCodeAccessDenied, esdb.ErrorCodeUnauthenticated, esdb.ErrorCodeUnsupportedFeature, esdb.ErrorCodeConnectionClosed:
		return true
	}
	return false
}

// permanentError is err in the port's terms: a closed client is ErrClosed.
func permanentError(err error) error {
	if code, ok := errorCode(err); ok && code == esdb.ErrorCodeConnectionClosed {
		return eventstore.ErrClosed
	}
	return err
}

// wait waits for d, and reports false if ctx ends first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
