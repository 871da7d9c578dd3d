package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"herald/domain"
)

// StartAttempt claims a delivery for one attempt: it appends
// DeliveryAttempted, after which the caller sends and then records the
// outcome with RecordOutcome. A notification found expired gets
// NotificationExpired appended instead, and the handler answers
// domain.ErrNotificationExpired.
type StartAttempt struct {
	Origin
	NotificationID domain.NotificationID
	DeliveryID     domain.DeliveryID
	// Lease bounds how long the claim holds without an outcome; after it
	// another worker may take the delivery over (see domain.RecordAttempt).
	Lease time.Duration
}

// StartAttemptResult is the claimed attempt and the notification as it
// stands after the claim: what the adapter needs to build the message.
type StartAttemptResult struct {
	Notification domain.Notification
	Delivery     domain.Delivery
	Attempt      int
}

// AttemptHandler handles StartAttempt and RecordOutcome: the dispatcher's
// two writes per attempt. It is safe for concurrent use.
type AttemptHandler struct {
	x     executor
	clock func() time.Time
}

// NewAttemptHandler returns an AttemptHandler, or an error naming every
// missing dependency.
func NewAttemptHandler(d Deps) (*AttemptHandler, error) {
	if err := d.validate("new attempt handler"); err != nil {
		return nil, err
	}
	return &AttemptHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Start appends DeliveryAttempted. Errors wrap the domain's refusals:
// ErrDeliveryInFlight (another worker holds it), ErrDeliveryAlreadySucceeded
// or ErrDeliveryClosed (nothing left to do), ErrRetryNotDue,
// ErrNotificationCancelled, and ErrNotificationExpired — in that last case
// the expiry has been recorded. With a refusal the result still holds the
// notification and delivery as loaded, when they exist.
func (h *AttemptHandler) Start(ctx context.Context, cmd StartAttempt) (StartAttemptResult, error) {
	now := h.clock()
	out, err := h.x.execute(ctx, cmd.NotificationID, cmd.metadata(cmd.NotificationID), func(state domain.Notification) ([]domain.Event, error) {
		events, err := domain.DecideNotification(state, domain.RecordAttempt{DeliveryID: cmd.DeliveryID, Lease: cmd.Lease, Now: now})
		if errors.Is(err, domain.ErrNotificationExpired) {
			// Record the expiry once; the attempt stays refused.
			if exp, xerr := domain.DecideNotification(state, domain.ExpireNotification{Now: now}); xerr == nil {
				return exp, nil
			}
		}
		return events, err
	})
	if err != nil {
		// The state as loaded still tells the caller why (e.g. when a
		// retry is due).
		res := StartAttemptResult{Notification: out.State}
		res.Delivery, _ = out.State.Delivery(cmd.DeliveryID)
		return res, fmt.Errorf("start attempt %s/%s: %w", cmd.NotificationID, cmd.DeliveryID, err)
	}
	if len(out.Events) == 1 {
		if _, ok := out.Events[0].(domain.NotificationExpired); ok {
			return StartAttemptResult{}, fmt.Errorf("start attempt %s/%s: %w", cmd.NotificationID, cmd.DeliveryID, domain.ErrNotificationExpired)
		}
	}
	d, ok := out.State.Delivery(cmd.DeliveryID)
	if !ok || len(out.Events) == 0 {
		return StartAttemptResult{}, fmt.Errorf("start attempt %s/%s: %w", cmd.NotificationID, cmd.DeliveryID, domain.ErrDeliveryNotFound)
	}
	return StartAttemptResult{Notification: out.State, Delivery: d, Attempt: d.Attempts()}, nil
}

// RecordOutcome settles the attempt Attempt of a delivery: a success, or a
// failure with the retry the caller's policy chose (RetryAt zero: give up,
// dead-letter).
type RecordOutcome struct {
	Origin
	NotificationID    domain.NotificationID
	DeliveryID        domain.DeliveryID
	Attempt           int
	Succeeded         bool
	ProviderMessageID string
	Confirmed         bool
	// Rendered is recorded with an in-app success of a templated
	// notification: the inbox shows it.
	Rendered  *domain.Content
	Reason    string
	Retryable bool
	// Throttled says the provider refused for its rate: the failure does
	// not count against the attempts budget (domain.Delivery.Throttles).
	Throttled bool
	RetryAt   time.Time
}

// RecordOutcomeResult is the delivery's state after the outcome.
type RecordOutcomeResult struct {
	Delivery domain.Delivery
	Status   domain.NotificationStatus
	// Events are the events appended (e.g. DeliveryFailed and
	// DeliveryRetryScheduled).
	Events []domain.Event
}

// Record appends the outcome. A stale attempt (another worker took the
// delivery over) wraps domain.ErrStaleAttempt.
func (h *AttemptHandler) Record(ctx context.Context, cmd RecordOutcome) (RecordOutcomeResult, error) {
	now := h.clock()
	out, err := h.x.execute(ctx, cmd.NotificationID, cmd.metadata(cmd.NotificationID), func(state domain.Notification) ([]domain.Event, error) {
		if cmd.Succeeded {
			return domain.DecideNotification(state, domain.RecordSuccess{
				DeliveryID: cmd.DeliveryID, Attempt: cmd.Attempt, ProviderMessageID: cmd.ProviderMessageID,
				Confirmed: cmd.Confirmed, Rendered: cmd.Rendered, Now: now,
			})
		}
		return domain.DecideNotification(state, domain.RecordFailure{
			DeliveryID: cmd.DeliveryID, Attempt: cmd.Attempt, Reason: cmd.Reason,
			Retryable: cmd.Retryable, Throttled: cmd.Throttled, RetryAt: cmd.RetryAt, Now: now,
		})
	})
	if err != nil {
		return RecordOutcomeResult{}, fmt.Errorf("record outcome %s/%s: %w", cmd.NotificationID, cmd.DeliveryID, err)
	}
	d, _ := out.State.Delivery(cmd.DeliveryID)
	return RecordOutcomeResult{Delivery: d, Status: out.State.Status(), Events: out.Events}, nil
}
