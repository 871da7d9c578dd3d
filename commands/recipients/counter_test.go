package recipients_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/recipients"
	"herald/domain"
	"herald/infra/eventstore"
)

// appendNotification appends events to notification n's stream as the
// notification commands would.
func appendNotification(t *testing.T, store eventstore.Store, n string, events ...domain.Event) {
	t.Helper()
	stream := domain.NotificationStream(domain.NotificationID(n))
	var data []eventstore.EventData
	for _, e := range events {
		typ, b, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: b})
	}
	if _, err := store.Append(t.Context(), stream, eventstore.Any, data...); err != nil {
		t.Fatal(err)
	}
}

func requested(n, recipient, category string, at time.Time) domain.Event {
	return domain.NotificationRequested{
		NotificationID: domain.NotificationID(n), RequestedAt: at,
		Request: domain.NotificationRequest{
			Recipient: domain.Recipient{ID: recipient, Email: "x@example.com"}, Content: &domain.Content{Body: "hi"},
			Priority: domain.PriorityNormal, Category: category,
		},
	}
}

func plannedAt(ch domain.Channel, at time.Time) domain.Event {
	return domain.DeliveryPlanned{DeliveryID: domain.NewDeliveryID(ch, 1), Channel: ch, Address: "x", PlannedAt: at}
}

func suppressedAt(ch domain.Channel, at time.Time) domain.Event {
	return domain.DeliverySuppressed{Channel: ch, Reason: "opted out of sms/*", SuppressedAt: at}
}

func TestSendCounterCountsPlannedNotifications(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	store := e.store
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

	// Two channels planned: one notification.
	appendNotification(t, store, "n1", requested("n1", "user-42", "promo", at(0)), plannedAt(domain.ChannelEmail, at(0)), plannedAt(domain.ChannelSMS, at(0)))
	// Every channel suppressed: not sent.
	appendNotification(t, store, "n2", requested("n2", "user-42", "promo", at(1)), suppressedAt(domain.ChannelSMS, at(1)))
	// Planned and partly suppressed: sent.
	appendNotification(t, store, "n3", requested("n3", "user-42", "promo", at(2)), plannedAt(domain.ChannelEmail, at(2)), suppressedAt(domain.ChannelSMS, at(2)))
	// Scheduled: requested now, planned later, counted when planned.
	appendNotification(t, store, "n4", requested("n4", "user-42", "news", at(3)))
	// Cancelled before planning: not sent.
	appendNotification(t, store, "n5", requested("n5", "user-42", "news", at(3)), domain.NotificationCancelled{Reason: "oops", CancelledAt: at(4)})
	// Another recipient, and one without an ID.
	appendNotification(t, store, "n6", requested("n6", "user-7", "promo", at(5)), plannedAt(domain.ChannelEmail, at(5)))
	appendNotification(t, store, "n7", requested("n7", "", "promo", at(5)), plannedAt(domain.ChannelEmail, at(5)))
	// A resend is not a new notification.
	appendNotification(t, store, "n1", domain.ResendRequested{Deliveries: []domain.ResendDelivery{
		{DeliveryID: "email-2", Repeats: "email-1", Channel: domain.ChannelEmail, Address: "x"},
	}, RequestedAt: at(6)})

	c, err := recipients.NewSendCounter(store, recipients.SendCounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	check := func(recipient, category string, since time.Time, want int) {
		t.Helper()
		if got := c.Count(recipient, category, since); got != want {
			t.Errorf("Count(%s, %s, %v) = %d, want %d", recipient, category, since, got, want)
		}
	}
	check("user-42", "promo", t0, 2)
	check("user-42", "promo", at(1), 1)
	check("user-42", "promo", at(2), 1) // since is inclusive
	check("user-42", "promo", at(2).Add(time.Nanosecond), 0)
	check("user-42", "news", t0, 0)
	check("user-42", domain.AnyCategory, t0, 2)
	check("user-7", "promo", t0, 1)
	check("", "promo", t0, 0)

	// The scheduled notification is planned later; Run picks it up live.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	appendNotification(t, store, "n4", plannedAt(domain.ChannelEmail, at(30)))
	waitFor(t, func() bool { return c.Count("user-42", "news", t0) == 1 })
	if c.Count("user-42", domain.AnyCategory, t0) != 3 {
		t.Errorf("any category: %d", c.Count("user-42", domain.AnyCategory, t0))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if c.Undecoded() != 0 {
		t.Errorf("undecoded %d", c.Undecoded())
	}
	// Catching up again changes nothing: each event counts once.
	if err := c.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	check("user-42", "promo", t0, 2)
}

func TestSendCounterForgetsBeyondRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, err := recipients.NewSendCounter(e.store, recipients.SendCounterOptions{Retention: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	appendNotification(t, e.store, "old", requested("old", "user-42", "promo", t0), plannedAt(domain.ChannelEmail, t0))
	if err := c.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := c.Count("user-42", "promo", t0.Add(-time.Hour)); n != 1 {
		t.Fatalf("count %d", n)
	}
	// A send 25 hours later moves the window past the first one.
	later := t0.Add(25 * time.Hour)
	appendNotification(t, e.store, "new", requested("new", "user-42", "promo", later), plannedAt(domain.ChannelEmail, later))
	if err := c.CatchUp(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := c.Count("user-42", "promo", t0.Add(-time.Hour)); n != 1 {
		t.Errorf("count %d after the first send left the retention", n)
	}
	if _, err := recipients.NewSendCounter(nil, recipients.SendCounterOptions{}); err == nil {
		t.Error("nil store accepted")
	}
}

// The counter feeds the planning policy: the third promo of the local day
// is suppressed by a cap of two.
func TestSendCounterDrivesFrequencyCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	if res := e.do("PUT", "/v1/recipients/user-42", `{"email":"ada@example.com","time_zone":"Europe/Berlin"}`); res.status != 201 {
		t.Fatalf("profile: %d %s", res.status, res.body)
	}
	if res := e.do("PUT", "/v1/recipients/user-42/preferences", `{"frequency_caps":[{"category":"promo","max":2,"window":"day"}]}`); res.status != 200 {
		t.Fatalf("preferences: %d %s", res.status, res.body)
	}
	c, err := recipients.NewSendCounter(e.store, recipients.SendCounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Date(2026, 12, 1, 20, 0, 0, 0, berlin)
	// 23:30 UTC the day before is 00:30 in Berlin: today. 22:30 UTC is
	// 23:30 in Berlin: yesterday.
	appendNotification(t, e.store, "y", requested("y", "user-42", "promo", now), plannedAt(domain.ChannelEmail, time.Date(2026, 11, 30, 22, 30, 0, 0, time.UTC)))
	appendNotification(t, e.store, "a", requested("a", "user-42", "promo", now), plannedAt(domain.ChannelEmail, time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)))

	plan := func() domain.PlanDecision {
		t.Helper()
		if err := c.CatchUp(t.Context()); err != nil {
			t.Fatal(err)
		}
		prof, _, err := e.svc.Profile(t.Context(), "user-42")
		if err != nil {
			t.Fatal(err)
		}
		req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-42"}, Channels: []domain.Channel{domain.ChannelEmail}, Category: "promo"}
		return domain.PlanForRecipient(req, prof, now, c.SentInWindow("user-42"))
	}
	if d := plan(); len(d.Plans) != 1 {
		t.Fatalf("second of the day: %+v", d)
	}
	appendNotification(t, e.store, "b", requested("b", "user-42", "promo", now), plannedAt(domain.ChannelEmail, now.Add(-time.Hour)))
	d := plan()
	if len(d.Plans) != 0 || len(d.Suppressions) != 1 || d.Suppressions[0].Reason != "frequency cap: promo at most 2 per day" {
		t.Errorf("third of the day: %+v", d)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		select {
		case <-t.Context().Done():
			t.Fatal(errors.New("test context ended"))
		case <-time.After(5 * time.Millisecond):
		}
	}
}
