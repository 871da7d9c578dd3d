package recipients

import (
	"context"
	"time"

	"herald/domain"
)

// Unsubscribe opts a recipient out of Channel for Category (either may be
// empty, meaning every; not both). Via says how it was asked ("token").
type Unsubscribe struct {
	Origin   Origin
	ID       domain.RecipientID
	Channel  domain.Channel
	Category string
	Via      string
}

// UnsubscribeHandler handles Unsubscribe. Safe for concurrent use.
type UnsubscribeHandler struct {
	x     executor
	clock func() time.Time
}

// NewUnsubscribeHandler returns an UnsubscribeHandler; it refuses missing
// Deps.
func NewUnsubscribeHandler(d Deps) (*UnsubscribeHandler, error) {
	if err := d.validate("new unsubscribe handler"); err != nil {
		return nil, err
	}
	return &UnsubscribeHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle records the opt-out. One already covered by an existing opt-out
// (clicking the same link twice) succeeds with Changed false.
func (h *UnsubscribeHandler) Handle(ctx context.Context, cmd Unsubscribe) (Result, error) {
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(r domain.RecipientProfile) ([]domain.Event, error) {
		return domain.DecideRecipient(r, domain.Unsubscribe{ID: cmd.ID, Channel: cmd.Channel, Category: cmd.Category, Via: cmd.Via, Now: now})
	})
}
