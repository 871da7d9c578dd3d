package domain

import "time"

// The stable event type names of the Schedule aggregate.
const (
	TypeScheduleCreated = "ScheduleCreated"
	TypeSchedulePaused  = "SchedulePaused"
	TypeScheduleResumed = "ScheduleResumed"
	TypeScheduleDeleted = "ScheduleDeleted"
	TypeScheduleFired   = "ScheduleFired"
)

// ScheduleEventTypes returns every event type name of the Schedule
// aggregate, in a fixed order. The slice is fresh on every call.
func ScheduleEventTypes() []string {
	return []string{TypeScheduleCreated, TypeSchedulePaused, TypeScheduleResumed, TypeScheduleDeleted, TypeScheduleFired}
}

// ScheduleCreated starts a schedule stream. Spec is stored validated, with
// StartAt filled in (the creation time when the client gave none), and
// Request is the notification every firing sends, stored normalized.
type ScheduleCreated struct {
	ScheduleID ScheduleID          `json:"schedule_id"`
	Spec       ScheduleSpec        `json:"spec"`
	Request    NotificationRequest `json:"request"`
	Actor      string              `json:"actor"`
	CreatedAt  time.Time           `json:"created_at"`
}

// SchedulePaused stops firings until a ScheduleResumed. Firings that fall
// while paused are skipped, not caught up.
type SchedulePaused struct {
	ScheduleID ScheduleID `json:"schedule_id"`
	Actor      string     `json:"actor"`
	PausedAt   time.Time  `json:"paused_at"`
}

// ScheduleResumed lets firings happen again, from the first one after
// ResumedAt.
type ScheduleResumed struct {
	ScheduleID ScheduleID `json:"schedule_id"`
	Actor      string     `json:"actor"`
	ResumedAt  time.Time  `json:"resumed_at"`
}

// ScheduleDeleted ends the schedule for good. Its stream stays, so its
// firings remain in the ledger.
type ScheduleDeleted struct {
	ScheduleID ScheduleID `json:"schedule_id"`
	Actor      string     `json:"actor"`
	DeletedAt  time.Time  `json:"deleted_at"`
}

// ScheduleFired records the firing due at FiringTime (an occurrence of the
// recurrence), appended at FiredAt. The notification it sends carries the
// idempotency key ScheduleFiringKey(id, FiringTime), so recording and
// sending can be retried independently without a second notification.
type ScheduleFired struct {
	ScheduleID ScheduleID `json:"schedule_id"`
	FiringTime time.Time  `json:"firing_time"`
	FiredAt    time.Time  `json:"fired_at"`
}

// EventType returns TypeScheduleCreated.
func (ScheduleCreated) EventType() string { return TypeScheduleCreated }

// EventType returns TypeSchedulePaused.
func (SchedulePaused) EventType() string { return TypeSchedulePaused }

// EventType returns TypeScheduleResumed.
func (ScheduleResumed) EventType() string { return TypeScheduleResumed }

// EventType returns TypeScheduleDeleted.
func (ScheduleDeleted) EventType() string { return TypeScheduleDeleted }

// EventType returns TypeScheduleFired.
func (ScheduleFired) EventType() string { return TypeScheduleFired }

func scheduleValueEvent(e Event) Event {
	switch p := e.(type) {
	case *ScheduleCreated:
		return deref(p)
	case *SchedulePaused:
		return deref(p)
	case *ScheduleResumed:
		return deref(p)
	case *ScheduleDeleted:
		return deref(p)
	case *ScheduleFired:
		return deref(p)
	}
	return e
}
