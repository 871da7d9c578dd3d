package domain

import (
	"slices"
	"time"
)

// Notification is the state of one notification, rebuilt from its stream.
// The zero value means "no such notification yet". It is a value: every
// change goes through EvolveNotification, which returns a new Notification
// and leaves the old one valid, so states may be kept and compared freely.
type Notification struct {
	id             NotificationID
	exists         bool
	request        NotificationRequest
	idempotencyKey string
	requestedAt    time.Time
	version        int
	planned        bool
	heldUntil      time.Time // quiet hours: planning waits until then
	cancelled      bool
	expired        bool
	deliveries     []Delivery
	keyedResends   []ResendRequested // those with an IdempotencyKey, oldest first
	status         NotificationStatus
}

// ResendByKey returns the resend actor asked for with the Idempotency-Key
// key, if there was one.
func (n Notification) ResendByKey(actor, key string) (ResendRequested, bool) {
	for _, r := range n.keyedResends {
		if r.Actor == actor && r.IdempotencyKey == key {
			return r, true
		}
	}
	return ResendRequested{}, false
}

// ID returns the notification's ID ("" when it does not exist).
func (n Notification) ID() NotificationID { return n.id }

// Exists reports whether the notification was requested.
func (n Notification) Exists() bool { return n.exists }

// Status returns the overall status, derived from the deliveries ("" when the
// notification does not exist).
func (n Notification) Status() NotificationStatus { return n.status }

// Priority returns the request's priority (normal when the client gave none).
func (n Notification) Priority() Priority { return n.request.Priority }

// lanePriority is the priority planning events carry: "" for normal, the
// lane a delivery takes when nothing says otherwise.
func (n Notification) lanePriority() Priority {
	if n.request.Priority == PriorityNormal {
		return ""
	}
	return n.request.Priority
}

// Category returns the request's category.
func (n Notification) Category() string { return n.request.Category }

// Request returns a copy of the normalized request as stored.
func (n Notification) Request() NotificationRequest { return n.request.clone() }

// RequestedAt returns when the notification was requested.
func (n Notification) RequestedAt() time.Time { return n.requestedAt }

// Version returns how many events have been applied, which is the stream
// version to expect when appending the next ones.
func (n Notification) Version() int { return n.version }

// IdempotencyKey returns the key the notification was requested with.
func (n Notification) IdempotencyKey() string { return n.idempotencyKey }

// ScheduledAt returns the requested send time, or the zero time when the
// notification is to be sent at once.
func (n Notification) ScheduledAt() time.Time { return derefTime(n.request.ScheduledAt) }

// ReleaseAt returns when an unplanned notification may be planned: the
// later of its scheduled_at and the end of a hold (quiet hours); zero when
// it may be planned now.
func (n Notification) ReleaseAt() time.Time {
	at := n.ScheduledAt()
	if n.heldUntil.After(at) {
		at = n.heldUntil
	}
	return at
}

// ExpiresAt returns when the notification stops being worth sending, or the
// zero time when it never expires.
func (n Notification) ExpiresAt() time.Time { return derefTime(n.request.ExpiresAt) }

// Planned reports whether deliveries have been planned.
func (n Notification) Planned() bool { return n.planned }

// Deliveries returns a copy of the deliveries in planning order (plans and
// suppressions first, then resends in the order they were requested).
func (n Notification) Deliveries() []Delivery { return slices.Clone(n.deliveries) }

// Delivery returns the delivery with the given ID.
func (n Notification) Delivery(id DeliveryID) (Delivery, bool) {
	if i := n.deliveryIndex(id); i >= 0 {
		return n.deliveries[i], true
	}
	return Delivery{}, false
}

func (n Notification) deliveryIndex(id DeliveryID) int {
	return slices.IndexFunc(n.deliveries, func(d Delivery) bool { return d.id == id })
}

// LatestDelivery returns the most recent delivery on channel c (a resend's,
// once there is one).
func (n Notification) LatestDelivery(c Channel) (Delivery, bool) {
	for i := len(n.deliveries) - 1; i >= 0; i-- {
		if n.deliveries[i].channel == c {
			return n.deliveries[i], true
		}
	}
	return Delivery{}, false
}

// nextDeliveryID numbers deliveries per channel from 1 in the order they
// appear in the stream, which keeps IDs deterministic on every replay.
func (n Notification) nextDeliveryID(c Channel) DeliveryID {
	count := 0
	for _, d := range n.deliveries {
		if d.channel == c {
			count++
		}
	}
	return NewDeliveryID(c, count+1)
}

// expiredAt reports whether the notification is expired, by event or because
// now has reached expires_at.
func (n Notification) expiredAt(now time.Time) bool {
	return n.expired || (n.request.ExpiresAt != nil && !now.Before(*n.request.ExpiresAt))
}

// Delivery is one channel-and-address leg of a notification.
type Delivery struct {
	id                DeliveryID
	channel           Channel
	address           string
	status            DeliveryStatus
	attempts          int
	throttles         int  // failed attempts the provider refused for its rate
	attemptOpen       bool // an attempt started and neither success nor failure was recorded
	lastError         string
	providerMessageID string
	nextAttemptAt     time.Time
	plannedAt         time.Time // when it was planned or asked for again
	repeats           DeliveryID
	suppressionReason string
	receipts          []receiptKey
	rendered          *Content // what an in-app delivery of a template showed
}

type receiptKey struct {
	outcome           ReceiptOutcome
	providerMessageID string
	reason            string
}

// ID returns the delivery's ID, "<channel>-<n>".
func (d Delivery) ID() DeliveryID { return d.id }

// Channel returns the channel the delivery goes over.
func (d Delivery) Channel() Channel { return d.channel }

// Address returns where the delivery goes ("" for a suppression).
func (d Delivery) Address() string { return d.address }

// Status returns the delivery's status.
func (d Delivery) Status() DeliveryStatus { return d.status }

// Attempts returns how many attempts have started.
func (d Delivery) Attempts() int { return d.attempts }

// LastError returns the reason of the latest failure or failure receipt.
func (d Delivery) LastError() string { return d.lastError }

// ProviderMessageID returns the provider's ID for the message, once known.
func (d Delivery) ProviderMessageID() string { return d.providerMessageID }

// NextAttemptAt returns when the next attempt may start: for
// retry_scheduled, the retry's due time; for in_flight, when the attempt's
// lease ends and another worker may take it over (zero when it has no
// lease); zero otherwise.
func (d Delivery) NextAttemptAt() time.Time { return d.nextAttemptAt }

// Rendered returns the text an in-app delivery of a templated notification
// showed, once it succeeded.
func (d Delivery) Rendered() (Content, bool) {
	if d.rendered == nil {
		return Content{}, false
	}
	return *d.rendered, true
}

// Throttles returns how many of the attempts failed because the provider
// refused for its rate; a retry budget leaves them out.
func (d Delivery) Throttles() int { return d.throttles }

// PlannedAt returns when the delivery was planned, or asked for again by
// a resend: the start of its retry window.
func (d Delivery) PlannedAt() time.Time { return d.plannedAt }

// Repeats returns the delivery this one resends, or "" for a first delivery.
func (d Delivery) Repeats() DeliveryID { return d.repeats }

// SuppressionReason returns why the channel was suppressed ("" otherwise).
func (d Delivery) SuppressionReason() string { return d.suppressionReason }

// hasReceipt reports whether an identical receipt was already recorded.
func (d Delivery) hasReceipt(k receiptKey) bool { return slices.Contains(d.receipts, k) }

// ReplayNotification folds events, oldest first, into a Notification.
func ReplayNotification(events []Event) Notification {
	var n Notification
	for _, e := range events {
		n = EvolveNotification(n, e)
	}
	return n
}

// EvolveNotification returns the state after event e. It never fails: events
// of unknown types, or that make no sense for the state (a delivery event
// for a delivery that does not exist), leave the state as it was, except that
// every non-nil event counts towards Version so the version always matches
// the stream length. state is not modified; the result shares no mutable
// memory that a later evolve would write to.
func EvolveNotification(state Notification, e Event) Notification {
	e = valueEvent(e)
	if e == nil {
		return state
	}
	n := state
	n.version++
	if _, ok := e.(NotificationRequested); !ok && !n.exists {
		return n
	}

	switch ev := e.(type) {
	case NotificationRequested:
		if n.exists {
			return n
		}
		n.id = ev.NotificationID
		n.exists = true
		// Not Normalized: an event is a value nobody changes once it is
		// written or read, and the request leaves the aggregate only as a
		// copy (Request), so it may share the event's maps and slices.
		// Copying them was 3% of the CPU of the api benchmarks, for every
		// notification evolved by the commands and the projections.
		n.request = ev.Request.withDefaults()
		n.idempotencyKey = ev.IdempotencyKey
		n.requestedAt = ev.RequestedAt

	case DeliveryPlanned:
		n.planned = true
		n.deliveries = appendDelivery(n.deliveries, Delivery{
			id: ev.DeliveryID, channel: ev.Channel, address: ev.Address,
			status: DeliveryStatusPlanned, plannedAt: ev.PlannedAt,
		})

	case DeliverySuppressed:
		n.planned = true
		n.deliveries = appendDelivery(n.deliveries, Delivery{
			id: n.nextDeliveryID(ev.Channel), channel: ev.Channel,
			status: DeliveryStatusSuppressed, suppressionReason: ev.Reason,
		})

	case DeliveryAttempted:
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.status = DeliveryStatusInFlight
			d.attempts = ev.Attempt
			d.attemptOpen = true
			d.nextAttemptAt = ev.LeaseUntil
		})

	case DeliverySucceeded:
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.attemptOpen = false
			d.nextAttemptAt = time.Time{}
			if ev.Rendered != nil {
				r := *ev.Rendered
				d.rendered = &r
			}
			if ev.ProviderMessageID != "" {
				d.providerMessageID = ev.ProviderMessageID
			}
			// A receipt may have overtaken this record and already said
			// more (delivered, read, bounced); do not step back from it.
			if d.status != DeliveryStatusInFlight {
				return
			}
			if ev.Confirmed {
				d.status = DeliveryStatusDelivered
			} else {
				d.status = DeliveryStatusSent
			}
		})

	case DeliveryFailed:
		// The status moves with the DeliveryRetryScheduled or
		// DeliveryDeadLettered appended alongside.
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.attemptOpen = false
			d.nextAttemptAt = time.Time{}
			d.lastError = ev.Reason
			if ev.Throttled {
				d.throttles++
			}
		})

	case DeliveryRetryScheduled:
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.attemptOpen = false
			d.status = DeliveryStatusRetryScheduled
			d.nextAttemptAt = ev.DueAt
		})

	case DeliveryDeadLettered:
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.attemptOpen = false
			d.status = DeliveryStatusFailed
			d.nextAttemptAt = time.Time{}
			if ev.Reason != "" {
				d.lastError = ev.Reason
			}
		})

	case DeliveryReceiptRecorded:
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.receipts = append(slices.Clip(d.receipts), receiptKey{ev.Outcome, ev.ProviderMessageID, ev.Reason})
			if d.providerMessageID == "" {
				d.providerMessageID = ev.ProviderMessageID
			}
			// Read is the furthest a delivery gets; later receipts
			// arriving out of order are kept but do not undo it.
			if d.status == DeliveryStatusRead {
				return
			}
			switch ev.Outcome {
			case ReceiptDelivered:
				d.status = DeliveryStatusDelivered
			case ReceiptOpened:
				d.status = DeliveryStatusRead
			case ReceiptBounced, ReceiptFailed:
				d.status = DeliveryStatusFailed
				d.lastError = ev.Reason
			}
		})

	case NotificationRead:
		n.deliveries = updateDelivery(n.deliveries, ev.DeliveryID, func(d *Delivery) {
			d.status = DeliveryStatusRead
		})

	case NotificationHeld:
		n.heldUntil = ev.Until

	case PolicyApplied:
		// Audit only: the plans that follow carry the outcome.

	case NotificationCancelled:
		n.cancelled = true

	case NotificationExpired:
		n.expired = true

	case ResendRequested:
		ds := slices.Clip(n.deliveries)
		for _, r := range ev.Deliveries {
			ds = append(ds, Delivery{
				id: r.DeliveryID, channel: r.Channel, address: r.Address,
				status: DeliveryStatusPlanned, repeats: r.Repeats, plannedAt: ev.RequestedAt,
			})
		}
		n.deliveries = ds
		if ev.IdempotencyKey != "" {
			ev.Deliveries = slices.Clone(ev.Deliveries)
			n.keyedResends = append(slices.Clip(n.keyedResends), ev)
		}

	default:
		return n
	}
	n.status = deriveStatus(n)
	return n
}

// appendDelivery appends without writing into memory an older state shares.
func appendDelivery(ds []Delivery, d Delivery) []Delivery {
	return append(slices.Clip(ds), d)
}

// updateDelivery returns a copy of ds with fn applied to delivery id; ds
// itself is never written, which is what keeps old states valid.
func updateDelivery(ds []Delivery, id DeliveryID, fn func(*Delivery)) []Delivery {
	i := slices.IndexFunc(ds, func(d Delivery) bool { return d.id == id })
	if i < 0 {
		return ds
	}
	out := slices.Clone(ds)
	fn(&out[i])
	return out
}

// deriveStatus computes the overall status. Each channel is judged by its
// latest delivery, so a successful resend turns an earlier failure on that
// channel into a delivered notification. Suppressed channels do not count
// towards success or failure, unless nothing else exists (then: failed).
func deriveStatus(n Notification) NotificationStatus {
	switch {
	case n.cancelled:
		return StatusCancelled
	case n.expired:
		return StatusExpired
	case !n.planned:
		if n.request.ScheduledAt != nil || !n.heldUntil.IsZero() {
			return StatusScheduled
		}
		return StatusAccepted
	}
	succeeded, failed := 0, 0
	for _, c := range AllChannels() {
		d, ok := n.LatestDelivery(c)
		switch {
		case !ok:
		case d.status.Pending():
			return StatusInProgress
		case d.status.Succeeded():
			succeeded++
		case d.status == DeliveryStatusFailed:
			failed++
		}
	}
	switch {
	case succeeded > 0 && failed == 0:
		return StatusDelivered
	case succeeded > 0:
		return StatusPartiallyDelivered
	default:
		return StatusFailed
	}
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
