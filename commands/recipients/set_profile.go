package recipients

import (
	"context"
	"time"

	"herald/domain"
)

// SetProfile replaces a recipient's profile (addresses, locale, time zone),
// creating the recipient if it is new.
type SetProfile struct {
	Origin  Origin
	ID      domain.RecipientID
	Profile domain.RecipientDetails
}

// SetProfileHandler handles SetProfile. Safe for concurrent use.
type SetProfileHandler struct {
	x     executor
	clock func() time.Time
}

// NewSetProfileHandler returns a SetProfileHandler; it refuses missing Deps.
func NewSetProfileHandler(d Deps) (*SetProfileHandler, error) {
	if err := d.validate("new set profile handler"); err != nil {
		return nil, err
	}
	return &SetProfileHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle sets the profile. The profile it already has succeeds with
// Changed false; an invalid one fails with a *domain.ValidationError naming
// every bad field, and nothing is appended.
func (h *SetProfileHandler) Handle(ctx context.Context, cmd SetProfile) (Result, error) {
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(r domain.RecipientProfile) ([]domain.Event, error) {
		return domain.DecideRecipient(r, domain.SetRecipientProfile{ID: cmd.ID, Profile: cmd.Profile, Actor: cmd.Origin.Actor, Now: now})
	})
}
