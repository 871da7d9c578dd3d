package main

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"
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
