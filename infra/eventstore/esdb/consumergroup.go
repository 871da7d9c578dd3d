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

// ConsumerGroupOptions configure a consumer group. They apply when the group
// is created; joining an existing group leaves its settings as they are.
type ConsumerGroupOptions struct {
	// StartAfter is where a new group starts in $all: 0 (the default) for
	// the beginning, or a position this store returned.
	StartAfter eventstore.Position
	// BufferSize is how many unacknowledged events the server may push to
	// one member at a time (default 32).
	BufferSize uint32
	// MaxRetryCount is how many times the server redelivers an event that
	// was retried or timed out before it parks it (default 10).
	MaxRetryCount int32
	// MessageTimeout is how long the server waits for an Ack before it
	// redelivers the event (default 30s).
	MessageTimeout time.Duration
}

func (o *ConsumerGroupOptions) setDefaults() {
	if o.BufferSize == 0 {
		o.BufferSize = 32
	}
	if o.MaxRetryCount <= 0 {
		o.MaxRetryCount = 10
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = 30 * time.Second
	}
}

// ConsumerGroup is one member of a group of competing consumers of $all,
// for running the dispatcher in several processes: EventStoreDB hands each
// event to one member of the group (round robin), keeps the group's
// checkpoint on the server, and redelivers an event that is not acknowledged
// in time or is retried. Delivery is at least once and, across members, not
// in commit order: a consumer must be idempotent and must not rely on order.
// System events are acknowledged and left out.
//
// A member whose connection drops reconnects with the store's resubscribe
// backoff; the server then redelivers what the member had not acknowledged,
// and an Ack of an event received before the drop may be lost (the event
// comes again).
type ConsumerGroup struct {
	deliveries chan *Delivery

	ended chan struct{}
	err   error

	closing   chan struct{}
	closeOnce sync.Once
	cancel    context.CancelCauseFunc
	done      chan struct{}
}

// Delivery is one event handed to a member of a consumer group. Exactly one
// of Ack, Retry or Park should be called for it.
type Delivery struct {
	// Event is the delivered event.
	Event eventstore.RecordedEvent
	// RetryCount is how many times the server delivered it before.
	RetryCount int

	raw  *esdb.ResolvedEvent
	conn *groupConn
}

// Ack tells the server the event is handled; it is not delivered again.
func (d *Delivery) Ack() error { return d.conn.ack(d.raw) }

// Retry tells the server the event failed and should be delivered again
// (to any member) until the group's MaxRetryCount, after which it is parked.
func (d *Delivery) Retry(reason string) error {
	return d.conn.nack(reason, esdb.NackActionRetry, d.raw)
}

// Park tells the server the event cannot be handled: it moves to the group's
// parked-message stream, from where an operator can replay it.
func (d *Delivery) Park(reason string) error { return d.conn.nack(reason, esdb.NackActionPark, d.raw) }

// groupConn is one connection to a group. The gRPC stream allows a single
// sender at a time, so Acks and Nacks take turns.
type groupConn struct {
	mu  sync.Mutex
	sub *esdb.PersistentSubscription
}

func (c *groupConn) ack(e *esdb.ResolvedEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sub.Ack(e); err != nil {
		return fmt.Errorf("ack event %s: %w", e.OriginalEvent().EventID, err)
	}
	return nil
}

func (c *groupConn) nack(reason string, action esdb.NackAction, e *esdb.ResolvedEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sub.Nack(reason, action, e); err != nil {
		return fmt.Errorf("nack event %s: %w", e.OriginalEvent().EventID, err)
	}
	return nil
}

// JoinConsumerGroup creates the persistent subscription to $all named group
// if it does not exist yet (with the server-side filter that leaves out
// system events, and opts), and connects to it as one more member.
func (s *Store) JoinConsumerGroup(ctx context.Context, group string, opts ConsumerGroupOptions) (*ConsumerGroup, error) {
	op := "join consumer group " + group
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if group == "" {
		return nil, fmt.Errorf("%s: empty group name", op)
	}
	opts.setDefaults()
	if err := s.startWorker(); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.ensureGroup(ctx, group, opts); err != nil {
		s.workers.Done()
		return nil, s.portError(ctx, op, err)
	}
	connect := func(ctx context.Context) (*esdb.PersistentSubscription, error) {
		return s.client.SubscribeToPersistentSubscriptionToAll(ctx, group, esdb.SubscribeToPersistentSubscriptionOptions{BufferSize: opts.BufferSize})
	}
	gctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.life, func() { cancel(eventstore.ErrClosed) })
	first, err := connect(gctx)
	if err != nil {
		stop()
		cancel(nil)
		s.workers.Done()
		return nil, s.portError(ctx, op, err)
	}
	g := &ConsumerGroup{
		deliveries: make(chan *Delivery),
		ended:      make(chan struct{}),
		closing:    make(chan struct{}),
		cancel:     cancel,
		done:       make(chan struct{}),
	}
	go func() {
		defer close(g.done)
		defer s.workers.Done()
		defer stop()
		g.err = g.run(gctx, first, connect, s.cfg.backoffMin, s.cfg.backoffMax)
		close(g.ended)
	}()
	return g, nil
}

// ensureGroup creates the group unless it exists.
func (s *Store) ensureGroup(ctx context.Context, group string, opts ConsumerGroupOptions) error {
	settings := esdb.SubscriptionSettingsDefault()
	settings.MaxRetryCount = opts.MaxRetryCount
	settings.MessageTimeout = int32(opts.MessageTimeout / time.Millisecond)
	err := s.client.CreatePersistentSubscriptionToAll(ctx, group, esdb.PersistentAllSubscriptionOptions{
		Settings:  &settings,
		StartFrom: allFrom(opts.StartAfter),
		Filter:    esdb.ExcludeSystemEventsFilter(),
	})
	if code, ok := errorCode(err); ok && code == esdb.ErrorCodeResourceAlreadyExists {
		return nil
	}
	return err
}

// run hands deliveries over until ctx ends, reconnecting after drops.
func (g *ConsumerGroup) run(ctx context.Context, sub *esdb.PersistentSubscription, connect func(context.Context) (*esdb.PersistentSubscription, error), backoffMin, backoffMax time.Duration) error {
	delay := backoffMin
	for {
		if sub == nil {
			if !wait(ctx, delay) {
				return endCause(ctx)
			}
			delay = min(2*delay, backoffMax)
			var err error
			if sub, err = connect(ctx); err != nil {
				if ctx.Err() != nil {
					return endCause(ctx)
				}
				if permanent(err) {
					return fmt.Errorf("reconnect to consumer group: %w", permanentError(err))
				}
				sub = nil
				continue
			}
		}
		conn := &groupConn{sub: sub}
		stop := context.AfterFunc(ctx, func() { conn.sub.Close() })
		if g.hand(ctx, conn) {
			delay = backoffMin
		}
		stop()
		sub.Close()
		sub = nil
		if ctx.Err() != nil {
			return endCause(ctx)
		}
	}
}

// hand passes the events of one connection on until it drops, and reports
// whether it passed any.
func (g *ConsumerGroup) hand(ctx context.Context, conn *groupConn) (handed bool) {
	for {
		msg, ok := recvPersistent(conn.sub)
		if !ok || msg.SubscriptionDropped != nil {
			return handed
		}
		if msg.EventAppeared == nil || msg.EventAppeared.Event == nil {
			continue
		}
		raw := msg.EventAppeared.Event
		e := raw.OriginalEvent()
		if e == nil || isSystemType(e.EventType) {
			_ = conn.ack(raw)
			continue
		}
		d := &Delivery{Event: toRecorded(e), RetryCount: msg.EventAppeared.RetryCount, raw: raw, conn: conn}
		select {
		case g.deliveries <- d:
			handed = true
		case <-ctx.Done():
			return handed
		}
	}
}

// recvPersistent is Recv that survives the client's panic on a message kind
// it does not know (v4.2.0 panics with "unreachable code"): that counts as a
// dropped connection.
func recvPersistent(sub *esdb.PersistentSubscription) (msg *esdb.PersistentSubscriptionEvent, ok bool) {
	defer func() {
		if recover() != nil {
			msg, ok = nil, false
		}
	}()
	msg = sub.Recv()
	return msg, msg != nil
}

// Next waits for the next delivery. It returns ctx.Err() when ctx ends
// first, eventstore.ErrClosed after Close or the store's Close, and the
// context error of JoinConsumerGroup once that context ended.
func (g *ConsumerGroup) Next(ctx context.Context) (*Delivery, error) {
	select {
	case <-g.closing:
		return nil, eventstore.ErrClosed
	case <-g.ended:
		return nil, g.err
	default:
	}
	select {
	case d := <-g.deliveries:
		return d, nil
	case <-g.closing:
		return nil, eventstore.ErrClosed
	case <-g.ended:
		return nil, g.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Close leaves the group: the server hands this member's unacknowledged
// events to the other members. It is safe to call more than once.
func (g *ConsumerGroup) Close() error {
	g.closeOnce.Do(func() {
		close(g.closing)
		g.cancel(eventstore.ErrClosed)
	})
	<-g.done
	if g.err != nil && !errors.Is(g.err, eventstore.ErrClosed) && !errors.Is(g.err, context.Canceled) {
		return g.err
	}
	return nil
}
