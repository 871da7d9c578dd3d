package recipients

import (
	"context"
	"time"

	"herald/domain"
)

// ExpireWebPush removes a push subscription the push service reported gone.
type ExpireWebPush struct {
	Origin   Origin
	ID       domain.RecipientID
	Endpoint string
	Reason   string
}

// ExpireWebPushHandler handles ExpireWebPush. Safe for concurrent use.
type ExpireWebPushHandler struct {
	x     executor
	clock func() time.Time
}

// NewExpireWebPushHandler returns an ExpireWebPushHandler; it refuses
// missing Deps.
func NewExpireWebPushHandler(d Deps) (*ExpireWebPushHandler, error) {
	if err := d.validate("new expire web push handler"); err != nil {
		return nil, err
	}
	return &ExpireWebPushHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle expires the subscription. Expiring it again succeeds with Changed
// false; an endpoint the recipient never had fails with
// domain.ErrWebPushSubscriptionNotFound, an unknown recipient with
// domain.ErrRecipientNotFound.
func (h *ExpireWebPushHandler) Handle(ctx context.Context, cmd ExpireWebPush) (Result, error) {
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(r domain.RecipientProfile) ([]domain.Event, error) {
		return domain.DecideRecipient(r, domain.ExpireWebPushSubscription{ID: cmd.ID, Endpoint: cmd.Endpoint, Reason: cmd.Reason, Now: now})
	})
}
