package recipients

import (
	"context"
	"time"

	"herald/domain"
)

// SetPreferences replaces a recipient's whole preference set. IfRevision,
// when CheckRevision is set, is the revision the caller edited (HTTP
// If-Match), so an unsubscribe that came in meanwhile is not overwritten.
type SetPreferences struct {
	Origin        Origin
	ID            domain.RecipientID
	Preferences   domain.Preferences
	CheckRevision bool
	IfRevision    int
}

// SetPreferencesHandler handles SetPreferences. Safe for concurrent use.
type SetPreferencesHandler struct {
	x     executor
	clock func() time.Time
}

// NewSetPreferencesHandler returns a SetPreferencesHandler; it refuses
// missing Deps.
func NewSetPreferencesHandler(d Deps) (*SetPreferencesHandler, error) {
	if err := d.validate("new set preferences handler"); err != nil {
		return nil, err
	}
	return &SetPreferencesHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle sets the preferences. An equal set succeeds with Changed false.
// It fails with a *domain.ValidationError, or domain.ErrPreferencesChanged
// when IfRevision is not current; nothing is appended then.
func (h *SetPreferencesHandler) Handle(ctx context.Context, cmd SetPreferences) (Result, error) {
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(r domain.RecipientProfile) ([]domain.Event, error) {
		return domain.DecideRecipient(r, domain.SetRecipientPreferences{
			ID: cmd.ID, Preferences: cmd.Preferences, CheckRevision: cmd.CheckRevision, BasedOn: cmd.IfRevision,
			Actor: cmd.Origin.Actor, Now: now,
		})
	})
}
