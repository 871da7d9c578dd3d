package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// eventually polls f until it returns nil or the deadline passes: views are
// eventually consistent with the log.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

func ids(items any) []string {
	var out []string
	list, _ := items.([]any)
	for _, it := range list {
		if m, ok := it.(map[string]any); ok {
			out = append(out, fmt.Sprint(m["id"]))
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestEndToEnd drives a real server over HTTP: send, status, audit trail,
// search, analytics, a rebuild, and idempotency across a restart.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	base := startServe(t, data)

	a := do(t, "POST", base+"/v1/notifications", testSendKey,
		`{"recipient":{"id":"user-1","email":"ada@example.com","webhook_url":"https://hooks.example.com/1"},"channels":["email","webhook"],`+
			`"content":{"subject":"Code","body":"123456"},"priority":"high","category":"security","metadata":{"order":"A-17"}}`)
	if a.code != 202 {
		t.Fatalf("send 1: %d %s", a.code, a.raw)
	}
	high := a.body["id"].(string)
	a = do(t, "POST", base+"/v1/notifications", testSendKey,
		`{"recipient":{"id":"user-2","phone":"+15551234567"},"channels":["sms"],"content":{"body":"Sale"},"priority":"low","category":"marketing"}`)
	if a.code != 202 {
		t.Fatalf("send 2: %d %s", a.code, a.raw)
	}
	low := a.body["id"].(string)

	// Status, from the projection.
	eventually(t, "status of the high-priority notification", func() error {
		a := do(t, "GET", base+"/v1/notifications/"+high, testAdminKey, "")
		if a.code != 200 {
			return fmt.Errorf("%d %s", a.code, a.raw)
		}
		if a.body["status"] != "in_progress" || a.body["priority"] != "high" {
			return fmt.Errorf("status %v priority %v", a.body["status"], a.body["priority"])
		}
		ds, _ := a.body["deliveries"].([]any)
		if len(ds) != 2 {
			return fmt.Errorf("deliveries %v", a.body["deliveries"])
		}
		return nil
	})
	// The send scope alone may not read.
	if a := do(t, "GET", base+"/v1/notifications/"+high, testSendKey, ""); a.code != 403 {
		t.Fatalf("read with a send-only key: %d", a.code)
	}

	// Audit trail, straight from the log.
	a = do(t, "GET", base+"/v1/notifications/"+high+"/events", testAdminKey, "")
	evs, _ := a.body["events"].([]any)
	if a.code != 200 || len(evs) != 3 {
		t.Fatalf("events: %d %s", a.code, a.raw)
	}
	var types []string
	for _, e := range evs {
		m := e.(map[string]any)
		types = append(types, m["type"].(string))
		if m["actor"] != "app" {
			t.Errorf("event %v has actor %v, want the key name app", m["type"], m["actor"])
		}
	}
	if strings.Join(types, ",") != "NotificationRequested,DeliveryPlanned,DeliveryPlanned" {
		t.Fatalf("audit trail types %v", types)
	}

	// Search by priority, channel and category.
	for _, c := range []struct{ query, want, notWant string }{
		{"priority=high", high, low},
		{"channel=sms", low, high},
		{"category=marketing", low, high},
		{"recipient=user-1", high, low},
	} {
		eventually(t, "search "+c.query, func() error {
			a := do(t, "GET", base+"/v1/notifications?"+c.query, testAdminKey, "")
			got := ids(a.body["items"])
			if a.code != 200 || !contains(got, c.want) || contains(got, c.notWant) {
				return fmt.Errorf("%d %v", a.code, got)
			}
			return nil
		})
	}
	if a := do(t, "GET", base+"/v1/notifications?priority=urgent", testAdminKey, ""); a.code != 400 {
		t.Fatalf("search with a bad priority: %d %s", a.code, a.raw)
	}

	// Analytics: three planned deliveries in this minute.
	eventually(t, "analytics", func() error {
		a := do(t, "GET", base+"/v1/analytics/deliveries?bucket=minute&group_by=channel", testAdminKey, "")
		if a.code != 200 {
			return fmt.Errorf("%d %s", a.code, a.raw)
		}
		var total float64
		rows, _ := a.body["buckets"].([]any)
		for _, r := range rows {
			total += r.(map[string]any)["count"].(float64)
		}
		if total < 3 {
			return fmt.Errorf("counted %v deliveries: %s", total, a.raw)
		}
		return nil
	})

	// Rebuild a projection from zero while serving.
	if a := do(t, "POST", base+"/v1/admin/projections/notifications/rebuild", testSendKey, ""); a.code != 403 {
		t.Fatalf("rebuild with a send-only key: %d", a.code)
	}
	a = do(t, "POST", base+"/v1/admin/projections/notifications/rebuild", testAdminKey, "")
	if a.code/100 != 2 {
		t.Fatalf("rebuild: %d %s", a.code, a.raw)
	}
	eventually(t, "rebuild finished", func() error {
		a := do(t, "GET", base+"/v1/admin/projections", testAdminKey, "")
		if !strings.Contains(a.raw, `"rebuilds":1`) {
			return fmt.Errorf("%s", a.raw)
		}
		return nil
	})
	if a := do(t, "GET", base+"/v1/notifications/"+low, testAdminKey, ""); a.code != 200 || a.body["status"] != "in_progress" {
		t.Fatalf("status after rebuild: %d %s", a.code, a.raw)
	}
}

func TestIdempotencyAcrossRestart(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	body := `{"recipient":{"email":"ada@example.com"},"content":{"body":"once"}}`
	args := serveArgs(data, "app:"+testSendKey+":send")
	base, stop, err := startInProcess(context.Background(), args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a := doKey(t, "POST", base+"/v1/notifications", testSendKey, body, "order-17")
	if a.code != 202 {
		t.Fatalf("first: %d %s", a.code, a.raw)
	}
	id := a.body["id"]
	if err := stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}

	base, stop, err = startInProcess(context.Background(), args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := stop(); err != nil {
			t.Errorf("second server: %v", err)
		}
	}()
	a = doKey(t, "POST", base+"/v1/notifications", testSendKey, body, "order-17")
	if a.code != 200 || a.body["id"] != id {
		t.Fatalf("repeat after restart: %d %s, want 200 with id %v", a.code, a.raw, id)
	}
	a = doKey(t, "POST", base+"/v1/notifications", testSendKey, `{"recipient":{"email":"ada@example.com"},"content":{"body":"other"}}`, "order-17")
	if a.code != 409 || a.body["type"] != "https://herald.dev/problems/idempotency-conflict" {
		t.Fatalf("same key, other body: %d %s", a.code, a.raw)
	}
}
