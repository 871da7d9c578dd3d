package templates

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// Archive archives a template: it takes no new version and no new send;
// notifications already pinned to one of its versions still render.
type Archive struct {
	Origin Origin
	ID     domain.TemplateID
	Reason string
}

// ArchiveHandler handles Archive. Safe for concurrent use.
type ArchiveHandler struct {
	x     executor
	clock func() time.Time
}

// NewArchiveHandler returns an ArchiveHandler; it refuses missing Deps.
func NewArchiveHandler(d Deps) (*ArchiveHandler, error) {
	if err := d.validate("new archive template handler"); err != nil {
		return nil, err
	}
	return &ArchiveHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle archives the template. Archiving an archived template succeeds
// with Changed false; a missing one fails with domain.ErrTemplateNotFound.
func (h *ArchiveHandler) Handle(ctx context.Context, cmd Archive) (Result, error) {
	if !cmd.ID.Valid() {
		return Result{}, fmt.Errorf("archive template %q: %w", cmd.ID, domain.ErrTemplateNotFound)
	}
	now := h.clock()
	return h.x.execute(ctx, cmd.ID, cmd.Origin.metadata(cmd.ID), func(t domain.Template) ([]domain.Event, error) {
		return domain.DecideTemplate(t, domain.ArchiveTemplate{Reason: cmd.Reason, Actor: cmd.Origin.Actor, Now: now})
	})
}
