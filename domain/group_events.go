package domain

import "time"

// The stable event type names of the Group aggregate.
const (
	TypeGroupCreated        = "GroupCreated"
	TypeGroupMembersAdded   = "GroupMembersAdded"
	TypeGroupMembersRemoved = "GroupMembersRemoved"
	TypeGroupArchived       = "GroupArchived"
)

// GroupEventTypes returns every event type name of the Group aggregate, in
// a fixed order. The slice is fresh on every call.
func GroupEventTypes() []string {
	return []string{TypeGroupCreated, TypeGroupMembersAdded, TypeGroupMembersRemoved, TypeGroupArchived}
}

// GroupCreated starts a group stream. A protected group's sends always
// wait for an admin's approval, whatever their size.
type GroupCreated struct {
	GroupID   GroupID   `json:"group_id"`
	Name      string    `json:"name"`
	Protected bool      `json:"protected"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
}

// GroupMembersAdded adds Members, recipient IDs that were not members, at
// most MaxGroupMembersPerEvent of them: a bulk import appends one event per
// chunk.
type GroupMembersAdded struct {
	GroupID GroupID   `json:"group_id"`
	Members []string  `json:"members"`
	Actor   string    `json:"actor"`
	AddedAt time.Time `json:"added_at"`
}

// GroupMembersRemoved removes Members, recipient IDs that were members, at
// most MaxGroupMembersPerEvent of them.
type GroupMembersRemoved struct {
	GroupID   GroupID   `json:"group_id"`
	Members   []string  `json:"members"`
	Actor     string    `json:"actor"`
	RemovedAt time.Time `json:"removed_at"`
}

// GroupArchived retires the group: no member changes and no new sends.
// Batches already requested still fan out to the membership they pinned.
type GroupArchived struct {
	GroupID    GroupID   `json:"group_id"`
	Reason     string    `json:"reason"`
	Actor      string    `json:"actor"`
	ArchivedAt time.Time `json:"archived_at"`
}

// EventType returns TypeGroupCreated.
func (GroupCreated) EventType() string { return TypeGroupCreated }

// EventType returns TypeGroupMembersAdded.
func (GroupMembersAdded) EventType() string { return TypeGroupMembersAdded }

// EventType returns TypeGroupMembersRemoved.
func (GroupMembersRemoved) EventType() string { return TypeGroupMembersRemoved }

// EventType returns TypeGroupArchived.
func (GroupArchived) EventType() string { return TypeGroupArchived }

func groupValueEvent(e Event) Event {
	switch p := e.(type) {
	case *GroupCreated:
		return deref(p)
	case *GroupMembersAdded:
		return deref(p)
	case *GroupMembersRemoved:
		return deref(p)
	case *GroupArchived:
		return deref(p)
	}
	return e
}
