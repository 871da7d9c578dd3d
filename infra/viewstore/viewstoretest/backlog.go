package viewstoretest

import (
	"context"
	"slices"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// BacklogViews is a view store that can also tell the roles what they owe
// (the dispatcher's pending deliveries, the scheduler's waiting releases)
// and hold leases.
type BacklogViews interface {
	projections.Store
	projections.DeliveryBacklog
	ScheduledNotifications(ctx context.Context, fn func(id domain.NotificationID, due time.Time) error) (eventstore.Position, error)
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}

// RunBacklog is the contract of the recovery views and leases, for every
// engine: the pending deliveries and scheduled releases after the
// shared scenario plus an unsettled notification and a scheduled one,
// and one lease holder at a time.
// newViews is Run's: a fresh store folding states from h.
func RunBacklog(t *testing.T, newViews func(t *testing.T, h projections.History) BacklogViews) {
	t.Run("PendingAndScheduled", func(t *testing.T) {
		t.Parallel()
		rec := &Recorder{}
		testPendingAndScheduled(t, rec, newViews(t, rec))
	})
	t.Run("Lease", func(t *testing.T) { t.Parallel(); testLease(t, newViews(t, &Recorder{})) })
}

func testPendingAndScheduled(t *testing.T, rec *Recorder, v BacklogViews) {
	ctx := context.Background()
	const (
		open      = domain.NotificationID("n-open")
		scheduled = domain.NotificationID("n-later")
	)
	webhook1 := domain.NewDeliveryID(domain.ChannelWebhook, 1)
	email1 := domain.NewDeliveryID(domain.ChannelEmail, 1)
	sms1 := domain.NewDeliveryID(domain.ChannelSMS, 1)
	later := at(48 * time.Hour)
	r := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-9", WebhookURL: "https://hooks.example.com/9", Email: "z@example.com", Phone: "+15550000009"},
		Channels:  []domain.Channel{domain.ChannelWebhook, domain.ChannelEmail, domain.ChannelSMS},
		Content:   &domain.Content{Body: "open"}, Priority: domain.PriorityHigh,
	}
	rs := r
	rs.ScheduledAt = &later
	streams := append(Scenario(),
		Stream{open, []domain.Event{
			requested(open, r, at(3*time.Hour)),
			domain.DeliveryPlanned{DeliveryID: webhook1, Channel: domain.ChannelWebhook, Address: r.Recipient.WebhookURL, PlannedAt: at(3 * time.Hour)},
			domain.DeliveryPlanned{DeliveryID: email1, Channel: domain.ChannelEmail, Address: r.Recipient.Email, PlannedAt: at(3 * time.Hour)},
			domain.DeliveryPlanned{DeliveryID: sms1, Channel: domain.ChannelSMS, Address: r.Recipient.Phone, PlannedAt: at(3 * time.Hour)},
			// webhook: in flight with a lease; email: failed, retry due;
			// sms: still planned.
			domain.DeliveryAttempted{DeliveryID: webhook1, Attempt: 1, AttemptedAt: at(3 * time.Hour), LeaseUntil: at(3*time.Hour + 15*time.Second)},
			domain.DeliveryAttempted{DeliveryID: email1, Attempt: 1, AttemptedAt: at(3 * time.Hour)},
			domain.DeliveryFailed{DeliveryID: email1, Attempt: 1, Reason: "451", Retryable: true, FailedAt: at(3 * time.Hour)},
			domain.DeliveryRetryScheduled{DeliveryID: email1, NextAttempt: 2, DueAt: at(3*time.Hour + time.Minute)},
		}},
		Stream{scheduled, []domain.Event{requested(scheduled, rs, at(4*time.Hour))}},
	)
	events := rec.RecordAll(streams...)
	ApplyAll(t, v, events)

	type row struct {
		id     domain.NotificationID
		d      domain.DeliveryID
		status domain.DeliveryStatus
		prio   domain.Priority
		due    time.Time
	}
	var got []row
	addresses := map[domain.DeliveryID]string{webhook1: r.Recipient.WebhookURL, email1: r.Recipient.Email, sms1: r.Recipient.Phone}
	pos, err := v.PendingDeliveries(ctx, func(p projections.PendingDelivery) error {
		got = append(got, row{p.NotificationID, p.DeliveryID, p.Status, p.Priority, p.DueAt.UTC()})
		if p.Address != addresses[p.DeliveryID] {
			t.Errorf("pending delivery %s: address %q, want %q", p.DeliveryID, p.Address, addresses[p.DeliveryID])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if pos != events[len(events)-1].Position {
		t.Errorf("pending deliveries at checkpoint %d, want %d", pos, events[len(events)-1].Position)
	}
	slices.SortFunc(got, func(a, b row) int { return compare(string(a.d), string(b.d)) })
	want := []row{
		{open, email1, domain.DeliveryStatusRetryScheduled, domain.PriorityHigh, at(3*time.Hour + time.Minute)},
		{open, sms1, domain.DeliveryStatusPlanned, domain.PriorityHigh, time.Time{}},
		{open, webhook1, domain.DeliveryStatusInFlight, domain.PriorityHigh, at(3*time.Hour + 15*time.Second)},
	}
	if len(got) != len(want) {
		t.Fatalf("pending deliveries = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.id != w.id || g.d != w.d || g.status != w.status || g.prio != w.prio || !g.due.Equal(w.due) {
			t.Errorf("pending delivery %d = %+v, want %+v", i, g, w)
		}
	}
	var due []time.Time
	if _, err := v.ScheduledNotifications(ctx, func(id domain.NotificationID, at time.Time) error {
		if id != scheduled {
			t.Errorf("scheduled notification %s, want only %s", id, scheduled)
		}
		due = append(due, at.UTC())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || !due[0].Equal(later) {
		t.Fatalf("scheduled releases = %v, want [%s]", due, later)
	}

	// The work settles: the rows leave.
	more := []eventstore.RecordedEvent{
		rec.Record(open, domain.DeliverySucceeded{DeliveryID: webhook1, Attempt: 1, Confirmed: true, SucceededAt: at(3*time.Hour + time.Second)}),
		rec.Record(open, domain.DeliveryAttempted{DeliveryID: email1, Attempt: 2, AttemptedAt: at(3*time.Hour + time.Minute)}),
		rec.Record(open, domain.DeliverySucceeded{DeliveryID: email1, Attempt: 2, SucceededAt: at(3*time.Hour + time.Minute)}),
		rec.Record(open, domain.NotificationCancelled{Reason: "enough", Actor: "test", CancelledAt: at(3*time.Hour + 2*time.Minute)}),
		rec.Record(scheduled, domain.DeliveryPlanned{DeliveryID: webhook1, Channel: domain.ChannelWebhook, Address: r.Recipient.WebhookURL, PlannedAt: later}),
	}
	ApplyAll(t, v, more)
	got = got[:0]
	if _, err := v.PendingDeliveries(ctx, func(p projections.PendingDelivery) error {
		got = append(got, row{p.NotificationID, p.DeliveryID, p.Status, p.Priority, p.DueAt})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// sms of the cancelled notification is still "planned" in the domain
	// (cancel stops attempts; the dispatcher skips it), and the released
	// notification's webhook is now owed.
	if len(got) != 2 || got[0].d == email1 || got[1].d == email1 {
		t.Fatalf("pending after settling = %+v", got)
	}
	n := 0
	if _, err := v.ScheduledNotifications(ctx, func(domain.NotificationID, time.Time) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("scheduled after release = %d, %v", n, err)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func testLease(t *testing.T, v BacklogViews) {
	ctx := context.Background()
	const ttl = 2 * time.Second
	if ok, err := v.AcquireLease(ctx, "projections", "A", ttl); !ok || err != nil {
		t.Fatalf("A first: %v %v", ok, err)
	}
	if ok, err := v.AcquireLease(ctx, "projections", "B", ttl); ok || err != nil {
		t.Fatalf("B while A holds it: %v %v, want refused", ok, err)
	}
	if ok, err := v.AcquireLease(ctx, "projections", "A", ttl); !ok || err != nil {
		t.Fatalf("A renewing: %v %v", ok, err)
	}
	if err := v.ReleaseLease(ctx, "projections", "A"); err != nil {
		t.Fatal(err)
	}
	if ok, err := v.AcquireLease(ctx, "projections", "B", ttl); !ok || err != nil {
		t.Fatalf("B after A released: %v %v", ok, err)
	}
	// B stops renewing (dies): A takes over once the lease expires.
	deadline := time.Now().Add(3 * ttl)
	for {
		ok, err := v.AcquireLease(ctx, "projections", "A", ttl)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("A never took over B's expired lease")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
