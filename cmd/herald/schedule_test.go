package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"herald/domain"
)

// A scheduled send waits durably, is released at its time (never early),
// after a restart too, and can be cancelled before.
func TestScheduledSendSurvivesRestart(t *testing.T) {
	sink := newWebhookSink(t)
	dir := t.TempDir()
	base, stop, err := startInProcess(context.Background(), deliveryArgs(dir), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := client{t: t, base: base, http: http.DefaultClient}
	at := time.Now().Add(2 * time.Second).UTC().Truncate(time.Millisecond)
	send := func() string {
		code, m := c.do("POST", "/v1/notifications", map[string]any{
			"recipient":    map[string]any{"id": "user-1", "webhook_url": sink.URL + "/hook"},
			"channels":     []string{"webhook"},
			"content":      map[string]any{"body": "later"},
			"scheduled_at": at.Format(time.RFC3339Nano),
		})
		if code != http.StatusAccepted || m["status"] != "scheduled" {
			t.Fatalf("scheduled send = %d %v", code, m)
		}
		return m["id"].(string)
	}
	kept, dropped := send(), send()
	if code, m := c.do("POST", "/v1/notifications/"+dropped+"/cancel", map[string]any{"reason": "not needed"}); code != http.StatusOK {
		t.Fatalf("cancel = %d %v", code, m)
	}
	// Restart before the due time: the schedule is in the log, not in memory.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	base, stop, err = startInProcess(context.Background(), deliveryArgs(dir), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c.base = base
	waitUntil(t, 20*time.Second, "the scheduled notification delivered", func() bool {
		st, _ := c.status(kept)
		return st == "delivered"
	})
	_, m := c.do("GET", "/v1/notifications/"+kept+"/events", nil)
	var planned time.Time
	for _, e := range m["events"].([]any) {
		e := e.(map[string]any)
		if e["type"] == "DeliveryPlanned" {
			planned, _ = time.Parse(time.RFC3339Nano, e["data"].(map[string]any)["planned_at"].(string))
		}
	}
	if planned.Before(at) {
		t.Fatalf("planned at %s, before its scheduled_at %s", planned, at)
	}
	t.Logf("released %s after scheduled_at, across a restart", planned.Sub(at))
	if u, _, _ := sink.counts(); u != 1 {
		t.Fatalf("sink got %d deliveries, want 1 (the cancelled one must not go)", u)
	}
	if st, _ := c.status(dropped); st != "cancelled" {
		t.Fatalf("cancelled notification status %s", st)
	}
}

// A recurring schedule created over HTTP fires on time, and a server
// SIGKILLed at the very moment a firing is due and restarted fires it once,
// not twice (nor never); the next firing, due while the restarted server
// runs, comes within a second of its time.
func TestRecurringScheduleAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a firing a minute apart: skipped with -short")
	}
	dir := t.TempDir()
	p := startRole(t, "serve", dir, "--deliver=false")
	c := client{t: t, base: p.base, http: http.DefaultClient}
	first := time.Now().Add(3 * time.Second).UTC().Truncate(time.Second)
	code, m := c.do("POST", "/v1/schedules", map[string]any{
		"id": "standup", "every": "1m", "time_zone": "Europe/Berlin", "start_at": first.Format(time.RFC3339),
		"request": map[string]any{
			"recipient": map[string]any{"id": "team"}, "channels": []string{"inapp"},
			"content": map[string]any{"subject": "Standup", "body": "Now"},
		},
	})
	if code != http.StatusCreated {
		t.Fatalf("create schedule = %d %v", code, m)
	}
	time.Sleep(time.Until(first))
	p.kill(t) // at the due moment: the firing may or may not be recorded yet
	killed := time.Now()
	p = startRole(t, "serve", dir, "--deliver=false")
	c.base = p.base
	t.Logf("restarted in %s", time.Since(killed).Round(time.Millisecond))
	firings := func() float64 {
		code, m := c.do("GET", "/v1/schedules/standup", nil)
		if code != http.StatusOK {
			t.Fatalf("get schedule = %d %v", code, m)
		}
		return m["firings"].(float64)
	}
	waitUntil(t, 20*time.Second, "the first firing after the restart", func() bool { return firings() >= 1 })
	second := first.Add(time.Minute)
	waitUntil(t, time.Until(second)+20*time.Second, "the second firing", func() bool { return firings() >= 2 })
	p.kill(t)

	// From the log: one ScheduleFired per due time, one notification per
	// firing (by its firing key).
	fired := map[time.Time][]time.Time{} // due time → when recorded
	notified := map[string]int{}         // idempotency key → notifications
	for _, r := range logEvents(t, dir) {
		switch r.Type {
		case domain.TypeScheduleFired, domain.TypeNotificationRequested:
		default:
			continue
		}
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch e := e.(type) {
		case domain.ScheduleFired:
			fired[e.FiringTime.UTC()] = append(fired[e.FiringTime.UTC()], e.FiredAt)
		case domain.NotificationRequested:
			notified[e.IdempotencyKey]++
		}
	}
	if len(fired) != 2 || len(fired[first]) != 1 || len(fired[second]) != 1 {
		t.Fatalf("firings recorded: %v; want %s and %s once each", fired, first, second)
	}
	for _, at := range []time.Time{first, second} {
		if n := notified[domain.ScheduleFiringKey("standup", at)]; n != 1 {
			t.Errorf("firing %s sent %d notifications, want 1", at, n)
		}
	}
	// The restarted server takes over the schedule lease of the killed one
	// at once (same host, pid gone) rather than after its expiry.
	if l := fired[first][0].Sub(first); l < 0 || l > 2*time.Second {
		t.Errorf("first firing recorded %s after its due time across the kill, want at most 2s (and never early)", l)
	}
	late := fired[second][0].Sub(second)
	if late < 0 || late > time.Second {
		t.Errorf("second firing recorded %s after its due time, want within 1s (and never early)", late)
	}
	t.Logf("first firing (killed at its due time) recorded %s late, after the restart; second %s late", fired[first][0].Sub(first), late)
}
