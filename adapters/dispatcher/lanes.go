package dispatcher

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"herald/domain"
)

// Metadata keys of the work messages the lanes hand to the router.
const (
	MetaNotification = "notification_id"
	MetaDelivery     = "delivery_id"
	MetaChannel      = "channel"
	MetaPriority     = "priority"
)

// deliverTopic is the router topic of a channel's due deliveries.
func deliverTopic(c domain.Channel) string { return "deliver." + string(c) }

// laneSubscriber exposes the scheduler to a watermill Router as a
// message.Subscriber: Subscribe("deliver.<channel>") yields that channel's
// due deliveries, highest lane first, up to concurrency at a time (the
// router runs each message in its own goroutine, so this is the channel's
// concurrency limit). Ack ends the delivery's turn; Nack puts it back after
// nackDelay. It never redelivers an acked message.
type laneSubscriber struct {
	sched       *scheduler
	concurrency map[domain.Channel]int
	nackDelay   time.Duration
	logger      watermill.LoggerAdapter

	mu      sync.Mutex
	closing chan struct{}
	closed  bool
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*laneSubscriber)(nil)

func newLaneSubscriber(s *scheduler, concurrency map[domain.Channel]int, nackDelay time.Duration, logger watermill.LoggerAdapter) *laneSubscriber {
	return &laneSubscriber{sched: s, concurrency: concurrency, nackDelay: nackDelay, logger: logger, closing: make(chan struct{})}
}

// Subscribe starts the channel's workers. The output closes when ctx ends
// or the subscriber closes, after every message handed out was acked or
// nacked.
func (l *laneSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	name, ok := strings.CutPrefix(topic, "deliver.")
	ch := domain.Channel(name)
	n := l.concurrency[ch]
	if !ok || n <= 0 {
		return nil, errors.New("dispatcher lanes: unknown topic " + topic)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("dispatcher lanes: closed")
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-l.closing:
		case <-ctx.Done():
		}
		cancel()
	}()
	out := make(chan *message.Message)
	var workers sync.WaitGroup
	for range n {
		workers.Add(1)
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer workers.Done()
			l.work(ctx, ch, out)
		}()
	}
	go func() {
		workers.Wait()
		close(out)
	}()
	return out, nil
}

// work is one worker slot: take a delivery, hand it out, wait for its
// verdict.
func (l *laneSubscriber) work(ctx context.Context, ch domain.Channel, out chan<- *message.Message) {
	for {
		w, ok := l.sched.next(ctx, ch)
		if !ok {
			return
		}
		msg := message.NewMessage(watermill.NewUUID(), nil)
		msg.Metadata.Set(MetaNotification, string(w.notification))
		msg.Metadata.Set(MetaDelivery, string(w.delivery))
		msg.Metadata.Set(MetaChannel, string(w.channel))
		msg.Metadata.Set(MetaPriority, string(w.priority))
		// The message's context is not the subscription's: an attempt
		// under way when shutdown starts runs to its own deadline and
		// records its outcome (the router's Timeout middleware bounds it).
		msg.SetContext(context.WithoutCancel(ctx))
		select {
		case out <- msg:
		case <-ctx.Done():
			l.sched.done(w, &w) // not handed out: keep it for the next start
			return
		}
		select {
		case <-msg.Acked():
			l.sched.done(w, retryOf(msg))
		case <-msg.Nacked():
			again := w
			again.due = l.sched.clock().Add(l.nackDelay)
			l.sched.done(w, &again)
		}
	}
}

// Close stops handing out deliveries and waits for the ones handed out to
// be acked or nacked. It is idempotent.
func (l *laneSubscriber) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.closing)
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// The attempt handler tells the lanes when to try again by setting these
// metadata on the message before acking it; no retry metadata means the
// delivery is settled (or another worker owns it).
const metaRetryAt = "herald_retry_at"

func setRetry(msg *message.Message, w work) {
	msg.Metadata.Set(metaRetryAt, w.due.Format(time.RFC3339Nano))
}

func retryOf(msg *message.Message) *work {
	s := msg.Metadata.Get(metaRetryAt)
	if s == "" {
		return nil
	}
	due, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return &work{
		notification: domain.NotificationID(msg.Metadata.Get(MetaNotification)),
		delivery:     domain.DeliveryID(msg.Metadata.Get(MetaDelivery)),
		channel:      domain.Channel(msg.Metadata.Get(MetaChannel)),
		priority:     domain.Priority(msg.Metadata.Get(MetaPriority)),
		due:          due,
	}
}
