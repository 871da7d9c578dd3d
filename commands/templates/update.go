package templates

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// Update publishes Content as the template's next version. IfVersion, when
// positive, is the version the caller edited (HTTP If-Match): if another
// version was published since, the update is refused.
type Update struct {
	Origin    Origin
	ID        domain.TemplateID
	Content   domain.TemplateContent
	IfVersion int
}

// UpdateHandler handles Update. Safe for concurrent use.
type UpdateHandler struct {
	x     executor
	clock func() time.Time
}

// NewUpdateHandler returns an UpdateHandler; it refuses missing Deps.
func NewUpdateHandler(d Deps) (*UpdateHandler, error) {
	if err := d.validate("new update template handler"); err != nil {
		return nil, err
	}
	return &UpdateHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle publishes the new version. Content equal to the latest version's
// succeeds with Changed false. It fails with domain.ErrTemplateNotFound,
// domain.ErrTemplateArchived, domain.ErrTemplateVersionMismatch (IfVersion
// is not the latest) or a *domain.ValidationError; nothing is appended then.
func (h *UpdateHandler) Handle(ctx context.Context, cmd Update) (Result, error) {
	if !cmd.ID.Valid() {
		return Result{}, fmt.Errorf("update template %q: %w", cmd.ID, domain.ErrTemplateNotFound)
	}
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(t domain.Template) ([]domain.Event, error) {
		return domain.DecideTemplate(t, domain.PublishTemplateVersion{
			Content: cmd.Content, BasedOn: cmd.IfVersion, Actor: cmd.Origin.Actor, Now: now,
		})
	})
}
