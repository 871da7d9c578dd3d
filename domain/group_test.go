package domain_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"herald/domain"
)

func groupOf(t *testing.T, cmds ...domain.GroupCommand) domain.Group {
	t.Helper()
	var g domain.Group
	for _, c := range cmds {
		events, err := domain.DecideGroup(g, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		g = domain.ReplayGroup(g, events)
	}
	return g
}

func memberIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%06d", prefix, i)
	}
	return out
}

func TestDecideGroup(t *testing.T) {
	t.Parallel()
	create := domain.CreateGroup{ID: "staff", Name: "Staff", Actor: "ops", Now: t0}
	created := groupOf(t, create)
	withTwo := groupOf(t, create, domain.AddGroupMembers{Members: []string{"u1", "u2"}, Now: t0})
	archived := groupOf(t, create, domain.ArchiveGroup{Reason: "gone", Now: t0})

	cases := []struct {
		name    string
		state   domain.Group
		cmd     domain.GroupCommand
		err     error
		fields  []string
		events  int
		members []int // members per event
	}{
		{"create", domain.Group{}, create, nil, nil, 1, nil},
		{"create again is a no-op", created, create, nil, nil, 0, nil},
		{"create with another name", created, domain.CreateGroup{ID: "staff", Name: "Other", Now: t0}, domain.ErrGroupExists, nil, 0, nil},
		{"create invalid", domain.Group{}, domain.CreateGroup{ID: "-x", Now: t0}, domain.ErrInvalidRequest, []string{"id", "name"}, 0, nil},
		{"add to missing group", domain.Group{}, domain.AddGroupMembers{Members: []string{"u1"}}, domain.ErrGroupNotFound, nil, 0, nil},
		{"add skips members and repeats", withTwo, domain.AddGroupMembers{Members: []string{"u1", "u3", "u3", "u4"}}, nil, nil, 1, []int{2}},
		{"add only members: no-op", withTwo, domain.AddGroupMembers{Members: []string{"u2", "u1"}}, nil, nil, 0, nil},
		{"add in chunks", created, domain.AddGroupMembers{Members: memberIDs("m", 2500)}, nil, nil, 3, []int{1000, 1000, 500}},
		{"add bad ids", created, domain.AddGroupMembers{Members: []string{"ok", "", "has space", string(make([]byte, 129))}}, domain.ErrInvalidRequest, []string{"members[1]", "members[2]", "members[3]"}, 0, nil},
		{"add nothing", created, domain.AddGroupMembers{}, domain.ErrInvalidRequest, []string{"members"}, 0, nil},
		{"add to archived", archived, domain.AddGroupMembers{Members: []string{"u1"}}, domain.ErrGroupArchived, nil, 0, nil},
		{"remove skips non-members", withTwo, domain.RemoveGroupMembers{Members: []string{"u2", "u9"}}, nil, nil, 1, []int{1}},
		{"archive", withTwo, domain.ArchiveGroup{Reason: "done"}, nil, nil, 1, nil},
		{"archive again is a no-op", archived, domain.ArchiveGroup{}, nil, nil, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := domain.DecideGroup(tc.state, tc.cmd)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if got := specFields(err); !equalStrings(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
			if len(events) != tc.events {
				t.Fatalf("%d events, want %d: %v", len(events), tc.events, events)
			}
			for i, n := range tc.members {
				var got int
				switch e := events[i].(type) {
				case domain.GroupMembersAdded:
					got = len(e.Members)
				case domain.GroupMembersRemoved:
					got = len(e.Members)
				}
				if got != n {
					t.Errorf("event %d holds %d members, want %d", i, got, n)
				}
			}
		})
	}
}

func TestGroupReplayIsAValue(t *testing.T) {
	t.Parallel()
	g := groupOf(t, domain.CreateGroup{ID: "all", Name: "All", Protected: true, Now: t0},
		domain.AddGroupMembers{Members: memberIDs("u", 100_000), Now: t0})
	if g.MemberCount() != 100_000 || g.Version() != 101 || !g.Protected() {
		t.Fatalf("count %d, version %d, protected %v", g.MemberCount(), g.Version(), g.Protected())
	}
	members := g.Members()
	if !slices.IsSorted(members) || members[0] != "u000000" || members[99_999] != "u099999" {
		t.Errorf("members not in order: %v ... %v", members[:2], members[len(members)-2:])
	}
	// Later states do not leak into g.
	later := domain.EvolveGroup(g, domain.GroupMembersRemoved{GroupID: "all", Members: []string{"u000001"}})
	later = domain.ReplayGroup(later, []domain.Event{&domain.GroupMembersAdded{GroupID: "all", Members: []string{"new"}}})
	if !g.HasMember("u000001") || g.HasMember("new") || g.MemberCount() != 100_000 {
		t.Error("evolving a later state changed an earlier one")
	}
	if later.HasMember("u000001") || !later.HasMember("new") || later.Version() != 103 {
		t.Errorf("later: version %d", later.Version())
	}
	// Unknown events count towards the version and change nothing else.
	if v := domain.EvolveGroup(later, domain.NotificationExpired{}); v.Version() != 104 || v.MemberCount() != later.MemberCount() {
		t.Errorf("unknown event: version %d", v.Version())
	}
}

func BenchmarkReplayGroup100k(b *testing.B) {
	var events []domain.Event
	events = append(events, domain.GroupCreated{GroupID: "g", Name: "G"})
	for chunk := range slices.Chunk(memberIDs("u", 100_000), domain.MaxGroupMembersPerEvent) {
		events = append(events, domain.GroupMembersAdded{GroupID: "g", Members: chunk})
	}
	b.ReportAllocs()
	for b.Loop() {
		if g := domain.ReplayGroup(domain.Group{}, events); g.MemberCount() != 100_000 {
			b.Fatal(g.MemberCount())
		}
	}
}
