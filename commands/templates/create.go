package templates

import (
	"context"
	"time"

	"herald/domain"
)

// Create creates template ID with Content as its version 1.
type Create struct {
	Origin  Origin
	ID      domain.TemplateID
	Content domain.TemplateContent
}

// CreateHandler handles Create. Safe for concurrent use.
type CreateHandler struct {
	x     executor
	clock func() time.Time
}

// NewCreateHandler returns a CreateHandler; it refuses missing Deps.
func NewCreateHandler(d Deps) (*CreateHandler, error) {
	if err := d.validate("new create template handler"); err != nil {
		return nil, err
	}
	return &CreateHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle creates the template. Repeating a create with the same content
// (while no other version was published) succeeds with Changed false; other
// content under an existing ID fails with domain.ErrTemplateExists; invalid
// content with a *domain.ValidationError. Nothing is appended on error.
func (h *CreateHandler) Handle(ctx context.Context, cmd Create) (Result, error) {
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(t domain.Template) ([]domain.Event, error) {
		return domain.DecideTemplate(t, domain.CreateTemplate{ID: cmd.ID, Content: cmd.Content, Actor: cmd.Origin.Actor, Now: now})
	})
}
