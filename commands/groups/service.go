package groups

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"herald/commands/aggexec"
	"herald/domain"
)

// Service is the group and batch side of Herald: the commands, the reads,
// and the calls the fan-out makes. Safe for concurrent use.
type Service struct {
	d     Deps
	cache *groupCache
}

// NewService returns a Service over d; it refuses missing Deps.
func NewService(d Deps) (*Service, error) {
	if err := d.validate("new group service"); err != nil {
		return nil, err
	}
	d.setDefaults()
	return &Service{d: d, cache: newGroupCache(groupCacheSize)}, nil
}

// groupCacheSize bounds how many groups stay decoded in memory.
const groupCacheSize = 64

// cachedGroup is a group state with its members in walk order, computed
// once per version.
type cachedGroup struct {
	group   domain.Group
	ordered []string // nil until first needed
}

// groupCache keeps the latest loaded state of recently used groups. A
// Group is a value whose member set is never changed once returned, so
// handing out a cached state is safe.
type groupCache struct {
	mu  sync.Mutex
	max int
	m   map[domain.GroupID]*cachedGroup
}

func newGroupCache(max int) *groupCache {
	return &groupCache{max: max, m: map[domain.GroupID]*cachedGroup{}}
}

func (c *groupCache) get(id domain.GroupID) *cachedGroup {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

func (c *groupCache) put(g domain.Group, ordered []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[g.ID()]; old != nil && old.group.Version() > g.Version() {
		return
	}
	if len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[g.ID()] = &cachedGroup{group: g, ordered: ordered}
}

// loadGroup returns the group's latest state, reading only what was
// appended since the cached one.
func (s *Service) loadGroup(ctx context.Context, id domain.GroupID) (domain.Group, error) {
	var base domain.Group
	if c := s.cache.get(id); c != nil {
		base = c.group
	}
	g, err := aggexec.LoadFrom(ctx, s.d.Store, groupAggregate, string(id), base, 0)
	if err != nil {
		return domain.Group{}, err
	}
	if g.Exists() && g.Version() != base.Version() {
		s.cache.put(g, nil)
	}
	return g, nil
}

// Group returns the group's current state. A group never created gives an
// error wrapping domain.ErrGroupNotFound.
func (s *Service) Group(ctx context.Context, id domain.GroupID) (domain.Group, error) {
	if !id.Valid() {
		return domain.Group{}, fmt.Errorf("group %q: %w", id, domain.ErrGroupNotFound)
	}
	g, err := s.loadGroup(ctx, id)
	if err != nil {
		return domain.Group{}, err
	}
	if !g.Exists() {
		return domain.Group{}, fmt.Errorf("group %q: %w", id, domain.ErrGroupNotFound)
	}
	return g, nil
}

// GroupAt returns the group as it was at stream version version: the
// membership a batch pinned. Errors wrap domain.ErrGroupNotFound when the
// stream is shorter.
func (s *Service) GroupAt(ctx context.Context, id domain.GroupID, version int) (domain.Group, error) {
	if c := s.cache.get(id); c != nil && c.group.Version() == version {
		return c.group, nil
	}
	g, err := aggexec.LoadFrom(ctx, s.d.Store, groupAggregate, string(id), domain.Group{}, version)
	if err != nil {
		return domain.Group{}, err
	}
	if !g.Exists() || g.Version() != version {
		return domain.Group{}, fmt.Errorf("group %q at version %d (has %d): %w", id, version, g.Version(), domain.ErrGroupNotFound)
	}
	return g, nil
}

// orderedMembers returns g's members in walk order, from the cache when g
// is the cached version. The slice must not be modified.
func (s *Service) orderedMembers(g domain.Group) []string {
	if c := s.cache.get(g.ID()); c != nil && c.group.Version() == g.Version() && c.ordered != nil {
		return c.ordered
	}
	ordered := g.Members()
	s.cache.put(g, ordered)
	return ordered
}

// MembersPage is a page of members in ascending ID order.
type MembersPage struct {
	Members []string
	// Next is the last member of the page when more follow, else "".
	Next string
}

// Members returns up to limit members after the member ID after, in
// ascending order, from the group's current state.
func (s *Service) Members(ctx context.Context, id domain.GroupID, after string, limit int) (MembersPage, error) {
	g, err := s.Group(ctx, id)
	if err != nil {
		return MembersPage{}, err
	}
	all := s.orderedMembers(g)
	i := sort.SearchStrings(all, after)
	if i < len(all) && all[i] == after {
		i++
	}
	end := min(i+limit, len(all))
	page := MembersPage{Members: slices.Clone(all[i:end])}
	if end < len(all) && end > i {
		page.Next = all[end-1]
	}
	return page, nil
}

// GroupResult is the outcome of a group command.
type GroupResult struct {
	Group domain.Group
	// Added and Removed count the members the command changed.
	Added, Removed int
	// Changed is false when the command appended nothing.
	Changed bool
}

func (s *Service) groupCommand(ctx context.Context, o Origin, id domain.GroupID, decide func(domain.Group, time.Time) ([]domain.Event, error)) (GroupResult, error) {
	now := s.d.Clock()
	stream := domain.GroupStream(id)
	g, events, err := aggexec.Execute(ctx, s.loop(), groupAggregate, string(id), o.metadata(stream),
		func(ctx context.Context) (domain.Group, error) { return s.loadGroup(ctx, id) },
		func(g domain.Group) ([]domain.Event, error) { return decide(g, now) })
	if err != nil {
		return GroupResult{Group: g}, err
	}
	res := GroupResult{Group: g, Changed: len(events) > 0}
	for _, e := range events {
		switch ev := e.(type) {
		case domain.GroupMembersAdded:
			res.Added += len(ev.Members)
		case domain.GroupMembersRemoved:
			res.Removed += len(ev.Members)
		}
	}
	if res.Changed {
		s.cache.put(g, nil)
	}
	return res, nil
}

// CreateGroup creates group id. Repeating it with the same name and
// protection succeeds with Changed false; otherwise an existing ID gives
// domain.ErrGroupExists.
func (s *Service) CreateGroup(ctx context.Context, o Origin, id domain.GroupID, name string, protected bool) (GroupResult, error) {
	return s.groupCommand(ctx, o, id, func(g domain.Group, now time.Time) ([]domain.Event, error) {
		return domain.DecideGroup(g, domain.CreateGroup{ID: id, Name: name, Protected: protected, Actor: o.Actor, Now: now})
	})
}

// ChangeMembers adds then removes members in one append (either list may
// be empty, not both). IDs already in the wanted state are skipped. Field
// errors name "add[i]" and "remove[i]".
func (s *Service) ChangeMembers(ctx context.Context, o Origin, id domain.GroupID, add, remove []string) (GroupResult, error) {
	if !id.Valid() {
		return GroupResult{}, fmt.Errorf("change members of %q: %w", id, domain.ErrGroupNotFound)
	}
	if len(add) == 0 && len(remove) == 0 {
		return GroupResult{}, fieldError("add", "add or remove must list at least one recipient id")
	}
	return s.groupCommand(ctx, o, id, func(g domain.Group, now time.Time) ([]domain.Event, error) {
		var out []domain.Event
		if len(add) > 0 {
			events, err := domain.DecideGroup(g, domain.AddGroupMembers{Members: add, Actor: o.Actor, Now: now})
			if err != nil {
				return nil, renameFields(err, "members", "add")
			}
			out, g = events, domain.ReplayGroup(g, events)
		}
		if len(remove) > 0 {
			events, err := domain.DecideGroup(g, domain.RemoveGroupMembers{Members: remove, Actor: o.Actor, Now: now})
			if err != nil {
				return nil, renameFields(err, "members", "remove")
			}
			out = append(out, events...)
		}
		return out, nil
	})
}

// ArchiveGroup archives the group; archiving it again changes nothing.
func (s *Service) ArchiveGroup(ctx context.Context, o Origin, id domain.GroupID, reason string) (GroupResult, error) {
	if !id.Valid() {
		return GroupResult{}, fmt.Errorf("archive group %q: %w", id, domain.ErrGroupNotFound)
	}
	return s.groupCommand(ctx, o, id, func(g domain.Group, now time.Time) ([]domain.Event, error) {
		return domain.DecideGroup(g, domain.ArchiveGroup{Reason: reason, Actor: o.Actor, Now: now})
	})
}

// BatchResult is the outcome of a batch command.
type BatchResult struct {
	Batch domain.Batch
	// Changed is false when the command appended nothing (a repeat).
	Changed bool
}

// Batch returns the batch's current state; errors wrap
// domain.ErrBatchNotFound.
func (s *Service) Batch(ctx context.Context, id domain.BatchID) (domain.Batch, error) {
	if !id.Valid() {
		return domain.Batch{}, fmt.Errorf("batch %q: %w", id, domain.ErrBatchNotFound)
	}
	b, err := aggexec.LoadFrom(ctx, s.d.Store, batchAggregate, string(id), domain.Batch{}, 0)
	if err != nil {
		return domain.Batch{}, err
	}
	if !b.Exists() {
		return domain.Batch{}, fmt.Errorf("batch %q: %w", id, domain.ErrBatchNotFound)
	}
	return b, nil
}

func (s *Service) batchCommand(ctx context.Context, o Origin, id domain.BatchID, decide func(domain.Batch) ([]domain.Event, error)) (BatchResult, error) {
	if !id.Valid() {
		return BatchResult{}, fmt.Errorf("batch %q: %w", id, domain.ErrBatchNotFound)
	}
	stream := domain.BatchStream(id)
	b, events, err := aggexec.Execute(ctx, s.loop(), batchAggregate, string(id), o.metadata(stream),
		func(ctx context.Context) (domain.Batch, error) {
			return aggexec.LoadFrom(ctx, s.d.Store, batchAggregate, string(id), domain.Batch{}, 0)
		}, decide)
	return BatchResult{Batch: b, Changed: len(events) > 0}, err
}

// SendToGroup requests a batch sending req (without recipient) to every
// current member of group: the batch pins the group's stream version. It
// waits for approval when the group is protected or has more members than
// the approval threshold. A non-empty idempotencyKey makes the batch ID
// deterministic (IdempotentBatchID), so a retried send returns the first
// batch with Changed false; the same key with another request gives
// domain.ErrBatchExists.
func (s *Service) SendToGroup(ctx context.Context, o Origin, group domain.GroupID, req domain.NotificationRequest, idempotencyKey string) (BatchResult, error) {
	id := domain.BatchID(s.d.NewID())
	if idempotencyKey != "" {
		if !validIdempotencyKey(idempotencyKey) {
			return BatchResult{}, fieldError("Idempotency-Key", fmt.Sprintf("must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLen))
		}
		id = IdempotentBatchID(o.Actor, group, idempotencyKey)
	}
	g, err := s.Group(ctx, group)
	if err != nil {
		return BatchResult{}, err
	}
	now := s.d.Clock()
	return s.batchCommand(ctx, o, id, func(b domain.Batch) ([]domain.Event, error) {
		if g.Archived() && !b.Exists() {
			return nil, fmt.Errorf("send to group %s: %w", group, domain.ErrGroupArchived)
		}
		send := req
		if !b.Exists() && req.Template != nil && s.d.Templates != nil {
			// A repeat is judged against the original as it was sent,
			// whatever became of the template since: only a new batch
			// is checked and pinned. Members are recipient IDs, so only
			// the named channels are known (none: every required
			// variable must be given).
			ref, err := s.d.Templates.Resolve(ctx, *req.Template, req.Channels)
			if err != nil {
				return nil, err
			}
			send.Template = &ref
		}
		return domain.DecideBatch(b, domain.RequestBatch{
			ID: id, Request: send, GroupID: group, GroupVersion: g.Version(), Size: g.MemberCount(),
			Protected: g.Protected(), ApprovalThreshold: s.d.ApprovalThreshold, Actor: o.Actor, Now: now,
		})
	})
}

// Approve approves a batch awaiting approval; admin says whether the
// caller is an admin (only admins may). Errors wrap domain.ErrNotAdmin,
// domain.ErrBatchNotFound, domain.ErrBatchRejected or
// domain.ErrBatchNotAwaitingApproval.
func (s *Service) Approve(ctx context.Context, o Origin, id domain.BatchID, admin bool, reason string) (BatchResult, error) {
	now := s.d.Clock()
	return s.batchCommand(ctx, o, id, func(b domain.Batch) ([]domain.Event, error) {
		return domain.DecideBatch(b, domain.ApproveBatch{Actor: o.Actor, Admin: admin, Reason: reason, Now: now})
	})
}

// Reject rejects a batch awaiting approval with a required reason; the
// errors are Approve's.
func (s *Service) Reject(ctx context.Context, o Origin, id domain.BatchID, admin bool, reason string) (BatchResult, error) {
	now := s.d.Clock()
	return s.batchCommand(ctx, o, id, func(b domain.Batch) ([]domain.Event, error) {
		return domain.DecideBatch(b, domain.RejectBatch{Actor: o.Actor, Admin: admin, Reason: reason, Now: now})
	})
}

// RecordProgress moves the batch's fan-out cursor to done recipients,
// failed of them refused; a cursor at or behind the recorded one changes
// nothing. It is the fan-out's call, recorded with actor.
func (s *Service) RecordProgress(ctx context.Context, actor string, id domain.BatchID, done, failed int) (domain.Batch, error) {
	now := s.d.Clock()
	res, err := s.batchCommand(ctx, Origin{Actor: actor}, id, func(b domain.Batch) ([]domain.Event, error) {
		return domain.DecideBatch(b, domain.RecordFanOutProgress{Done: done, Failed: failed, Now: now})
	})
	return res.Batch, err
}

// CompleteBatch records that the batch's fan-out finished.
func (s *Service) CompleteBatch(ctx context.Context, actor string, id domain.BatchID) (domain.Batch, error) {
	now := s.d.Clock()
	res, err := s.batchCommand(ctx, Origin{Actor: actor}, id, func(b domain.Batch) ([]domain.Event, error) {
		return domain.DecideBatch(b, domain.CompleteBatch{Now: now})
	})
	return res.Batch, err
}

func fieldError(field, problem string) *domain.ValidationError {
	return &domain.ValidationError{Fields: []domain.FieldError{{Field: field, Problem: problem}}}
}

// renameFields renames "members[i]" fields of a validation error to
// "<to>[i]", matching the request body.
func renameFields(err error, from, to string) error {
	ve, ok := err.(*domain.ValidationError)
	if !ok {
		return err
	}
	out := &domain.ValidationError{Fields: slices.Clone(ve.Fields)}
	for i, f := range out.Fields {
		if rest, ok := strings.CutPrefix(f.Field, from); ok {
			out.Fields[i].Field = to + rest
		}
	}
	return out
}
