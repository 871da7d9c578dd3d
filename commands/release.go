package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"herald/domain"
)

// Release plans the deliveries of a scheduled notification once its
// scheduled_at has come: the scheduler's command. A notification that
// expired meanwhile gets NotificationExpired instead; a cancelled one, or
// one already planned, is left alone.
type Release struct {
	Origin
	ID domain.NotificationID
}

// ReleaseResult says what the release did.
type ReleaseResult struct {
	Status domain.NotificationStatus
	// Released is true when this call planned the deliveries.
	Released bool
	// DueAt is the scheduled time, set when the answer is domain.ErrNotDue.
	DueAt time.Time
}

// ReleaseHandler handles Release. It is safe for concurrent use.
type ReleaseHandler struct {
	x       executor
	clock   func() time.Time
	planner Planner
}

// NewReleaseHandler returns a ReleaseHandler, or an error naming every
// missing dependency.
func NewReleaseHandler(d Deps) (*ReleaseHandler, error) {
	if err := d.validate("new release handler"); err != nil {
		return nil, err
	}
	return &ReleaseHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock, planner: plannerOr(d.Planner)}, nil
}

// Handle plans the notification's deliveries (as a send due now would) or
// records its expiry. Not yet due gives an error wrapping domain.ErrNotDue
// with DueAt set; cancelled, finished or already planned ones give
// Released false and no error: there is nothing left to release.
func (h *ReleaseHandler) Handle(ctx context.Context, cmd Release) (ReleaseResult, error) {
	now := h.clock()
	var due time.Time
	out, err := h.x.execute(ctx, cmd.ID, cmd.metadata(cmd.ID), func(state domain.Notification) ([]domain.Event, error) {
		due = time.Time{} // decided again after a conflict or on a fresh read: only the last decision's
		if !state.Exists() {
			return nil, domain.ErrNotificationNotFound
		}
		if state.Planned() || state.Status().Finished() {
			return nil, nil
		}
		if at := state.ExpiresAt(); !at.IsZero() && !now.Before(at) {
			return domain.DecideNotification(state, domain.ExpireNotification{Now: now})
		}
		if at := state.ReleaseAt(); now.Before(at) {
			due = at
			return nil, fmt.Errorf("due at %s: %w", at.Format(time.RFC3339), domain.ErrNotDue)
		}
		plan, err := h.planner.Plan(ctx, state.Request(), now)
		if err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
		events, err := domain.DecideNotification(state, planCommand(plan, now))
		if errors.Is(err, domain.ErrNotificationCancelled) {
			return nil, nil
		}
		return events, err
	})
	if err != nil {
		return ReleaseResult{DueAt: due}, fmt.Errorf("release %s: %w", cmd.ID, err)
	}
	released := false
	for _, e := range out.Events {
		if h, ok := e.(domain.NotificationHeld); ok {
			// Quiet hours again: released later.
			return ReleaseResult{Status: out.State.Status(), DueAt: h.Until}, nil
		}
		if _, ok := e.(domain.DeliveryPlanned); ok {
			released = true
		}
		if _, ok := e.(domain.DeliverySuppressed); ok {
			released = true
		}
	}
	return ReleaseResult{Status: out.State.Status(), Released: released}, nil
}
