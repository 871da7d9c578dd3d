package recipients

import (
	"context"
	"time"

	"herald/domain"
)

// AddWebPush records a browser's push subscription for a recipient.
type AddWebPush struct {
	Origin       Origin
	ID           domain.RecipientID
	Subscription domain.WebPushSubscription
}

// AddWebPushHandler handles AddWebPush. Safe for concurrent use.
type AddWebPushHandler struct {
	x     executor
	clock func() time.Time
}

// NewAddWebPushHandler returns an AddWebPushHandler; it refuses missing
// Deps.
func NewAddWebPushHandler(d Deps) (*AddWebPushHandler, error) {
	if err := d.validate("new add web push handler"); err != nil {
		return nil, err
	}
	return &AddWebPushHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle adds the subscription. The same active subscription succeeds with
// Changed false; new keys for an active endpoint replace the old ones. A
// malformed one, or one over domain.MaxWebPushSubscriptions, fails with a
// *domain.ValidationError.
func (h *AddWebPushHandler) Handle(ctx context.Context, cmd AddWebPush) (Result, error) {
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(r domain.RecipientProfile) ([]domain.Event, error) {
		return domain.DecideRecipient(r, domain.AddWebPushSubscription{ID: cmd.ID, Subscription: cmd.Subscription, Now: now})
	})
}
