package templates

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// Summary is what the list shows of a template.
type Summary struct {
	ID            domain.TemplateID
	Name          string
	LatestVersion int
	Archived      bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
	ArchivedAt    time.Time
}

// indexPageSize is how many $all events a catch-up reads per call.
const indexPageSize = 1024

// index is the in-memory list of templates, built by applying template
// events of the $all log in commit order. Two things feed it: Service.Run's
// subscription, which keeps it current in the background, and catchUp,
// which a list request calls to read up to the log's head first, so a
// client sees the template it just created even when Run is not running or
// lags. Both apply under one lock and skip what is at or below the
// position already applied, so each event counts once. The event log port
// has no per-category read, so building the index reads all of $all once
// per process; after that only the new events are read.
type index struct {
	store eventstore.Store

	catchUpMu sync.Mutex // one catch-up reads at a time

	mu      sync.Mutex
	pos     eventstore.Position
	entries map[domain.TemplateID]Summary
	skipped int // template events that did not decode
}

func newIndex(store eventstore.Store) *index {
	return &index{store: store, entries: map[domain.TemplateID]Summary{}}
}

func (ix *index) position() eventstore.Position {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.pos
}

// apply folds recs (in commit order) into the index. Events of other
// streams only move the position. A template event that does not decode
// is skipped and counted rather than halting the list: the template's own
// reads, which load its stream, report it.
func (ix *index) apply(recs []eventstore.RecordedEvent) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, rec := range recs {
		if rec.Position <= ix.pos {
			continue
		}
		ix.pos = rec.Position
		if !strings.HasPrefix(rec.Stream, "template-") {
			continue
		}
		e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
		if err != nil {
			ix.skipped++
			continue
		}
		switch ev := e.(type) {
		case domain.TemplateCreated:
			if _, ok := ix.entries[ev.TemplateID]; !ok {
				ix.entries[ev.TemplateID] = Summary{ID: ev.TemplateID, CreatedAt: ev.CreatedAt, UpdatedAt: ev.CreatedAt}
			}
		case domain.TemplateVersionPublished:
			if s, ok := ix.entries[ev.TemplateID]; ok && ev.Version == s.LatestVersion+1 {
				s.LatestVersion, s.Name, s.UpdatedAt = ev.Version, ev.Content.Name, ev.PublishedAt
				ix.entries[ev.TemplateID] = s
			}
		case domain.TemplateArchived:
			if s, ok := ix.entries[ev.TemplateID]; ok {
				s.Archived, s.ArchivedAt, s.UpdatedAt = true, ev.ArchivedAt, ev.ArchivedAt
				ix.entries[ev.TemplateID] = s
			}
		}
	}
}

// catchUp applies everything committed up to the log's head at the time of
// the call.
func (ix *index) catchUp(ctx context.Context) error {
	ix.catchUpMu.Lock()
	defer ix.catchUpMu.Unlock()
	head, err := ix.store.Head(ctx)
	if err != nil {
		return fmt.Errorf("template index: head: %w", err)
	}
	for pos := ix.position(); pos < head; pos = ix.position() {
		recs, err := ix.store.ReadAll(ctx, pos, indexPageSize)
		if err != nil {
			return fmt.Errorf("template index: read $all after %d: %w", pos, err)
		}
		if len(recs) == 0 {
			return nil
		}
		ix.apply(recs)
	}
	return nil
}

// follow applies the log from the index's position on, live, until ctx
// ends (nil) or the subscription fails.
func (ix *index) follow(ctx context.Context) error {
	sub, err := ix.store.Subscribe(ctx, ix.position())
	if err != nil {
		return fmt.Errorf("template index: subscribe: %w", err)
	}
	defer sub.Close()
	for {
		recs, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("template index: follow: %w", err)
		}
		ix.apply(recs)
	}
}

// ListQuery selects a page of templates.
type ListQuery struct {
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
	// Limit bounds the page: 1 to MaxListLimit, 0 meaning DefaultListLimit.
	Limit int
	// Status filters: "" or "all", "active", "archived".
	Status string
}

// List limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 500
)

// ListPage is a page of templates ordered by ID.
type ListPage struct {
	Templates []Summary
	// NextCursor fetches the next page; empty on the last one.
	NextCursor string
}

var errBadCursor = errors.New("bad cursor")

// page returns the templates after the cursor's ID in ID order. The cursor
// is the last ID of the previous page, so templates created between pages
// are not skipped nor shown twice.
func (ix *index) page(after domain.TemplateID, limit int, status string) ListPage {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var out ListPage
	for _, id := range slices.Sorted(maps.Keys(ix.entries)) {
		if id <= after {
			continue
		}
		s := ix.entries[id]
		if (status == "active" && s.Archived) || (status == "archived" && !s.Archived) {
			continue
		}
		if len(out.Templates) == limit {
			out.NextCursor = encodeCursor(out.Templates[limit-1].ID)
			break
		}
		out.Templates = append(out.Templates, s)
	}
	return out
}
