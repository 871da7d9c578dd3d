package viewstoretest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// Base is the time the scenario starts at.
var Base = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return Base.Add(d) }

// Stream is one notification's events, oldest first.
type Stream struct {
	ID     domain.NotificationID
	Events []domain.Event
}

// The scenario's notifications.
const (
	// N1 (user-1, high, security, batch b-1): email fails once with
	// "timeout", then is sent (2 s after the request); in-app is delivered
	// after 400 ms and then read. Status delivered.
	N1 = domain.NotificationID("n-1")
	// N2 (user-1, low, billing): sms dead-lettered after "invalid number".
	// Status failed.
	N2 = domain.NotificationID("n-2")
	// N3 (user-2, normal, news, batch b-1): in-app delivered after 40 ms,
	// unread. Status delivered.
	N3 = domain.NotificationID("n-3")
)

func requested(id domain.NotificationID, r domain.NotificationRequest, t time.Time) domain.Event {
	return domain.NotificationRequested{NotificationID: id, Request: r.Normalized(), IdempotencyKey: "key-" + string(id), RequestedAt: t}
}

// Scenario returns the shared event scenario: N1, N2, N3 as documented.
func Scenario() []Stream {
	email1 := domain.NewDeliveryID(domain.ChannelEmail, 1)
	inapp1 := domain.NewDeliveryID(domain.ChannelInApp, 1)
	sms1 := domain.NewDeliveryID(domain.ChannelSMS, 1)
	r1 := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-1", Email: "ada@example.com"},
		Channels:  []domain.Channel{domain.ChannelEmail, domain.ChannelInApp},
		Content:   &domain.Content{Subject: "Your code", Body: "Code 123456"},
		Priority:  domain.PriorityHigh, Category: "security", BatchID: "b-1",
	}
	r2 := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-1", Phone: "+15551234567"},
		Channels:  []domain.Channel{domain.ChannelSMS},
		Content:   &domain.Content{Body: "Invoice due"},
		Priority:  domain.PriorityLow, Category: "billing",
	}
	r3 := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-2"},
		Channels:  []domain.Channel{domain.ChannelInApp},
		Content:   &domain.Content{Subject: "Hello", Body: "Welcome aboard"},
		Category:  "news", BatchID: "b-1",
	}
	return []Stream{
		{N1, []domain.Event{
			requested(N1, r1, at(0)),
			domain.DeliveryPlanned{DeliveryID: email1, Channel: domain.ChannelEmail, Address: "ada@example.com", PlannedAt: at(10 * time.Millisecond)},
			domain.DeliveryPlanned{DeliveryID: inapp1, Channel: domain.ChannelInApp, Address: "user-1", PlannedAt: at(10 * time.Millisecond)},
			domain.DeliveryAttempted{DeliveryID: email1, Attempt: 1, AttemptedAt: at(20 * time.Millisecond)},
			domain.DeliveryFailed{DeliveryID: email1, Attempt: 1, Reason: "timeout", Retryable: true, FailedAt: at(100 * time.Millisecond)},
			domain.DeliveryRetryScheduled{DeliveryID: email1, NextAttempt: 2, DueAt: at(time.Second)},
			domain.DeliveryAttempted{DeliveryID: inapp1, Attempt: 1, AttemptedAt: at(300 * time.Millisecond)},
			domain.DeliverySucceeded{DeliveryID: inapp1, Attempt: 1, Confirmed: true, SucceededAt: at(400 * time.Millisecond)},
			domain.DeliveryAttempted{DeliveryID: email1, Attempt: 2, AttemptedAt: at(time.Second)},
			domain.DeliverySucceeded{DeliveryID: email1, Attempt: 2, ProviderMessageID: "smtp-42", SucceededAt: at(2 * time.Second)},
			domain.NotificationRead{DeliveryID: inapp1, Actor: "user-1", ReadAt: at(time.Minute)},
		}},
		{N2, []domain.Event{
			requested(N2, r2, at(time.Hour)),
			domain.DeliveryPlanned{DeliveryID: sms1, Channel: domain.ChannelSMS, Address: "+15551234567", PlannedAt: at(time.Hour)},
			domain.DeliveryAttempted{DeliveryID: sms1, Attempt: 1, AttemptedAt: at(time.Hour + time.Second)},
			domain.DeliveryFailed{DeliveryID: sms1, Attempt: 1, Reason: "invalid number", FailedAt: at(time.Hour + 2*time.Second)},
			domain.DeliveryDeadLettered{DeliveryID: sms1, Attempts: 1, Reason: "invalid number", DeadLetteredAt: at(time.Hour + 2*time.Second)},
		}},
		{N3, []domain.Event{
			requested(N3, r3, at(2*time.Hour)),
			domain.DeliveryPlanned{DeliveryID: inapp1, Channel: domain.ChannelInApp, Address: "user-2", PlannedAt: at(2 * time.Hour)},
			domain.DeliveryAttempted{DeliveryID: inapp1, Attempt: 1, AttemptedAt: at(2*time.Hour + 10*time.Millisecond)},
			domain.DeliverySucceeded{DeliveryID: inapp1, Attempt: 1, Confirmed: true, SucceededAt: at(2*time.Hour + 40*time.Millisecond)},
		}},
	}
}

// SimpleStream returns a notification requested at t for recipient, on
// channel, delivered (confirmed) a second later.
func SimpleStream(id domain.NotificationID, recipient string, ch domain.Channel, prio domain.Priority, t time.Time) Stream {
	d := domain.NewDeliveryID(ch, 1)
	r := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: recipient, WebhookURL: "https://hooks.example.com/x", Email: "a@example.com"},
		Channels:  []domain.Channel{ch}, Content: &domain.Content{Body: "hi"}, Priority: prio,
	}
	return Stream{id, []domain.Event{
		requested(id, r, t),
		domain.DeliveryPlanned{DeliveryID: d, Channel: ch, Address: r.Recipient.Address(ch), PlannedAt: t},
		domain.DeliveryAttempted{DeliveryID: d, Attempt: 1, AttemptedAt: t},
		domain.DeliverySucceeded{DeliveryID: d, Attempt: 1, Confirmed: true, SucceededAt: t.Add(time.Second)},
	}}
}

// EventData encodes e for appending to the log, with a fresh UUIDv7 id.
func EventData(e domain.Event) eventstore.EventData {
	typ, data, err := domain.MarshalEvent(e)
	if err != nil {
		panic(fmt.Sprintf("marshal scenario event: %v", err))
	}
	return eventstore.EventData{
		ID: uuid.Must(uuid.NewV7()).String(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: data,
		Metadata: eventstore.Metadata{CorrelationID: "corr-1", Actor: "test"},
	}
}

// AppendNew returns the request that appends s's events to the log as a
// new stream.
func (s Stream) AppendNew() eventstore.AppendRequest {
	data := make([]eventstore.EventData, len(s.Events))
	for i, e := range s.Events {
		data[i] = EventData(e)
	}
	return eventstore.AppendRequest{Stream: domain.NotificationStream(s.ID), Expected: eventstore.NoStream, Events: data}
}

// Recorder hands out log positions, turning domain events into the
// RecordedEvents a log would return. It is also the log they are in: its
// ReadStream makes it the projections.History of the stores under test.
// It is safe for concurrent use.
type Recorder struct {
	mu       sync.Mutex
	pos      eventstore.Position
	versions map[string]uint64
	streams  map[string][]eventstore.RecordedEvent
}

// Record returns e as the next recorded event of notification id.
func (r *Recorder) Record(id domain.NotificationID, e domain.Event) eventstore.RecordedEvent {
	d := EventData(e)
	return r.record(eventstore.RecordedEvent{ID: d.ID, Type: d.Type, Stream: domain.NotificationStream(id),
		RecordedAt: projections.EventTime(e, Base), SchemaVersion: d.SchemaVersion, Metadata: d.Metadata, Data: d.Data})
}

// record gives rec the next position and its stream's next version, and
// keeps it.
func (r *Recorder) record(rec eventstore.RecordedEvent) eventstore.RecordedEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.versions == nil {
		r.versions = map[string]uint64{}
		r.streams = map[string][]eventstore.RecordedEvent{}
	}
	r.pos++
	r.versions[rec.Stream]++
	rec.Position, rec.Version = r.pos, r.versions[rec.Stream]
	r.streams[rec.Stream] = append(r.streams[rec.Stream], rec)
	return rec
}

// ReadStream returns up to limit recorded events of stream with version >
// after, as eventstore.Store's ReadStream does.
func (r *Recorder) ReadStream(_ context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs, ok := r.streams[stream]
	if !ok {
		return nil, fmt.Errorf("%s: %w", stream, eventstore.ErrStreamNotFound)
	}
	evs = evs[min(after, uint64(len(evs))):]
	return slices.Clone(evs[:min(limit, len(evs))]), nil
}

// RecordUnknown returns, as the next recorded event of notification id, an
// event of a type this domain does not know (one a newer version would
// write): projections skip it, but it takes a stream version.
func (r *Recorder) RecordUnknown(id domain.NotificationID, eventType string) eventstore.RecordedEvent {
	return r.record(eventstore.RecordedEvent{ID: uuid.Must(uuid.NewV7()).String(), Type: eventType,
		Stream: domain.NotificationStream(id), RecordedAt: Base, SchemaVersion: domain.EventSchemaVersion,
		Data: []byte(`{"schema_version":1}`)})
}

// RecordAll records the streams one after the other.
func (r *Recorder) RecordAll(streams ...Stream) []eventstore.RecordedEvent {
	var out []eventstore.RecordedEvent
	for _, s := range streams {
		for _, e := range s.Events {
			out = append(out, r.Record(s.ID, e))
		}
	}
	return out
}
