package recurring_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/adapters/fanout"
	"herald/adapters/recurring"
	"herald/commands/schedules"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func newClock(t time.Time) *fakeClock    { c := &fakeClock{}; c.set(t); return c }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// ledgerSender creates one notification per idempotency key, like the
// notification commands, and reports every key it is handed on sent. With
// fail set it refuses every call as a whole (the log unavailable).
type ledgerSender struct {
	mu      sync.Mutex
	created map[string]bool
	sent    chan string
	fail    bool
}

func (s *ledgerSender) SendBatch(_ context.Context, items []fanout.Item) ([]fanout.ItemResult, error) {
	if s.fail {
		return nil, errors.New("event log unavailable")
	}
	out := make([]fanout.ItemResult, len(items))
	s.mu.Lock()
	for i, it := range items {
		s.created[it.IdempotencyKey] = true
		out[i].NotificationID = it.IdempotencyKey
	}
	s.mu.Unlock()
	for _, it := range items {
		s.sent <- it.IdempotencyKey
	}
	return out, nil
}

func waitKey(t *testing.T, sent <-chan string, want string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case k := <-sent:
			if k == want {
				return
			}
		case <-deadline:
			t.Fatalf("no send with key %s", want)
		}
	}
}

func waitEvent(t *testing.T, store eventstore.Store, stream, typ string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	sub, err := store.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for seen := 0; ; {
		recs, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %d %s: %v", n, typ, err)
		}
		for _, r := range recs {
			if r.Stream == stream && r.Type == typ {
				if seen++; seen == n {
					return
				}
			}
		}
	}
}

func firings(t *testing.T, store eventstore.Store, id domain.ScheduleID) []time.Time {
	t.Helper()
	recs, err := store.ReadStream(t.Context(), domain.ScheduleStream(id), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for _, r := range recs {
		if r.Type != domain.TypeScheduleFired {
			continue
		}
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e.(domain.ScheduleFired).FiringTime)
	}
	return out
}

func start(t *testing.T, ctx context.Context, cfg recurring.Config) (stop func()) {
	t.Helper()
	e, err := recurring.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestScheduleFiresOnceAcrossRestart(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := newClock(t0)
	svc, err := schedules.NewService(schedules.Deps{Store: store, Clock: clock.now, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "ops"}, Content: &domain.Content{Body: "tick"}}
	if _, err := svc.Create(ctx, schedules.Origin{Actor: "ann"}, "tick", domain.ScheduleSpec{EverySeconds: 60, TimeZone: "UTC", StartAt: t0.Add(time.Minute)}, req, ""); err != nil {
		t.Fatal(err)
	}
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	stream := domain.ScheduleStream("tick")

	// Engine 1 records the firing at t1 but cannot send it (the sender is
	// down), then dies.
	down := &ledgerSender{created: map[string]bool{}, sent: make(chan string, 100), fail: true}
	stop1 := start(t, ctx, recurring.Config{Store: store, Ledger: svc, Sender: down, Clock: clock.now, PollInterval: 5 * time.Millisecond})
	clock.set(t1)
	waitEvent(t, store, stream, domain.TypeScheduleFired, 1)
	stop1()

	// Engine 2 starts at the due moment: it records nothing new, sends the
	// recorded firing once, and fires t2 when it comes.
	up := &ledgerSender{created: map[string]bool{}, sent: make(chan string, 100)}
	stop2 := start(t, ctx, recurring.Config{Store: store, Ledger: svc, Sender: up, Clock: clock.now, PollInterval: 5 * time.Millisecond})
	waitKey(t, up.sent, domain.ScheduleFiringKey("tick", t1))
	clock.set(t2.Add(300 * time.Millisecond))
	waitKey(t, up.sent, domain.ScheduleFiringKey("tick", t2))
	stop2()

	// Engine 3, restarted right at t2: nothing is recorded twice, and its
	// recovery re-send of t2 creates no second notification.
	stop3 := start(t, ctx, recurring.Config{Store: store, Ledger: svc, Sender: up, Clock: clock.now, PollInterval: 5 * time.Millisecond})
	waitKey(t, up.sent, domain.ScheduleFiringKey("tick", t2))
	stop3()

	got := firings(t, store, "tick")
	if len(got) != 2 || !got[0].Equal(t1) || !got[1].Equal(t2) {
		t.Errorf("recorded firings %v, want [%s %s]", got, t1, t2)
	}
	if len(up.created) != 2 || !up.created[domain.ScheduleFiringKey("tick", t1)] || !up.created[domain.ScheduleFiringKey("tick", t2)] {
		t.Errorf("notifications %v, want one per firing", up.created)
	}
	sc, err := svc.Get(ctx, "tick")
	if err != nil || sc.Firings() != 2 {
		t.Errorf("schedule: %d firings, %v", sc.Firings(), err)
	}
}

func TestPausedScheduleDoesNotFireAndMissedFiringsCollapse(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := newClock(t0)
	svc, err := schedules.NewService(schedules.Deps{Store: store, Clock: clock.now, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	o := schedules.Origin{Actor: "ann"}
	req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "ops"}, Content: &domain.Content{Body: "q"}}
	for _, id := range []domain.ScheduleID{"quarter", "paused"} {
		if _, err := svc.Create(ctx, o, id, domain.ScheduleSpec{Cron: "*/15 * * * *", TimeZone: "Europe/Berlin"}, req, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Pause(ctx, o, "paused"); err != nil {
		t.Fatal(err)
	}
	// No engine ran from 09:00 to 10:20: the five missed firings of
	// "quarter" collapse into the latest, 10:15.
	clock.add(80 * time.Minute)
	sender := &ledgerSender{created: map[string]bool{}, sent: make(chan string, 100)}
	stop := start(t, ctx, recurring.Config{Store: store, Ledger: svc, Sender: sender, Clock: clock.now, PollInterval: 5 * time.Millisecond})
	waitKey(t, sender.sent, domain.ScheduleFiringKey("quarter", t0.Add(75*time.Minute)))
	clock.add(10 * time.Minute) // 10:30
	waitKey(t, sender.sent, domain.ScheduleFiringKey("quarter", t0.Add(90*time.Minute)))
	stop()
	if got := firings(t, store, "quarter"); len(got) != 2 {
		t.Errorf("quarter fired at %v, want 10:15 and 10:30 only", got)
	}
	if got := firings(t, store, "paused"); len(got) != 0 {
		t.Errorf("paused schedule fired at %v", got)
	}
}
