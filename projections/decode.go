package projections

import (
	"strings"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// notificationStreamPrefix is what domain.NotificationStream puts before an id.
var notificationStreamPrefix = domain.NotificationStream("")

// DecodeNotificationEvent returns the notification a recorded event belongs
// to and the decoded domain event. ok is false for events a notification
// projector does not read: other aggregates' streams, unknown types, and
// data UnmarshalEvent refuses. Skipping (rather than halting) keeps one bad
// event from freezing every view; the audit trail still shows it.
func DecodeNotificationEvent(rec eventstore.RecordedEvent) (id domain.NotificationID, e domain.Event, ok bool) {
	rest, found := strings.CutPrefix(rec.Stream, notificationStreamPrefix)
	if !found || rest == "" {
		return "", nil, false
	}
	e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
	if err != nil {
		return "", nil, false
	}
	return domain.NotificationID(rest), e, true
}

// EventTime returns when e says it happened, or recordedAt when it carries
// no time of its own. Analytics bucket by it, so a replay files every event
// in the same bucket as the first time.
func EventTime(e domain.Event, recordedAt time.Time) time.Time {
	var t time.Time
	switch ev := e.(type) {
	case domain.NotificationRequested:
		t = ev.RequestedAt
	case domain.DeliveryPlanned:
		t = ev.PlannedAt
	case domain.DeliverySuppressed:
		t = ev.SuppressedAt
	case domain.DeliveryAttempted:
		t = ev.AttemptedAt
	case domain.DeliverySucceeded:
		t = ev.SucceededAt
	case domain.DeliveryFailed:
		t = ev.FailedAt
	case domain.DeliveryRetryScheduled:
		t = recordedAt
	case domain.DeliveryDeadLettered:
		t = ev.DeadLetteredAt
	case domain.DeliveryReceiptRecorded:
		t = ev.ReceivedAt
	case domain.NotificationRead:
		t = ev.ReadAt
	case domain.NotificationCancelled:
		t = ev.CancelledAt
	case domain.NotificationExpired:
		t = ev.ExpiredAt
	case domain.ResendRequested:
		t = ev.RequestedAt
	}
	if t.IsZero() {
		t = recordedAt
	}
	return t.UTC()
}
