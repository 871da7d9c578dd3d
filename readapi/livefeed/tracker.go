package livefeed

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// update is one message for the clients of one recipient, before encoding.
type update struct {
	pos       eventstore.Position
	recipient string
	event     string
	item      projections.InboxItem // when event is EventInbox
	read      ReadMark              // when event is EventRead
}

// inboxContext is what an in-app item needs to know about its
// notification: the request's content and where each in-app delivery goes.
// Everything in it is immutable once recorded in the log, so a context
// that missed events is incomplete, never wrong.
type inboxContext struct {
	requested bool // the NotificationRequested has been applied
	recipient string
	subject   string
	body      string
	template  string
	category  string
	priority  domain.Priority
	createdAt time.Time
	// addresses of in-app deliveries. In the tracker's open set only those
	// without an outcome yet; in a context loaded from the stream, all.
	addresses map[domain.DeliveryID]string
}

// apply folds the events that add context. Outcomes are the tracker's
// business, not the context's.
func (c *inboxContext) apply(e domain.Event) {
	switch ev := e.(type) {
	case domain.NotificationRequested:
		r := ev.Request
		c.requested = true
		c.recipient = r.Recipient.ID
		c.category = r.Category
		c.priority = r.Priority
		c.createdAt = ev.RequestedAt.UTC()
		if r.Content != nil {
			c.subject, c.body = r.Content.Subject, r.Content.Body
		}
		if r.Template != nil {
			c.template = r.Template.ID
		}
	case domain.DeliveryPlanned:
		if ev.Channel == domain.ChannelInApp {
			c.addresses[ev.DeliveryID] = ev.Address
		}
	case domain.ResendRequested:
		for _, d := range ev.Deliveries {
			if d.Channel == domain.ChannelInApp {
				c.addresses[d.DeliveryID] = d.Address
			}
		}
	}
}

// recipientOf returns who an in-app delivery is filed under: its address,
// which for in-app is the recipient id, or the request's recipient id.
func (c *inboxContext) recipientOf(d domain.DeliveryID) (string, bool) {
	addr, ok := c.addresses[d]
	if !ok {
		return "", false
	}
	if addr == "" {
		addr = c.recipient
	}
	return addr, addr != ""
}

type deliveryRef struct {
	notification domain.NotificationID
	delivery     domain.DeliveryID
}

// StreamReader reads one stream of the event log, as eventstore.Store
// does: up to limit events with version > after, in version order.
type StreamReader interface {
	ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error)
}

// tracker turns log events into updates. It remembers, within fixed
// bounds, the context of notifications with in-app deliveries in flight
// and who recently delivered in-app items belong to (for read marks); when
// an event needs context it no longer has, it reads the notification's
// stream. It is not safe for concurrent use: the hub's follower owns one,
// and each replay has its own.
type tracker struct {
	streams StreamReader
	open    *fifoMap[domain.NotificationID, *inboxContext]
	recent  *fifoMap[deliveryRef, string]
	loads   *atomic.Uint64
}

func newTracker(streams StreamReader, maxOpen, maxRecent int, loads *atomic.Uint64) *tracker {
	return &tracker{
		streams: streams,
		open:    newFIFOMap[domain.NotificationID, *inboxContext](maxOpen),
		recent:  newFIFOMap[deliveryRef, string](maxRecent),
		loads:   loads,
	}
}

var (
	notificationPrefix = domain.NotificationStream("")
	// inappMarker appears in the data of every event about an in-app
	// delivery (its channel or its delivery id). Looking for it first spares
	// decoding the events of other channels, the bulk of the log.
	inappMarker    = []byte(domain.ChannelInApp)
	channelsMarker = []byte(`"channels"`)
)

// observe reads one event and returns the update it makes, if any. Errors
// come only from reading a stream for missing context; events that do not
// decode are skipped, as the projections skip them.
func (t *tracker) observe(ctx context.Context, rec eventstore.RecordedEvent) (update, bool, error) {
	rest, ok := strings.CutPrefix(rec.Stream, notificationPrefix)
	if !ok || rest == "" {
		return update{}, false, nil
	}
	id := domain.NotificationID(rest)
	switch rec.Type {
	case domain.TypeNotificationRequested:
		// A request that names channels without inapp gets no in-app
		// delivery; one that names none gets every channel it has an
		// address for, which includes inapp when the recipient has an id.
		if !bytes.Contains(rec.Data, inappMarker) && bytes.Contains(rec.Data, channelsMarker) {
			return update{}, false, nil
		}
		ev, ok := decode[domain.NotificationRequested](rec)
		if !ok || !mayUseInApp(ev.Request) {
			return update{}, false, nil
		}
		t.contextFor(id).apply(ev)
	case domain.TypeDeliveryPlanned, domain.TypeResendRequested:
		if !bytes.Contains(rec.Data, inappMarker) {
			return update{}, false, nil
		}
		ev, err := domain.UnmarshalEvent(rec.Type, rec.Data)
		if err != nil {
			return update{}, false, nil
		}
		t.contextFor(id).apply(ev)
	case domain.TypeDeliveryDeadLettered:
		if ev, ok := decodeInApp[domain.DeliveryDeadLettered](rec, func(e domain.DeliveryDeadLettered) domain.DeliveryID { return e.DeliveryID }); ok {
			t.settle(id, ev.DeliveryID)
		}
	case domain.TypeNotificationCancelled, domain.TypeNotificationExpired:
		// An attempt already running may still succeed; that rare success
		// reads the stream rather than keeping every cancelled context.
		t.open.remove(id)
	case domain.TypeDeliverySucceeded:
		ev, ok := decodeInApp[domain.DeliverySucceeded](rec, func(e domain.DeliverySucceeded) domain.DeliveryID { return e.DeliveryID })
		if !ok {
			return update{}, false, nil
		}
		return t.succeeded(ctx, rec, id, ev)
	case domain.TypeNotificationRead:
		ev, ok := decodeInApp[domain.NotificationRead](rec, func(e domain.NotificationRead) domain.DeliveryID { return e.DeliveryID })
		if !ok {
			return update{}, false, nil
		}
		return t.read(ctx, rec, id, ev)
	}
	return update{}, false, nil
}

func (t *tracker) succeeded(ctx context.Context, rec eventstore.RecordedEvent, id domain.NotificationID, ev domain.DeliverySucceeded) (update, bool, error) {
	c, ok := t.open.get(id)
	var recipient string
	if ok && c.requested {
		recipient, ok = c.recipientOf(ev.DeliveryID)
	} else {
		ok = false
	}
	if !ok {
		loaded, err := t.load(ctx, rec, id)
		if err != nil {
			return update{}, false, err
		}
		c = loaded
		if recipient, ok = c.recipientOf(ev.DeliveryID); !ok {
			return update{}, false, nil // never planned on inapp: nothing to show
		}
	}
	t.settle(id, ev.DeliveryID)
	t.recent.put(deliveryRef{id, ev.DeliveryID}, recipient)
	status := domain.DeliveryStatusSent
	if ev.Confirmed {
		status = domain.DeliveryStatusDelivered
	}
	prio := c.priority
	if prio == "" {
		prio = domain.PriorityNormal
	}
	subject, body := c.subject, c.body
	if ev.Rendered != nil { // a template, rendered by the dispatcher
		subject, body = ev.Rendered.Subject, ev.Rendered.Body
	}
	return update{
		pos:       rec.Position,
		recipient: recipient,
		event:     EventInbox,
		item: projections.InboxItem{
			NotificationID: id,
			DeliveryID:     ev.DeliveryID,
			Status:         status,
			Category:       c.category,
			Priority:       prio,
			Subject:        subject,
			Body:           body,
			Template:       c.template,
			CreatedAt:      c.createdAt,
			UpdatedAt:      projections.EventTime(ev, rec.RecordedAt),
		},
	}, true, nil
}

func (t *tracker) read(ctx context.Context, rec eventstore.RecordedEvent, id domain.NotificationID, ev domain.NotificationRead) (update, bool, error) {
	ref := deliveryRef{id, ev.DeliveryID}
	recipient, ok := t.recent.get(ref)
	if !ok {
		c, err := t.load(ctx, rec, id)
		if err != nil {
			return update{}, false, err
		}
		if recipient, ok = c.recipientOf(ev.DeliveryID); !ok {
			return update{}, false, nil
		}
		t.recent.put(ref, recipient)
	}
	return update{
		pos:       rec.Position,
		recipient: recipient,
		event:     EventRead,
		read:      ReadMark{NotificationID: id, DeliveryID: ev.DeliveryID, ReadAt: projections.EventTime(ev, rec.RecordedAt)},
	}, true, nil
}

// contextFor returns the open context of id, starting one if needed.
func (t *tracker) contextFor(id domain.NotificationID) *inboxContext {
	if c, ok := t.open.get(id); ok {
		return c
	}
	c := &inboxContext{addresses: map[domain.DeliveryID]string{}}
	t.open.put(id, c)
	return c
}

// settle forgets an in-app delivery that has its outcome, and the
// notification's context with its last one in flight.
func (t *tracker) settle(id domain.NotificationID, d domain.DeliveryID) {
	c, ok := t.open.get(id)
	if !ok {
		return
	}
	delete(c.addresses, d)
	if len(c.addresses) == 0 && c.requested {
		t.open.remove(id)
	}
}

// loadPage is how many events a context load reads at a time.
const loadPage = 256

// load rebuilds the context of notification id from its stream, as it was
// just before rec. The result is not kept: a load happens for events whose
// context aged out, and keeping it would push out younger ones.
func (t *tracker) load(ctx context.Context, rec eventstore.RecordedEvent, id domain.NotificationID) (*inboxContext, error) {
	if t.loads != nil {
		t.loads.Add(1)
	}
	c := &inboxContext{addresses: map[domain.DeliveryID]string{}}
	var after uint64
	for after+1 < rec.Version {
		evs, err := t.streams.ReadStream(ctx, rec.Stream, after, min(loadPage, int(rec.Version-1-after)))
		if err != nil {
			return nil, fmt.Errorf("load context of %s: %w", id, err)
		}
		if len(evs) == 0 {
			break
		}
		for _, r := range evs {
			if r.Version >= rec.Version {
				return c, nil
			}
			if e, err := domain.UnmarshalEvent(r.Type, r.Data); err == nil {
				c.apply(e)
			}
			after = r.Version
		}
	}
	return c, nil
}

// mayUseInApp reports whether a request can get an in-app delivery.
func mayUseInApp(r domain.NotificationRequest) bool {
	if len(r.Channels) == 0 {
		return r.Recipient.ID != ""
	}
	for _, ch := range r.Channels {
		if ch == domain.ChannelInApp {
			return true
		}
	}
	return false
}

func decode[T domain.Event](rec eventstore.RecordedEvent) (T, bool) {
	var zero T
	e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
	if err != nil {
		return zero, false
	}
	v, ok := e.(T)
	return v, ok
}

// decodeInApp decodes an event about one delivery, and reports false
// unless that delivery is on the in-app channel.
func decodeInApp[T domain.Event](rec eventstore.RecordedEvent, delivery func(T) domain.DeliveryID) (T, bool) {
	var zero T
	if !bytes.Contains(rec.Data, inappMarker) {
		return zero, false
	}
	v, ok := decode[T](rec)
	if !ok || delivery(v).Channel() != domain.ChannelInApp {
		return zero, false
	}
	return v, true
}

// fifoMap is a map that holds at most max entries, forgetting the oldest
// insertion first. Context ages out by arrival, not by use: an in-app
// delivery is usually settled within moments of being planned.
type fifoMap[K comparable, V any] struct {
	max   int
	items map[K]*list.Element
	order *list.List
}

type fifoEntry[K comparable, V any] struct {
	key K
	val V
}

func newFIFOMap[K comparable, V any](max int) *fifoMap[K, V] {
	return &fifoMap[K, V]{max: max, items: map[K]*list.Element{}, order: list.New()}
}

func (m *fifoMap[K, V]) get(k K) (V, bool) {
	if e, ok := m.items[k]; ok {
		return e.Value.(fifoEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

func (m *fifoMap[K, V]) put(k K, v V) {
	if e, ok := m.items[k]; ok {
		e.Value = fifoEntry[K, V]{k, v}
		return
	}
	for len(m.items) >= m.max && m.order.Len() > 0 {
		oldest := m.order.Front()
		delete(m.items, oldest.Value.(fifoEntry[K, V]).key)
		m.order.Remove(oldest)
	}
	m.items[k] = m.order.PushBack(fifoEntry[K, V]{k, v})
}

func (m *fifoMap[K, V]) remove(k K) {
	if e, ok := m.items[k]; ok {
		delete(m.items, k)
		m.order.Remove(e)
	}
}

func (m *fifoMap[K, V]) len() int { return len(m.items) }
