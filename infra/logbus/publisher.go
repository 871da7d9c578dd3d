package logbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"herald/infra/eventstore"
)

var _ message.Publisher = (*Publisher)(nil)

// ErrPublisherClosed is returned by Publish after Close.
var ErrPublisherClosed = errors.New("logbus: publisher closed")

// Publisher appends watermill messages to the event log: the topic is the
// stream, each message one event. It is safe for concurrent use.
type Publisher struct {
	store  eventstore.Store
	logger watermill.LoggerAdapter

	mu       sync.RWMutex // orders Publish's start against Close
	closed   bool
	inflight sync.WaitGroup
}

// NewPublisher returns a Publisher appending to store. The Publisher does not
// own store: closing it leaves store open. A nil logger logs nothing.
func NewPublisher(store eventstore.Store, logger watermill.LoggerAdapter) (*Publisher, error) {
	if store == nil {
		return nil, errors.New("logbus: new publisher: nil event store")
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &Publisher{store: store, logger: logger}, nil
}

// Publish appends msgs to the stream named topic in one atomic, durable
// Append with expected version any: when it returns nil every message is in
// the log, in the order given; when it returns an error none is. The
// messages' envelope comes from their metadata (see MetaType and the other
// keys); anything the envelope cannot hold is kept in a wrapper the
// Subscriber removes (see the package documentation).
//
// Watermill's Publish takes no context: the first message's Context bounds
// the append, as watermill recommends.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrPublisherClosed
	}
	p.inflight.Add(1)
	p.mu.RUnlock()
	defer p.inflight.Done()

	if len(msgs) == 0 {
		return nil
	}
	events := make([]eventstore.EventData, len(msgs))
	for i, msg := range msgs {
		ev, err := eventFromMessage(msg)
		if err != nil {
			return fmt.Errorf("publish to %s: message %s: %w", topic, msg.UUID, err)
		}
		events[i] = ev
	}
	res, err := p.store.Append(msgs[0].Context(), topic, eventstore.Any, events...)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	p.logger.Trace("published to the event log", watermill.LogFields{
		"topic": topic, "messages": len(msgs), "position": uint64(res.Position),
	})
	return nil
}

// Close stops the Publisher: it waits for the Publish calls in progress and
// makes later ones fail with ErrPublisherClosed. It is safe to call more than
// once. It does not close the event store.
func (p *Publisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.inflight.Wait()
	return nil
}

// eventFromMessage maps a message onto an event to append.
func eventFromMessage(msg *message.Message) (eventstore.EventData, error) {
	ev := eventstore.EventData{Type: DefaultEventType}
	var extra map[string]string
	for k, v := range msg.Metadata {
		switch k {
		case MetaType:
			if v != "" {
				ev.Type = v
			}
		case MetaSchemaVersion:
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				return eventstore.EventData{}, fmt.Errorf("metadata %s %q is not an integer", MetaSchemaVersion, v)
			}
			ev.SchemaVersion = n
		case MetaCorrelationID:
			ev.Metadata.CorrelationID = v
		case MetaCausationID:
			ev.Metadata.CausationID = v
		case MetaActor:
			ev.Metadata.Actor = v
		case MetaStream, MetaVersion, MetaPosition, MetaRecordedAt:
			// The log assigns these; a forwarded message gets new ones.
		default:
			if extra == nil {
				extra = make(map[string]string, len(msg.Metadata))
			}
			extra[k] = v
		}
	}

	var keptUUID *string
	if isCanonicalUUID(msg.UUID) {
		ev.ID = msg.UUID
	} else {
		id, err := uuid.NewV7()
		if err != nil {
			return eventstore.EventData{}, fmt.Errorf("new event id: %w", err)
		}
		ev.ID = id.String()
		keptUUID = &msg.UUID
	}

	payload := []byte(msg.Payload)
	if keptUUID == nil && extra == nil && json.Valid(payload) && !isWrapped(payload) {
		ev.Data = payload
		return ev, nil
	}
	data, err := wrap(keptUUID, extra, payload)
	if err != nil {
		return eventstore.EventData{}, err
	}
	ev.Data = data
	return ev, nil
}
