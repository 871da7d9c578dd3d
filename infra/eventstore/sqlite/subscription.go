package sqlite

import (
	"context"
	"sync"
	"time"

	"herald/infra/eventstore"
)

const subscriptionBatch = 1024

// Subscribe implements eventstore.Store. Appends made through this Store wake
// the subscription at once; appends made by another process sharing the file
// are noticed within Options.PollInterval.
func (s *Store) Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub := &subscription{s: s, last: after, done: make(chan struct{})}
	s.subscribers.Add(1)
	sub.stop = context.AfterFunc(ctx, sub.end)
	return sub, nil
}

type subscription struct {
	s    *Store
	last eventstore.Position
	stop func() bool
	// polled is when the subscription last asked SQLite rather than the
	// tail whether there was more (zero: never, so its first read does).
	polled time.Time

	closeOnce sync.Once
	done      chan struct{}
}

func (sub *subscription) Next(ctx context.Context) ([]eventstore.RecordedEvent, error) {
	timer := time.NewTimer(sub.s.opts.PollInterval)
	defer timer.Stop()
	for {
		select {
		case <-sub.done:
			return nil, eventstore.ErrClosed
		default:
		}
		if sub.s.closed.Load() {
			return nil, eventstore.ErrClosed
		}
		// Take the wake-up channel before reading, so that a commit landing
		// between the read and the wait is not missed.
		changed := sub.s.changed()
		var evs []eventstore.RecordedEvent
		var err error
		if !sub.s.tail.holdsUpTo(sub.last) || time.Since(sub.polled) >= sub.s.opts.PollInterval {
			// Up to the end of the tail, the subscription has everything
			// this Store committed: only another process could have
			// written more, and asking SQLite on every wake-up to find
			// nothing cost each follower a query per commit. It asks once
			// per poll interval, the delay promised for such appends.
			sub.polled = time.Now()
			evs, err = sub.s.ReadAll(ctx, sub.last, subscriptionBatch)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if len(evs) > 0 {
			sub.last = evs[len(evs)-1].Position
			return evs, nil
		}
		timer.Reset(sub.s.opts.PollInterval)
		select {
		case <-changed:
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sub.done:
			return nil, eventstore.ErrClosed
		}
	}
}

func (sub *subscription) end() {
	sub.closeOnce.Do(func() {
		close(sub.done)
		sub.s.subscribers.Add(-1)
	})
}

func (sub *subscription) Close() error {
	sub.end()
	sub.stop()
	return nil
}
