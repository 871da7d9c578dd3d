package logbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"herald/infra/eventstore"
)

var _ message.Subscriber = (*Subscriber)(nil)

// ErrSubscriberClosed is returned by Subscribe after Close.
var ErrSubscriberClosed = errors.New("logbus: subscriber closed")

// SubscriberConfig tunes a Subscriber. The zero value follows the whole log
// from position 0 and keeps no checkpoint.
type SubscriberConfig struct {
	// ConsumerGroup names the durable cursor a subscription resumes from.
	// With Checkpoints it makes each subscription start after the group's
	// saved position in its topic, and save its progress there. Without a
	// group or without Checkpoints a subscription starts at position 0.
	ConsumerGroup string
	// Checkpoints keeps the groups' positions (MemoryCheckpoints,
	// SQLiteCheckpoints).
	Checkpoints CheckpointStore
	// BatchSize is how many acknowledged messages a subscription lets pass
	// before it saves its checkpoint (default 1000). Checkpoints are also
	// saved every CheckpointInterval while something is unsaved, and when
	// the subscription ends.
	BatchSize int
	// CheckpointInterval bounds how long an acknowledged position stays
	// unsaved (default 1 s).
	CheckpointInterval time.Duration
	// NackResendSleep is the pause before a nacked message is sent again
	// (default 100 ms; negative: no pause).
	NackResendSleep time.Duration
	// SaveTimeout bounds each checkpoint save, including the last one made
	// while the subscription ends (default 5 s), so Close cannot hang on a
	// stuck checkpoint store.
	SaveTimeout time.Duration
	// Types limits the subscriptions to events of these types; the others
	// are passed over like events of another topic (no message, and the
	// checkpoint moves past them). Empty: every type. A consumer that
	// reads a few types of a busy topic so skips building, sending and
	// awaiting the acknowledgement of a message for each of the rest.
	Types []string
}

func (c *SubscriberConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = 1000
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = time.Second
	}
	if c.NackResendSleep == 0 {
		c.NackResendSleep = 100 * time.Millisecond
	}
	if c.SaveTimeout == 0 {
		c.SaveTimeout = 5 * time.Second
	}
}

// Validate reports every setting that cannot work.
func (c SubscriberConfig) Validate() error {
	var errs []error
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("batch size %d is negative", c.BatchSize))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("checkpoint interval %s is negative", c.CheckpointInterval))
	}
	if c.SaveTimeout < 0 {
		errs = append(errs, fmt.Errorf("save timeout %s is negative", c.SaveTimeout))
	}
	return errors.Join(errs...)
}

// Subscriber follows the event log for watermill. Each subscription emits one
// message per event of its topic (of the configured Types, if any), in log
// order, one at a time: the next
// message is sent only after the previous one is acknowledged. It is safe
// for concurrent use.
type Subscriber struct {
	store  eventstore.Store
	cfg    SubscriberConfig
	logger watermill.LoggerAdapter

	mu      sync.Mutex // guards closed, nextID and cancels; orders Subscribe against Close
	closed  bool
	nextID  uint64
	cancels map[uint64]context.CancelFunc
	running sync.WaitGroup
}

// NewSubscriber returns a Subscriber reading store. The Subscriber does not
// own store: closing it leaves store open. A nil logger logs nothing.
func NewSubscriber(store eventstore.Store, cfg SubscriberConfig, logger watermill.LoggerAdapter) (*Subscriber, error) {
	if store == nil {
		return nil, errors.New("logbus: new subscriber: nil event store")
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("logbus: new subscriber: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	cfg.Types = slices.Clone(cfg.Types) // the caller's slice may change
	return &Subscriber{store: store, cfg: cfg, logger: logger, cancels: make(map[uint64]context.CancelFunc)}, nil
}

// Subscribe follows topic: the events of the stream named topic and of every
// stream whose name starts with topic followed by "-" (topic "notification"
// takes every notification-<id> stream). It starts after the consumer
// group's checkpoint, or at the beginning of the log, and goes on with live
// appends. Each message's context ends when the message is acknowledged or
// nacked, or when the subscription ends. Cancelling ctx or closing the
// Subscriber ends the subscription and closes the returned channel; a
// message sent but not acknowledged by then is redelivered by the next
// subscription of the group.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic == "" {
		return nil, errors.New("logbus: subscribe: empty topic")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrSubscriberClosed
	}
	subCtx, cancel := context.WithCancel(ctx)
	id := s.nextID
	s.nextID++
	s.cancels[id] = cancel
	s.running.Add(1)
	s.mu.Unlock()

	sub, err := s.open(subCtx, topic)
	if err != nil {
		s.forget(id)
		return nil, fmt.Errorf("logbus: subscribe to %s: %w", topic, err)
	}
	go func() {
		defer s.forget(id)
		sub.run()
	}()
	return sub.out, nil
}

// forget ends the bookkeeping of a subscription that has stopped.
func (s *Subscriber) forget(id uint64) {
	s.mu.Lock()
	cancel := s.cancels[id]
	delete(s.cancels, id)
	s.mu.Unlock()
	cancel()
	s.running.Done()
}

// Close ends every subscription, closing their channels, and returns once
// they have stopped and saved their checkpoints. It is safe to call more
// than once and concurrently with Subscribe; it does not close the store.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	cancels := make([]context.CancelFunc, 0, len(s.cancels))
	for _, cancel := range s.cancels {
		cancels = append(cancels, cancel)
	}
	s.mu.Unlock()
	for _, cancel := range cancels {
		cancel()
	}
	s.running.Wait()
	return nil
}

func (s *Subscriber) open(ctx context.Context, topic string) (*subscription, error) {
	sub := &subscription{
		ctx:    ctx,
		topic:  topic,
		cfg:    &s.cfg,
		logger: s.logger.With(watermill.LogFields{"topic": topic, "consumer_group": s.cfg.ConsumerGroup}),
		out:    make(chan *message.Message),
	}
	if s.cfg.ConsumerGroup != "" && s.cfg.Checkpoints != nil {
		sub.checkpoints = s.cfg.Checkpoints
		start, err := sub.checkpoints.Load(ctx, s.cfg.ConsumerGroup, topic)
		if err != nil {
			return nil, err
		}
		sub.done, sub.saved = start, start
	}
	logSub, err := s.store.Subscribe(ctx, sub.done)
	if err != nil {
		return nil, err
	}
	sub.log = logSub
	sub.logger.Debug("subscribed to the event log", watermill.LogFields{"after": uint64(sub.done)})
	return sub, nil
}

// subscription is one Subscribe call: a reader goroutine fetching batches of
// the log ahead of the consumer, and run, which filters them and hands the
// messages out one at a time.
type subscription struct {
	ctx         context.Context
	topic       string
	cfg         *SubscriberConfig
	logger      watermill.LoggerAdapter
	log         eventstore.Subscription
	checkpoints CheckpointStore // nil: no checkpointing
	out         chan *message.Message

	// Owned by run.
	done    eventstore.Position // last event finished with: acked or not of the topic
	saved   eventstore.Position // last position saved
	unsaved int                 // acks since the last save
}

func (sub *subscription) run() {
	batches := make(chan []eventstore.RecordedEvent, 1)
	readerDone := make(chan struct{})
	go sub.read(batches, readerDone)

	defer func() {
		close(sub.out)
		sub.log.Close()
		<-readerDone
		// The subscription's context has ended; the last save still
		// deserves its own bounded time.
		sub.save(context.WithoutCancel(sub.ctx))
		sub.logger.Debug("subscription ended", watermill.LogFields{"position": uint64(sub.done)})
	}()

	var tick <-chan time.Time
	if sub.checkpoints != nil {
		ticker := time.NewTicker(sub.cfg.CheckpointInterval)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case <-sub.ctx.Done():
			return
		case <-tick:
			sub.save(sub.ctx)
		case batch, ok := <-batches:
			if !ok {
				return
			}
			for i := range batch {
				ev := &batch[i]
				if !inTopic(ev.Stream, sub.topic) || (len(sub.cfg.Types) > 0 && !slices.Contains(sub.cfg.Types, ev.Type)) {
					sub.done = ev.Position
					continue
				}
				if !sub.deliver(ev, tick) {
					return
				}
				sub.done = ev.Position
				sub.unsaved++
				if sub.unsaved >= sub.cfg.BatchSize {
					sub.save(sub.ctx)
				}
			}
		}
	}
}

// inTopic reports whether stream belongs to topic: it is topic itself or
// topic followed by "-" and more.
func inTopic(stream, topic string) bool {
	n := len(topic)
	if len(stream) == n {
		return stream == topic
	}
	return len(stream) > n && stream[n] == '-' && stream[:n] == topic
}

// read fetches the log ahead of run, one batch in hand and one queued, so
// the next read overlaps the consumer's work. It closes batches when the
// subscription ends or the store is closed.
func (sub *subscription) read(batches chan<- []eventstore.RecordedEvent, done chan<- struct{}) {
	defer close(done)
	defer close(batches)
	const minPause, maxPause = 50 * time.Millisecond, 5 * time.Second
	pause := minPause
	for {
		evs, err := sub.log.Next(sub.ctx)
		if err != nil {
			if sub.ctx.Err() != nil {
				return
			}
			if errors.Is(err, eventstore.ErrClosed) {
				sub.logger.Error("event log closed, subscription ends", err, nil)
				return
			}
			sub.logger.Error("read event log, retrying", err, watermill.LogFields{"pause": pause.String()})
			if !sleepCtx(sub.ctx, pause) {
				return
			}
			pause = min(2*pause, maxPause)
			continue
		}
		pause = minPause
		select {
		case batches <- evs:
		case <-sub.ctx.Done():
			return
		}
	}
}

// deliver sends ev's message and waits until it is acknowledged, sending it
// again after each nack. It returns false when the subscription ended first.
func (sub *subscription) deliver(ev *eventstore.RecordedEvent, tick <-chan time.Time) bool {
	for {
		if sub.ctx.Err() != nil {
			return false
		}
		msg := sub.message(ev)
		msgCtx, cancel := context.WithCancel(sub.ctx)
		msg.SetContext(msgCtx)
		select {
		case sub.out <- msg:
		case <-sub.ctx.Done():
			cancel()
			return false
		}
		acked, ended := sub.awaitAck(msg, tick)
		cancel()
		switch {
		case acked:
			return true
		case ended:
			return false
		}
		if sub.cfg.NackResendSleep > 0 && !sleepCtx(sub.ctx, sub.cfg.NackResendSleep) {
			return false
		}
	}
}

// awaitAck waits for msg's ack or nack, saving the checkpoint meanwhile if
// the interval comes round. An ack that races with the end of the
// subscription still counts.
func (sub *subscription) awaitAck(msg *message.Message, tick <-chan time.Time) (acked, ended bool) {
	for {
		select {
		case <-msg.Acked():
			return true, false
		case <-msg.Nacked():
			return false, false
		case <-tick:
			sub.save(sub.ctx)
		case <-sub.ctx.Done():
			select {
			case <-msg.Acked():
				return true, false
			default:
				return false, true
			}
		}
	}
}

// message builds ev's message. Only the message, its metadata map and the
// strings formatted for it are allocated, except for wrapped events, which
// need decoding.
func (sub *subscription) message(ev *eventstore.RecordedEvent) *message.Message {
	id, payload := ev.ID, []byte(ev.Data)
	var extra map[string]string
	if isWrapped(ev.Data) {
		w, err := unwrap(ev.Data)
		if err != nil {
			// Stalling the topic would help no one: hand the data over
			// as it is.
			sub.logger.Error("event looks wrapped but is not, delivering its data as is", err,
				watermill.LogFields{"position": uint64(ev.Position)})
		} else {
			if w.UUID != nil {
				id = *w.UUID
			}
			payload, extra = w.payload(), w.Metadata
		}
	}
	// Sized exactly: up to 8 entries fit a map's first group, one
	// allocation instead of a grown table.
	n := 6 + len(extra)
	for _, f := range [...]string{ev.Metadata.CorrelationID, ev.Metadata.CausationID, ev.Metadata.Actor} {
		if f != "" {
			n++
		}
	}
	md := make(message.Metadata, n)
	for k, v := range extra {
		md[k] = v
	}
	md[MetaType] = ev.Type
	md[MetaStream] = ev.Stream
	md[MetaVersion] = strconv.FormatUint(ev.Version, 10)
	md[MetaPosition] = strconv.FormatUint(uint64(ev.Position), 10)
	md[MetaRecordedAt] = ev.RecordedAt.UTC().Format(time.RFC3339Nano)
	md[MetaSchemaVersion] = strconv.Itoa(ev.SchemaVersion)
	if ev.Metadata.CorrelationID != "" {
		md[MetaCorrelationID] = ev.Metadata.CorrelationID
	}
	if ev.Metadata.CausationID != "" {
		md[MetaCausationID] = ev.Metadata.CausationID
	}
	if ev.Metadata.Actor != "" {
		md[MetaActor] = ev.Metadata.Actor
	}
	msg := message.NewMessage(id, payload)
	msg.Metadata = md
	return msg
}

// save records the checkpoint if it has moved. A failure is logged and
// retried at the next occasion; until then a crash would redeliver more.
func (sub *subscription) save(ctx context.Context) {
	if sub.checkpoints == nil || sub.done <= sub.saved {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sub.cfg.SaveTimeout)
	defer cancel()
	if err := sub.checkpoints.Save(ctx, sub.cfg.ConsumerGroup, sub.topic, sub.done); err != nil {
		sub.logger.Error("save checkpoint", err, watermill.LogFields{"position": uint64(sub.done)})
		return
	}
	sub.saved, sub.unsaved = sub.done, 0
}

// sleepCtx waits for d and reports whether ctx was still alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
