package recipients_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"herald/commands/recipients"
	"herald/domain"
	"herald/infra/eventstore"
)

// countingStore counts the stream reads and the many-stream lookups made
// through it.
type countingStore struct {
	eventstore.Store
	streamReads, versionLookups atomic.Int64
}

func (s *countingStore) ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	s.streamReads.Add(1)
	return s.Store.ReadStream(ctx, stream, after, limit)
}

func (s *countingStore) StreamVersions(ctx context.Context, streams []string) (map[string]uint64, error) {
	s.versionLookups.Add(1)
	return eventstore.StreamVersions(ctx, s.Store, streams)
}

func TestPrefetchReadsOnlyTheProfilesThatExist(t *testing.T) {
	t.Parallel()
	var counting *countingStore
	e := newEnv(t, func(d *recipients.Deps) {
		counting = &countingStore{Store: d.Store}
		d.Store = counting
	})
	if res := e.do("PUT", "/v1/recipients/user-1", `{"email":"ada@example.com"}`); res.status != 201 {
		t.Fatalf("profile: %d %s", res.status, res.body)
	}
	p := recipients.NewPlanner(e.svc, nil)
	var reqs []domain.NotificationRequest
	for i := 1; i <= 50; i++ {
		reqs = append(reqs, domain.NotificationRequest{
			Recipient: domain.Recipient{ID: fmt.Sprintf("user-%d", i)}, Channels: []domain.Channel{domain.ChannelEmail},
		})
	}
	counting.streamReads.Store(0)
	if err := p.Prefetch(t.Context(), reqs, t0); err != nil {
		t.Fatal(err)
	}
	plans := make([]domain.PlanDecision, len(reqs))
	for i, req := range reqs {
		d, err := p.Plan(t.Context(), req, t0)
		if err != nil {
			t.Fatal(err)
		}
		plans[i] = d
	}
	if n, m := counting.streamReads.Load(), counting.versionLookups.Load(); n != 1 || m != 1 {
		t.Errorf("planning 50 recipients, one with a profile, after a prefetch: %d stream reads and %d lookups, want 1 and 1", n, m)
	}
	if d := plans[0]; len(d.Plans) != 1 || d.Plans[0].Address != "ada@example.com" {
		t.Errorf("user-1 (has a profile): %+v", d)
	}
	if d := plans[1]; len(d.Plans) != 0 || len(d.Suppressions) != 1 {
		t.Errorf("user-2 (no profile, no address): %+v", d)
	}

	// A profile created after the prefetch is planned with at once: the
	// write through the service empties what the planner knew.
	if res := e.do("PUT", "/v1/recipients/user-2", `{"email":"grace@example.com"}`); res.status != 201 {
		t.Fatalf("profile: %d %s", res.status, res.body)
	}
	d, err := p.Plan(t.Context(), reqs[1], t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Plans) != 1 || d.Plans[0].Address != "grace@example.com" {
		t.Errorf("user-2 after its profile was created: %+v", d)
	}
}

// A profile changed by another process (here: a handler that is not the
// planner's Service, so the planner's own-write signal stays quiet) is
// planned with once the counter has read the change from the log, without
// waiting for the cache's time limit; until then the cached profile is used
// without a read.
func TestPlannerDropsProfilesTheCounterSeesChange(t *testing.T) {
	t.Parallel()
	var counting *countingStore
	e := newEnv(t, func(d *recipients.Deps) {
		counting = &countingStore{Store: d.Store}
		d.Store = counting
	})
	counter, err := recipients.NewSendCounter(e.store, recipients.SendCounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := recipients.NewPlanner(e.svc, counter)
	other, err := recipients.NewSetProfileHandler(recipients.Deps{
		Store: e.store, Clock: e.clock.now, NewID: func() string { return uuid.Must(uuid.NewV7()).String() },
		UnsubscribeSecret: secret, PublicURL: "https://herald.example.com/",
	})
	if err != nil {
		t.Fatal(err)
	}
	req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-7"}, Channels: []domain.Channel{domain.ChannelEmail}}
	plan := func() domain.PlanDecision {
		t.Helper()
		d, err := p.Plan(t.Context(), req, t0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	if d := plan(); len(d.Plans) != 0 {
		t.Fatalf("user-7 has no profile yet, planned: %+v", d)
	}
	if _, err := other.Handle(t.Context(), recipients.SetProfile{ID: "user-7", Profile: domain.RecipientDetails{Email: "ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	reads := counting.streamReads.Load()
	if d := plan(); len(d.Plans) != 0 {
		t.Errorf("before the counter read the change, the cached (empty) profile should be used: %+v", d)
	}
	if n := counting.streamReads.Load() - reads; n != 0 {
		t.Errorf("a cached profile was read again (%d reads)", n)
	}

	if err := counter.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := plan(); len(d.Plans) != 1 || d.Plans[0].Address != "ada@example.com" {
		t.Errorf("after the counter read the change: %+v, want the new address", d)
	}
	if n := counting.streamReads.Load() - reads; n != 1 {
		t.Errorf("after the change the profile should be read once, read %d times", n)
	}
}
