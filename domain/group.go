package domain

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"
)

// Sentinel errors of the Group aggregate. Compare with errors.Is.
var (
	// ErrGroupNotFound means no group has that ID.
	ErrGroupNotFound = errors.New("group not found")
	// ErrGroupExists means a group already lives under that ID with
	// another name or protection.
	ErrGroupExists = errors.New("group already exists")
	// ErrGroupArchived means the group was archived: no member changes,
	// no new sends.
	ErrGroupArchived = errors.New("group archived")
	// ErrGroupEmpty means a send named a group without members.
	ErrGroupEmpty = errors.New("group has no members")
)

// Limits of groups.
const (
	MaxGroupIDLen           = 64
	MaxGroupNameLen         = 200
	MaxMemberIDLen          = 128
	MaxGroupMembersPerEvent = 1000
	// MaxGroupMembersPerCommand bounds one add or remove; bigger imports
	// are split by the caller.
	MaxGroupMembersPerCommand = 100_000
	MaxGroupArchiveNote       = 1024
)

// GroupID identifies a group and names its stream.
type GroupID string

// GroupStream returns the event stream name of group id: "group-<id>".
func GroupStream(id GroupID) string { return "group-" + string(id) }

// Valid reports whether id can name a group: the rule of TemplateID.
func (id GroupID) Valid() bool { return validStreamID(string(id), MaxGroupIDLen) }

// MemberIDProblem returns what is wrong with id as a group member (a
// recipient ID), or "" when it is fine: 1 to MaxMemberIDLen printable ASCII
// characters without spaces. The rule keeps the idempotency keys built from
// member IDs valid.
func MemberIDProblem(id string) string {
	if id == "" {
		return "recipient id is empty"
	}
	if len(id) > MaxMemberIDLen {
		return fmt.Sprintf("recipient id must be at most %d characters", MaxMemberIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return "recipient id must be printable ASCII without spaces"
		}
	}
	return ""
}

// Group is the state of one group, rebuilt from its stream. The zero value
// means "no such group". It is a value: EvolveGroup and ReplayGroup return
// a new Group and never change the member set of one already returned.
type Group struct {
	id         GroupID
	exists     bool
	name       string
	protected  bool
	createdAt  time.Time
	createdBy  string
	archived   bool
	archivedAt time.Time
	reason     string
	// members is never written once a Group holding it has been returned;
	// ReplayGroup copies it before its first change.
	members map[string]struct{}
	version int
}

// ID returns the group's ID.
func (g Group) ID() GroupID { return g.id }

// Exists reports whether the group was created.
func (g Group) Exists() bool { return g.exists }

// Name returns the group's name.
func (g Group) Name() string { return g.name }

// Protected reports whether every send to the group needs approval.
func (g Group) Protected() bool { return g.protected }

// CreatedAt returns when the group was created.
func (g Group) CreatedAt() time.Time { return g.createdAt }

// CreatedBy returns who created the group.
func (g Group) CreatedBy() string { return g.createdBy }

// Archived reports whether the group was archived.
func (g Group) Archived() bool { return g.archived }

// ArchivedAt returns when the group was archived (zero when it is not).
func (g Group) ArchivedAt() time.Time { return g.archivedAt }

// ArchiveReason returns the reason given when archiving.
func (g Group) ArchiveReason() string { return g.reason }

// Version returns how many events have been applied: the stream version to
// expect when appending, and the membership version a batch pins.
func (g Group) Version() int { return g.version }

// MemberCount returns how many members the group has.
func (g Group) MemberCount() int { return len(g.members) }

// HasMember reports whether recipient id is a member.
func (g Group) HasMember(id string) bool {
	_, ok := g.members[id]
	return ok
}

// Members returns the member IDs in ascending byte order: the order a
// fan-out walks, so a position in it means the same after a restart. The
// slice is fresh on every call.
func (g Group) Members() []string { return slices.Sorted(maps.Keys(g.members)) }

// GroupCommand is a command DecideGroup understands. The interface is
// sealed.
type GroupCommand interface{ groupCommand() }

// CreateGroup creates group ID. Repeating it with the same name and
// protection is a no-op.
type CreateGroup struct {
	ID        GroupID
	Name      string
	Protected bool
	Actor     string
	Now       time.Time
}

// AddGroupMembers adds recipient IDs. IDs already members, and repeats
// within Members, are skipped, so a retried add appends nothing.
type AddGroupMembers struct {
	Members []string
	Actor   string
	Now     time.Time
}

// RemoveGroupMembers removes recipient IDs; IDs that are not members are
// skipped.
type RemoveGroupMembers struct {
	Members []string
	Actor   string
	Now     time.Time
}

// ArchiveGroup archives the group; archiving it again is a no-op.
type ArchiveGroup struct {
	Reason string
	Actor  string
	Now    time.Time
}

func (CreateGroup) groupCommand()        {}
func (AddGroupMembers) groupCommand()    {}
func (RemoveGroupMembers) groupCommand() {}
func (ArchiveGroup) groupCommand()       {}

// DecideGroup returns the events cmd causes on state, or an error wrapping
// a group sentinel, ErrInvalidCommand, or a *ValidationError naming the
// fields ("name", "members[3]"). It is pure; (nil, nil) means nothing to
// change. Member changes come in events of at most MaxGroupMembersPerEvent
// IDs, in the order given.
func DecideGroup(state Group, cmd GroupCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateGroup:
		return decideCreateGroup(state, c)
	case AddGroupMembers:
		return decideMembers(state, c.Members, true, c.Actor, c.Now)
	case RemoveGroupMembers:
		return decideMembers(state, c.Members, false, c.Actor, c.Now)
	case ArchiveGroup:
		switch {
		case !state.exists:
			return nil, fmt.Errorf("archive group: %w", ErrGroupNotFound)
		case state.archived:
			return nil, nil
		case utf8.RuneCountInString(c.Reason) > MaxGroupArchiveNote:
			return nil, &ValidationError{Fields: []FieldError{{Field: "reason", Problem: fmt.Sprintf("must be at most %d characters", MaxGroupArchiveNote)}}}
		}
		return []Event{GroupArchived{GroupID: state.id, Reason: c.Reason, Actor: c.Actor, ArchivedAt: c.Now.UTC()}}, nil
	}
	return nil, fmt.Errorf("decide group: unsupported command %T: %w", cmd, ErrInvalidCommand)
}

func decideCreateGroup(g Group, c CreateGroup) ([]Event, error) {
	var v validator
	if !c.ID.Valid() {
		v.add("id", fmt.Sprintf("must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit", MaxGroupIDLen))
	}
	switch n := utf8.RuneCountInString(c.Name); {
	case n == 0:
		v.add("name", "is required")
	case n > MaxGroupNameLen:
		v.add("name", fmt.Sprintf("must be at most %d characters", MaxGroupNameLen))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if g.exists {
		if g.name == c.Name && g.protected == c.Protected {
			return nil, nil
		}
		return nil, fmt.Errorf("create group %s: %w", c.ID, ErrGroupExists)
	}
	return []Event{GroupCreated{GroupID: c.ID, Name: c.Name, Protected: c.Protected, Actor: c.Actor, CreatedAt: c.Now.UTC()}}, nil
}

func decideMembers(g Group, ids []string, add bool, actor string, now time.Time) ([]Event, error) {
	op := "remove group members"
	if add {
		op = "add group members"
	}
	switch {
	case !g.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrGroupNotFound)
	case g.archived:
		return nil, fmt.Errorf("%s %s: %w", op, g.id, ErrGroupArchived)
	case len(ids) == 0:
		return nil, &ValidationError{Fields: []FieldError{{Field: "members", Problem: "must hold at least one recipient id"}}}
	case len(ids) > MaxGroupMembersPerCommand:
		return nil, &ValidationError{Fields: []FieldError{{Field: "members", Problem: fmt.Sprintf("must hold at most %d recipient ids; split bigger imports", MaxGroupMembersPerCommand)}}}
	}
	var v validator
	for i, id := range ids {
		if p := MemberIDProblem(id); p != "" {
			v.add(fmt.Sprintf("members[%d]", i), p)
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	seen := make(map[string]struct{}, len(ids))
	var changed []string
	for _, id := range ids {
		if _, dup := seen[id]; dup || g.HasMember(id) == add {
			continue
		}
		seen[id] = struct{}{}
		changed = append(changed, id)
	}
	var out []Event
	for chunk := range slices.Chunk(changed, MaxGroupMembersPerEvent) {
		chunk = slices.Clone(chunk)
		if add {
			out = append(out, GroupMembersAdded{GroupID: g.id, Members: chunk, Actor: actor, AddedAt: now.UTC()})
		} else {
			out = append(out, GroupMembersRemoved{GroupID: g.id, Members: chunk, Actor: actor, RemovedAt: now.UTC()})
		}
	}
	return out, nil
}

// EvolveGroup returns state with e applied. Every event counts towards
// Version. A membership event copies the member set (it is shared with
// state), so replaying a large group event by event is quadratic: use
// ReplayGroup for that.
func EvolveGroup(state Group, e Event) Group { return ReplayGroup(state, []Event{e}) }

// ReplayGroup returns state with events applied in order, exactly as
// repeated EvolveGroup calls would, but copying the member set at most once:
// replaying 100 chunks of 1,000 members costs one map of 100,000 entries,
// not a hundred. state itself is left unchanged.
func ReplayGroup(state Group, events []Event) Group {
	g := state
	owned := false
	own := func() {
		if !owned {
			m := make(map[string]struct{}, len(g.members)+MaxGroupMembersPerEvent)
			maps.Copy(m, g.members)
			g.members, owned = m, true
		}
	}
	for _, e := range events {
		e = groupValueEvent(e)
		if e == nil {
			continue
		}
		g.version++
		switch ev := e.(type) {
		case GroupCreated:
			if !g.exists {
				g.id, g.exists, g.name, g.protected = ev.GroupID, true, ev.Name, ev.Protected
				g.createdAt, g.createdBy = ev.CreatedAt, ev.Actor
			}
		case GroupMembersAdded:
			if g.exists {
				own()
				for _, id := range ev.Members {
					g.members[id] = struct{}{}
				}
			}
		case GroupMembersRemoved:
			if g.exists {
				own()
				for _, id := range ev.Members {
					delete(g.members, id)
				}
			}
		case GroupArchived:
			if g.exists && !g.archived {
				g.archived, g.archivedAt, g.reason = true, ev.ArchivedAt, ev.Reason
			}
		}
	}
	return g
}
