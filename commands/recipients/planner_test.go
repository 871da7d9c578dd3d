package recipients_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

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

// newCountingEnv is newEnv with the service's reads counted.
func newCountingEnv(t *testing.T) (*env, *countingStore) {
	t.Helper()
	var counting *countingStore
	e := newEnv(t, func(d *recipients.Deps) {
		counting = &countingStore{Store: d.Store}
		d.Store = counting
	})
	return e, counting
}

func TestPrefetchReadsOnlyTheProfilesThatExist(t *testing.T) {
	t.Parallel()
	e, counting := newCountingEnv(t)
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
// planned with once the counter following the log has read the change,
// however young the cached profile; while the counter follows, a profile
// nobody changes is kept past the one-second limit that applies without
// it.
func TestPlannerCacheFollowsTheLog(t *testing.T) {
	t.Parallel()
	e, counting := newCountingEnv(t)
	var clock atomic.Int64 // nanoseconds after t0
	now := func() time.Time { return t0.Add(time.Duration(clock.Load())) }
	newPlanner := func(counter *recipients.SendCounter) *recipients.Planner {
		p := recipients.NewPlanner(e.svc, counter)
		recipients.SetPlannerClock(p, now)
		return p
	}
	other, err := recipients.NewSetProfileHandler(recipients.Deps{
		Store: e.store, Clock: e.clock.now, NewID: func() string { return uuid.Must(uuid.NewV7()).String() },
		UnsubscribeSecret: secret, PublicURL: "https://herald.example.com/",
	})
	if err != nil {
		t.Fatal(err)
	}
	req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-7"}, Channels: []domain.Channel{domain.ChannelEmail}}
	plan := func(p *recipients.Planner) domain.PlanDecision {
		t.Helper()
		d, err := p.Plan(t.Context(), req, t0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	reads := func(f func()) int64 {
		before := counting.streamReads.Load()
		f()
		return counting.streamReads.Load() - before
	}

	// Without a counter following the log, a cached profile lives a second.
	alone := newPlanner(nil)
	plan(alone)
	if n := reads(func() { plan(alone) }); n != 0 {
		t.Errorf("a profile cached just now was read again (%d reads)", n)
	}
	clock.Add(int64(2 * time.Second))
	if n := reads(func() { plan(alone) }); n != 1 {
		t.Errorf("without a counter, a two-second-old profile was read %d times, want 1", n)
	}

	// With one, it lives on until the counter reads a change.
	counter, err := recipients.NewSendCounter(e.store, recipients.SendCounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	followed := newPlanner(counter)
	if d := plan(followed); len(d.Plans) != 0 { // before the counter runs
		t.Fatalf("user-7 has no profile yet, planned: %+v", d)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go counter.Run(ctx)
	eventually(t, "the counter follows the log", counter.Following)
	clock.Add(int64(2 * time.Second))
	if n := reads(func() { plan(followed) }); n != 1 {
		t.Errorf("a profile cached before the counter followed the log, two seconds old, was read %d times, want 1", n)
	}
	clock.Add(int64(2 * time.Second))
	if n := reads(func() { plan(followed) }); n != 0 {
		t.Errorf("with the counter following, a two-second-old profile was read %d times, want 0", n)
	}
	if _, err := other.Handle(t.Context(), recipients.SetProfile{ID: "user-7", Profile: domain.RecipientDetails{Email: "ada@example.com"}}); err != nil {
		t.Fatal(err)
	}
	head, err := e.store.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the counter reads the change", func() bool { return counter.Position() >= head })
	var d domain.PlanDecision
	if n := reads(func() { d = plan(followed) }); n != 1 {
		t.Errorf("after the counter read the change, the profile was read %d times, want 1", n)
	}
	if len(d.Plans) != 1 || d.Plans[0].Address != "ada@example.com" {
		t.Errorf("after the change: %+v, want the new address", d)
	}
}

// eventually waits up to ten seconds for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
