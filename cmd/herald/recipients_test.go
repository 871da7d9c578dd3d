package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// events returns the audit trail's event types and data, oldest first.
func (c client) events(id string) (types []string, data []map[string]any) {
	c.t.Helper()
	code, m := c.do("GET", "/v1/notifications/"+id+"/events", nil)
	if code != http.StatusOK {
		c.t.Fatalf("events of %s = %d %v", id, code, m)
	}
	for _, e := range m["events"].([]any) {
		e := e.(map[string]any)
		types = append(types, e["type"].(string))
		data = append(data, e["data"].(map[string]any))
	}
	return types, data
}

// Preferences decide planning, and the audit trail says why: an opt-out
// suppresses a channel, a frequency cap the send over it, quiet hours hold
// a normal-priority send (a critical high-priority one goes through).
func TestRecipientPreferencesInTheAuditTrail(t *testing.T) {
	sink := newWebhookSink(t)
	c := deliveryServer(t)
	profile := map[string]any{"email": "ada@example.com", "webhook_url": sink.URL + "/hook", "time_zone": "Europe/Berlin"}
	if code, m := c.do("PUT", "/v1/recipients/ada", profile); code/100 != 2 {
		t.Fatalf("profile = %d %v", code, m)
	}
	// Quiet hours around now, in Berlin.
	berlin, _ := time.LoadLocation("Europe/Berlin")
	now := time.Now().In(berlin)
	prefs := map[string]any{
		"opt_outs":            []map[string]any{{"channel": "email"}},
		"frequency_caps":      []map[string]any{{"category": "promo", "max": 2, "window": "day"}},
		"critical_categories": []string{"security"},
	}
	if code, m := c.do("PUT", "/v1/recipients/ada/preferences", prefs); code/100 != 2 {
		t.Fatalf("preferences = %d %v", code, m)
	}
	send := func(category, priority string) string {
		code, m := c.do("POST", "/v1/notifications", map[string]any{
			"recipient": map[string]any{"id": "ada"}, "channels": []string{"webhook", "email"},
			"content": map[string]any{"body": "hi"}, "category": category, "priority": priority,
		})
		if code != http.StatusAccepted {
			t.Fatalf("send = %d %v", code, m)
		}
		return m["id"].(string)
	}
	delivered := func(id string) {
		waitUntil(t, 15*time.Second, id+" settled", func() bool {
			st, _ := c.status(id)
			return st == "delivered" || st == "partially_delivered"
		})
	}

	// Opt-out: the webhook (address from the profile) goes, email does not.
	first := send("promo", "normal")
	delivered(first)
	types, data := c.events(first)
	if types[1] != "PolicyApplied" {
		t.Fatalf("events %v: the policy record must come before the plans", types)
	}
	var suppressed string
	for i, typ := range types {
		if typ == "DeliverySuppressed" {
			suppressed = fmt.Sprint(data[i]["reason"])
		}
	}
	if !strings.Contains(suppressed, "opted out of email") {
		t.Fatalf("email suppression reason %q (events %v)", suppressed, types)
	}

	// Frequency cap: at most 2 promo a day; the counter follows the log,
	// so each send is counted before the next.
	second := send("promo", "normal")
	delivered(second)
	third := send("promo", "normal")
	waitUntil(t, 15*time.Second, "the capped send settled", func() bool {
		st, _ := c.status(third)
		return st == "failed"
	})
	types, data = c.events(third)
	capped := 0
	for i, typ := range types {
		if typ == "DeliverySuppressed" && strings.Contains(fmt.Sprint(data[i]["reason"]), "frequency cap") {
			capped++
		}
	}
	if capped == 0 {
		t.Fatalf("third promo: events %v %v, want a frequency-cap suppression", types, data)
	}

	// Quiet hours now: a normal send is held (an event), a critical high
	// one is not.
	prefs["quiet_hours"] = map[string]any{
		"start": now.Add(-time.Hour).Format("15:04"), "end": now.Add(2 * time.Hour).Format("15:04"),
	}
	if code, m := c.do("PUT", "/v1/recipients/ada/preferences", prefs); code/100 != 2 {
		t.Fatalf("preferences = %d %v", code, m)
	}
	held := send("news", "normal")
	types, data = c.events(held)
	if types[len(types)-1] != "NotificationHeld" || data[len(data)-1]["reason"] != "quiet hours" {
		t.Fatalf("normal send in quiet hours: events %v", types)
	}
	waitUntil(t, 10*time.Second, "the held notification's view", func() bool {
		st, _ := c.status(held) // "" until the view has it
		return st == "scheduled"
	})
	urgent := send("security", "high")
	delivered(urgent)
	if _, total, _ := sink.counts(); total != 3 {
		t.Fatalf("sink got %d calls, want 3 (two promos and the critical one)", total)
	}
}
