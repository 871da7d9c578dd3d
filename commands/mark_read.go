package commands

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// MarkRead records that a recipient read an in-app notification.
type MarkRead struct {
	Origin
	RecipientID    string
	NotificationID domain.NotificationID
}

// MarkReadResult says what MarkRead left behind.
type MarkReadResult struct {
	NotificationID domain.NotificationID
	DeliveryID     domain.DeliveryID
	// Changed is false when the item was already read.
	Changed bool
}

// MarkReadHandler handles MarkRead. It is safe for concurrent use.
type MarkReadHandler struct {
	x     executor
	clock func() time.Time
}

// NewMarkReadHandler returns a MarkReadHandler, or an error naming every
// missing dependency.
func NewMarkReadHandler(d Deps) (*MarkReadHandler, error) {
	if err := d.validate("new mark-read handler"); err != nil {
		return nil, err
	}
	return &MarkReadHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle appends NotificationRead for the notification's latest in-app
// delivery. A notification addressed to another recipient is reported as
// not found, so one recipient cannot probe another's inbox; reading twice
// changes nothing; an in-app item not yet delivered wraps
// domain.ErrDeliveryNotDelivered, and a notification without an in-app
// delivery wraps domain.ErrNotInApp.
func (h *MarkReadHandler) Handle(ctx context.Context, cmd MarkRead) (MarkReadResult, error) {
	if !validNotificationID(cmd.NotificationID) || cmd.RecipientID == "" {
		return MarkReadResult{}, fmt.Errorf("mark read %q: %w", cmd.NotificationID, domain.ErrNotificationNotFound)
	}
	now := h.clock()
	var delivery domain.DeliveryID
	out, err := h.x.execute(ctx, cmd.NotificationID, cmd.metadata(cmd.NotificationID), func(state domain.Notification) ([]domain.Event, error) {
		if !state.Exists() || state.Request().Recipient.ID != cmd.RecipientID {
			return nil, domain.ErrNotificationNotFound
		}
		d, ok := state.LatestDelivery(domain.ChannelInApp)
		if !ok {
			return nil, domain.ErrNotInApp
		}
		delivery = d.ID()
		return domain.DecideNotification(state, domain.MarkRead{DeliveryID: delivery, Now: now, Actor: cmd.Actor})
	})
	if err != nil {
		return MarkReadResult{}, fmt.Errorf("mark read %s: %w", cmd.NotificationID, err)
	}
	return MarkReadResult{NotificationID: cmd.NotificationID, DeliveryID: delivery, Changed: len(out.Events) > 0}, nil
}
