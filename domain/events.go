package domain

import "time"

// Event is something that happened to an aggregate. EventType returns the
// stable type name stored with the event (the Go struct name).
type Event interface {
	EventType() string
}

// The stable event type names.
const (
	TypeNotificationRequested   = "NotificationRequested"
	TypeDeliveryPlanned         = "DeliveryPlanned"
	TypeDeliverySuppressed      = "DeliverySuppressed"
	TypeDeliveryAttempted       = "DeliveryAttempted"
	TypeDeliverySucceeded       = "DeliverySucceeded"
	TypeDeliveryFailed          = "DeliveryFailed"
	TypeDeliveryRetryScheduled  = "DeliveryRetryScheduled"
	TypeDeliveryDeadLettered    = "DeliveryDeadLettered"
	TypeDeliveryReceiptRecorded = "DeliveryReceiptRecorded"
	TypeNotificationRead        = "NotificationRead"
	TypeNotificationCancelled   = "NotificationCancelled"
	TypeNotificationExpired     = "NotificationExpired"
	TypeResendRequested         = "ResendRequested"
	TypeNotificationHeld        = "NotificationHeld"
	TypePolicyApplied           = "PolicyApplied"
)

// EventTypes returns every event type name this package reads and writes, in
// a fixed order. The slice is fresh on every call.
func EventTypes() []string {
	return []string{
		TypeNotificationRequested, TypeDeliveryPlanned, TypeDeliverySuppressed,
		TypeDeliveryAttempted, TypeDeliverySucceeded, TypeDeliveryFailed,
		TypeDeliveryRetryScheduled, TypeDeliveryDeadLettered, TypeDeliveryReceiptRecorded,
		TypeNotificationRead, TypeNotificationCancelled, TypeNotificationExpired,
		TypeResendRequested, TypeNotificationHeld, TypePolicyApplied,
	}
}

// NotificationHeld records that planning decided to wait: the recipient's
// quiet hours, until Until. The notification is planned again then (the
// scheduler releases it); nothing is delivered before.
type NotificationHeld struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
	HeldAt time.Time `json:"held_at"`
}

// PolicyApplied records which recipient profile and preferences decided a
// planning, and how: the audit trail's answer to "why was this sent, to
// whom, or why not". It comes before the plans it explains.
type PolicyApplied struct {
	Policy    PolicyRecord `json:"policy"`
	AppliedAt time.Time    `json:"applied_at"`
}

// NotificationRequested starts a notification stream. Request is stored
// normalized.
type NotificationRequested struct {
	NotificationID NotificationID      `json:"notification_id"`
	Request        NotificationRequest `json:"request"`
	IdempotencyKey string              `json:"idempotency_key"`
	RequestedAt    time.Time           `json:"requested_at"`
}

// DeliveryPlanned adds a delivery on Channel to Address.
type DeliveryPlanned struct {
	DeliveryID DeliveryID `json:"delivery_id"`
	Channel    Channel    `json:"channel"`
	Address    string     `json:"address"`
	// Priority is the notification's when not normal: the dispatcher
	// queues the delivery in its lane from this event alone (a release
	// or a resend comes long after the request).
	Priority  Priority  `json:"priority,omitempty"`
	PlannedAt time.Time `json:"planned_at"`
}

// DeliverySuppressed records that Channel will not be used, and why (no
// address, opted out, quiet hours...). It becomes a delivery in status
// suppressed whose ID is the channel's next DeliveryID.
type DeliverySuppressed struct {
	Channel      Channel   `json:"channel"`
	Reason       string    `json:"reason"`
	SuppressedAt time.Time `json:"suppressed_at"`
}

// DeliveryAttempted records the start of attempt number Attempt (from 1).
// LeaseUntil, when set, is when the worker that started it gives up its
// claim: if no outcome is recorded by then (the worker crashed), another
// worker may start a new attempt. Zero means the attempt can only be
// settled by its outcome.
type DeliveryAttempted struct {
	DeliveryID  DeliveryID `json:"delivery_id"`
	Attempt     int        `json:"attempt"`
	AttemptedAt time.Time  `json:"attempted_at"`
	LeaseUntil  time.Time  `json:"lease_until,omitzero"`
}

// DeliverySucceeded records that attempt Attempt succeeded. Confirmed is true
// when delivery itself was confirmed, false when the provider only accepted
// the message.
type DeliverySucceeded struct {
	DeliveryID        DeliveryID `json:"delivery_id"`
	Attempt           int        `json:"attempt"`
	ProviderMessageID string     `json:"provider_message_id"`
	Confirmed         bool       `json:"confirmed"`
	SucceededAt       time.Time  `json:"succeeded_at"`
	// Rendered is what an in-app delivery of a templated notification
	// showed (the inbox has no other copy of the rendered text); nil
	// otherwise.
	Rendered *Content `json:"rendered,omitempty"`
}

// DeliveryFailed records that attempt Attempt failed. It is always followed
// by DeliveryRetryScheduled or DeliveryDeadLettered in the same append.
type DeliveryFailed struct {
	DeliveryID DeliveryID `json:"delivery_id"`
	Attempt    int        `json:"attempt"`
	Reason     string     `json:"reason"`
	Retryable  bool       `json:"retryable"`
	// Throttled says the provider refused for its rate (a 429, a
	// Retry-After): such a failure does not count against the delivery's
	// attempts budget (Delivery.Throttles).
	Throttled bool      `json:"throttled,omitempty"`
	FailedAt  time.Time `json:"failed_at"`
}

// DeliveryRetryScheduled records that attempt NextAttempt may start at DueAt.
type DeliveryRetryScheduled struct {
	DeliveryID  DeliveryID `json:"delivery_id"`
	NextAttempt int        `json:"next_attempt"`
	DueAt       time.Time  `json:"due_at"`
}

// DeliveryDeadLettered records that the delivery failed for good after
// Attempts attempts.
type DeliveryDeadLettered struct {
	DeliveryID     DeliveryID `json:"delivery_id"`
	Attempts       int        `json:"attempts"`
	Reason         string     `json:"reason"`
	DeadLetteredAt time.Time  `json:"dead_lettered_at"`
}

// DeliveryReceiptRecorded records a provider callback about the delivery.
type DeliveryReceiptRecorded struct {
	DeliveryID        DeliveryID     `json:"delivery_id"`
	Outcome           ReceiptOutcome `json:"outcome"`
	ProviderMessageID string         `json:"provider_message_id"`
	Reason            string         `json:"reason"`
	ReceivedAt        time.Time      `json:"received_at"`
}

// NotificationRead records that the recipient read an in-app delivery.
type NotificationRead struct {
	DeliveryID DeliveryID `json:"delivery_id"`
	Actor      string     `json:"actor"`
	ReadAt     time.Time  `json:"read_at"`
}

// NotificationCancelled records that no further attempts may start.
type NotificationCancelled struct {
	Reason      string    `json:"reason"`
	Actor       string    `json:"actor"`
	CancelledAt time.Time `json:"cancelled_at"`
}

// NotificationExpired records that expires_at passed before the
// notification finished; no further attempts may start.
type NotificationExpired struct {
	ExpiredAt time.Time `json:"expired_at"`
}

// ResendDelivery is one new delivery created by a resend. Repeats is the
// delivery it repeats (the latest one on the channel).
type ResendDelivery struct {
	DeliveryID DeliveryID `json:"delivery_id"`
	Repeats    DeliveryID `json:"repeats"`
	Channel    Channel    `json:"channel"`
	Address    string     `json:"address"`
}

// ResendRequested adds one planned delivery per entry of Deliveries.
type ResendRequested struct {
	Deliveries []ResendDelivery `json:"deliveries"`
	Actor      string           `json:"actor"`
	Reason     string           `json:"reason"`
	// Priority is as in DeliveryPlanned.
	Priority Priority `json:"priority,omitempty"`
	// IdempotencyKey, when set, makes a repeat of the resend by the same
	// actor return this one instead of resending again.
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	RequestedAt    time.Time `json:"requested_at"`
}

// EventType returns TypeNotificationRequested.
func (NotificationRequested) EventType() string { return TypeNotificationRequested }

// EventType returns TypeDeliveryPlanned.
func (DeliveryPlanned) EventType() string { return TypeDeliveryPlanned }

// EventType returns TypeDeliverySuppressed.
func (DeliverySuppressed) EventType() string { return TypeDeliverySuppressed }

// EventType returns TypeDeliveryAttempted.
func (DeliveryAttempted) EventType() string { return TypeDeliveryAttempted }

// EventType returns TypeDeliverySucceeded.
func (DeliverySucceeded) EventType() string { return TypeDeliverySucceeded }

// EventType returns TypeDeliveryFailed.
func (DeliveryFailed) EventType() string { return TypeDeliveryFailed }

// EventType returns TypeDeliveryRetryScheduled.
func (DeliveryRetryScheduled) EventType() string { return TypeDeliveryRetryScheduled }

// EventType returns TypeDeliveryDeadLettered.
func (DeliveryDeadLettered) EventType() string { return TypeDeliveryDeadLettered }

// EventType returns TypeDeliveryReceiptRecorded.
func (DeliveryReceiptRecorded) EventType() string { return TypeDeliveryReceiptRecorded }

// EventType returns TypeNotificationRead.
func (NotificationRead) EventType() string { return TypeNotificationRead }

// EventType returns TypeNotificationCancelled.
func (NotificationCancelled) EventType() string { return TypeNotificationCancelled }

// EventType returns TypeNotificationExpired.
func (NotificationExpired) EventType() string { return TypeNotificationExpired }

// EventType returns TypeResendRequested.
func (ResendRequested) EventType() string { return TypeResendRequested }

// EventType implements Event.
func (NotificationHeld) EventType() string { return TypeNotificationHeld }

// EventType implements Event.
func (PolicyApplied) EventType() string { return TypePolicyApplied }

// valueEvent turns a pointer to a known event into the value, so evolve and
// marshal treat &DeliveryPlanned{} like DeliveryPlanned{}. A nil pointer
// becomes nil; anything else is returned as is.
func valueEvent(e Event) Event {
	switch p := e.(type) {
	case *NotificationRequested:
		return deref(p)
	case *DeliveryPlanned:
		return deref(p)
	case *DeliverySuppressed:
		return deref(p)
	case *DeliveryAttempted:
		return deref(p)
	case *DeliverySucceeded:
		return deref(p)
	case *DeliveryFailed:
		return deref(p)
	case *DeliveryRetryScheduled:
		return deref(p)
	case *DeliveryDeadLettered:
		return deref(p)
	case *DeliveryReceiptRecorded:
		return deref(p)
	case *NotificationRead:
		return deref(p)
	case *NotificationCancelled:
		return deref(p)
	case *NotificationExpired:
		return deref(p)
	case *ResendRequested:
		return deref(p)
	}
	return e
}

func deref[T Event](p *T) Event {
	if p == nil {
		return nil
	}
	return *p
}
