package recipients

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/infra/eventstore"
)

// counterPageSize is how many $all events a catch-up reads per call.
const counterPageSize = 1024

// pruneEvery is how far the newest send time must move before the window
// is pruned again: pruning walks every recipient, so it is not done per
// event.
const pruneEvery = time.Minute

// SendCounterOptions configure a SendCounter.
type SendCounterOptions struct {
	// From is the $all position after which the counter starts reading.
	// Zero reads the whole log, which is right for a fresh process: sends
	// older than Retention are read and dropped.
	From eventstore.Position
	// Retention is how long a send is remembered, measured back from the
	// newest send seen. Zero means domain.MaxFrequencyWindow, the longest
	// window a cap can have (a local day is shorter).
	Retention time.Duration
}

// SendCounter counts, per recipient and category, the notifications
// recently sent, for frequency caps: the sentInWindow argument of
// domain.PlanForRecipient. It follows the $all log: a notification whose
// request carries a recipient ID counts once, at the PlannedAt of its
// first DeliveryPlanned (however many channels it went to); a notification
// whose every channel was suppressed, or that was cancelled or expired
// before it was planned, does not count. Resends do not count either: an
// operator repeating a delivery is not a new notification.
//
// It is eventually consistent. Count sees what the counter has applied,
// which lags the log by the time Run takes to read it (or is current as of
// the last CatchUp). Concurrent sends to one recipient are decided before
// any of them is counted, so a burst can exceed a cap by the number of
// sends in flight at once; caps are a courtesy to the recipient, not a
// hard limit. Memory holds one entry per counted send within Retention and
// one per requested notification not yet planned (scheduled ones).
//
// Safe for concurrent use.
type SendCounter struct {
	store     eventstore.Store
	retention time.Duration

	catchUpMu sync.Mutex // one catch-up reads at a time

	mu        sync.RWMutex
	pos       eventstore.Position
	pending   map[string]pendingSend // notification stream → who, until planned
	sends     map[string][]sentAt    // recipient ID → sends, roughly oldest first
	newest    time.Time
	prunedAt  time.Time
	undecoded int

	// following is true while Run follows the log, once it has read it up
	// to where it stood when Run began.
	following atomic.Bool
	// watchers are told the id of every recipient whose stream an event
	// it applies belongs to (the Planner drops its cached profile).
	watchers []func(recipientID string)
}

// watchRecipients registers f to be called, outside the counter's lock,
// with the id of each recipient whose stream changes. Register before Run.
func (c *SendCounter) watchRecipients(f func(recipientID string)) {
	c.mu.Lock()
	c.watchers = append(c.watchers, f)
	c.mu.Unlock()
}

type pendingSend struct{ recipient, category string }

type sentAt struct {
	category string
	at       time.Time
}

// NewSendCounter returns a counter over store that has read nothing yet;
// call Run (or CatchUp) to fill it. It refuses a nil store and a negative
// retention.
func NewSendCounter(store eventstore.Store, opt SendCounterOptions) (*SendCounter, error) {
	switch {
	case store == nil:
		return nil, fmt.Errorf("new send counter: nil Store")
	case opt.Retention < 0:
		return nil, fmt.Errorf("new send counter: negative Retention")
	case opt.Retention == 0:
		opt.Retention = domain.MaxFrequencyWindow
	}
	return &SendCounter{
		store: store, retention: opt.Retention, pos: opt.From,
		pending: map[string]pendingSend{}, sends: map[string][]sentAt{},
	}, nil
}

// Count returns how many notifications of category the recipient was sent
// at or after since, as far as the counter has read the log.
// domain.AnyCategory counts every category. Sends older than Retention
// have been forgotten, so a since further back undercounts.
func (c *SendCounter) Count(recipient, category string, since time.Time) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, s := range c.sends[recipient] {
		if (category == domain.AnyCategory || s.category == category) && !s.at.Before(since) {
			n++
		}
	}
	return n
}

// SentInWindow returns Count bound to recipient, in the shape
// domain.PlanForRecipient takes.
func (c *SendCounter) SentInWindow(recipient string) func(category string, since time.Time) int {
	return func(category string, since time.Time) int { return c.Count(recipient, category, since) }
}

// Position returns the $all position the counter has applied up to.
func (c *SendCounter) Position() eventstore.Position {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.pos
}

// Undecoded returns how many relevant events could not be decoded and were
// skipped.
func (c *SendCounter) Undecoded() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.undecoded
}

// Run follows the log from the counter's position, live, until ctx ends
// (then it returns nil) or reading fails. Run it once, in its own
// goroutine.
func (c *SendCounter) Run(ctx context.Context) error {
	head, err := c.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("send counter: head: %w", err)
	}
	sub, err := c.store.Subscribe(ctx, c.Position())
	if err != nil {
		return fmt.Errorf("send counter: subscribe: %w", err)
	}
	defer sub.Close()
	defer c.following.Store(false)
	for {
		if !c.following.Load() && c.Position() >= head {
			c.following.Store(true)
		}
		recs, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("send counter: follow: %w", err)
		}
		c.apply(recs)
	}
}

// Following reports whether Run follows the log, having read it up to
// where it stood when Run began: from then on every change is seen within
// the subscription's delay.
func (c *SendCounter) Following() bool { return c.following.Load() }

// CatchUp applies everything committed up to the log's head at the time
// of the call. A caller that needs the count to include its own earlier
// sends calls it first; it may run alongside Run (each event counts once).
func (c *SendCounter) CatchUp(ctx context.Context) error {
	c.catchUpMu.Lock()
	defer c.catchUpMu.Unlock()
	head, err := c.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("send counter: head: %w", err)
	}
	for pos := c.Position(); pos < head; pos = c.Position() {
		recs, err := c.store.ReadAll(ctx, pos, counterPageSize)
		if err != nil {
			return fmt.Errorf("send counter: read $all after %d: %w", pos, err)
		}
		if len(recs) == 0 {
			return nil
		}
		c.apply(recs)
	}
	return nil
}

// apply folds recs (in commit order) into the counter, skipping what is at
// or below the position already applied.
func (c *SendCounter) apply(recs []eventstore.RecordedEvent) {
	var changed []string
	c.mu.Lock()
	watchers := c.watchers
	defer func() {
		for _, id := range changed {
			for _, f := range watchers {
				f(id)
			}
		}
	}()
	defer c.mu.Unlock()
	for _, rec := range recs {
		if rec.Position <= c.pos {
			continue
		}
		c.pos = rec.Position
		if id, ok := strings.CutPrefix(rec.Stream, domain.RecipientStream("")); ok {
			if len(watchers) > 0 {
				changed = append(changed, id)
			}
			continue
		}
		if !strings.HasPrefix(rec.Stream, "notification-") {
			continue
		}
		switch rec.Type {
		case domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeDeliverySuppressed,
			domain.TypeNotificationCancelled, domain.TypeNotificationExpired:
		default:
			continue
		}
		if rec.Type == domain.TypeNotificationRequested {
			// Only the recipient and the category count: decoding the
			// whole request (content, vars) for every send cost the
			// counter most of its time.
			var r struct {
				Request struct {
					Recipient struct {
						ID string `json:"id"`
					} `json:"recipient"`
					Category string `json:"category"`
				} `json:"request"`
			}
			if err := fastjson.Unmarshal(rec.Data, &r); err != nil {
				c.undecoded++
				continue
			}
			if id := r.Request.Recipient.ID; id != "" {
				c.pending[rec.Stream] = pendingSend{recipient: id, category: r.Request.Category}
			}
			continue
		}
		switch rec.Type {
		case domain.TypeDeliveryPlanned:
			// Only the first plan of a notification finds it pending; its
			// other channels, planned in the same append, find nothing.
			p, ok := c.pending[rec.Stream]
			if !ok {
				continue
			}
			var ev struct {
				PlannedAt time.Time `json:"planned_at"`
			}
			if err := fastjson.Unmarshal(rec.Data, &ev); err != nil {
				c.undecoded++
				continue
			}
			delete(c.pending, rec.Stream)
			c.sends[p.recipient] = append(c.sends[p.recipient], sentAt{category: p.category, at: ev.PlannedAt})
			if ev.PlannedAt.After(c.newest) {
				c.newest = ev.PlannedAt
			}
		default: // suppressed, cancelled, expired
			// The domain appends plans before suppressions, so a
			// suppression finding the notification still pending means
			// nothing was planned: it was never sent.
			delete(c.pending, rec.Stream)
		}
	}
	if c.newest.Sub(c.prunedAt) >= pruneEvery {
		c.prune()
	}
}

// prune forgets sends older than the retention before the newest send.
func (c *SendCounter) prune() {
	cutoff := c.newest.Add(-c.retention)
	for id, list := range c.sends {
		kept := list[:0]
		for _, s := range list {
			if !s.at.Before(cutoff) {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			delete(c.sends, id)
		} else {
			c.sends[id] = kept
		}
	}
	c.prunedAt = c.newest
}
