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

// Handle appends NotificationRead for each of the notification's in-app
// deliveries the inbox shows unread. A notification addressed to another recipient is reported as
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
		latest, ok := state.LatestDelivery(domain.ChannelInApp)
		if !ok {
			return nil, domain.ErrNotInApp
		}
		delivery = latest.ID()
		// Every in-app item of the notification the inbox shows (a
		// resend adds one) is read; the latest decides the error when
		// none is there yet.
		var events []domain.Event
		for _, d := range state.Deliveries() {
			if d.Channel() != domain.ChannelInApp || d.ID() == delivery || d.Status() != domain.DeliveryStatusDelivered {
				continue
			}
			evs, err := domain.DecideNotification(state, domain.MarkRead{DeliveryID: d.ID(), Now: now, Actor: cmd.Actor})
			if err != nil {
				return nil, err
			}
			events = append(events, evs...)
		}
		evs, err := domain.DecideNotification(state, domain.MarkRead{DeliveryID: delivery, Now: now, Actor: cmd.Actor})
		if err != nil && len(events) == 0 {
			return nil, err
		}
		return append(events, evs...), nil
	})
	if err != nil {
		return MarkReadResult{}, fmt.Errorf("mark read %s: %w", cmd.NotificationID, err)
	}
	return MarkReadResult{NotificationID: cmd.NotificationID, DeliveryID: delivery, Changed: len(out.Events) > 0}, nil
}
