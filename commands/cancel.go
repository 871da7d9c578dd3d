package commands

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// Cancel stops further attempts on a notification. Attempts already under
// way still record their outcome.
type Cancel struct {
	Origin
	ID     domain.NotificationID
	Reason string
}

// CancelResult says what Cancel left behind.
type CancelResult struct {
	ID     domain.NotificationID
	Status domain.NotificationStatus
	// Changed is false when the notification was already cancelled.
	Changed bool
}

// CancelHandler handles Cancel. It is safe for concurrent use.
type CancelHandler struct {
	x     executor
	clock func() time.Time
}

// NewCancelHandler returns a CancelHandler, or an error naming every
// missing dependency.
func NewCancelHandler(d Deps) (*CancelHandler, error) {
	if err := d.validate("new cancel handler"); err != nil {
		return nil, err
	}
	return &CancelHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle appends NotificationCancelled with the actor and reason. Cancelling
// twice is not an error (the second changes nothing); cancelling a
// notification that already finished wraps domain.ErrNotificationFinished;
// an unknown ID wraps domain.ErrNotificationNotFound.
func (h *CancelHandler) Handle(ctx context.Context, cmd Cancel) (CancelResult, error) {
	if !validNotificationID(cmd.ID) {
		return CancelResult{}, fmt.Errorf("cancel %q: %w", cmd.ID, domain.ErrNotificationNotFound)
	}
	now := h.clock()
	out, err := h.x.execute(ctx, cmd.ID, cmd.metadata(cmd.ID), func(state domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotification(state, domain.CancelNotification{Reason: cmd.Reason, Actor: cmd.Actor, Now: now})
	})
	if err != nil {
		return CancelResult{}, fmt.Errorf("cancel %s: %w", cmd.ID, err)
	}
	return CancelResult{ID: cmd.ID, Status: out.State.Status(), Changed: len(out.Events) > 0}, nil
}
