package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"herald/domain"
)

// importMembers posts a CSV of members to a group.
func (c client) importMembers(group string, csv string) map[string]any {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.base+"/v1/groups/"+group+"/members/import", strings.NewReader(csv))
	req.Header.Set("Authorization", "Bearer "+testSendKey)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode/100 != 2 {
		c.t.Fatalf("import = %d %v", resp.StatusCode, m)
	}
	return m
}

// A 100,000-member group send waits for approval, is approved, and its
// fan-out is SIGKILLed midway; after a restart it completes with every
// member notified exactly once.
func TestGroupFanOutSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 members and a process kill: skipped with -short")
	}
	const members = 100000
	dir := t.TempDir()
	extra := []string{"--deliver=false"} // this test is about creating the notifications
	started := time.Now()
	p := startRole(t, "serve", dir, extra...)
	c := client{t: t, base: p.base, http: http.DefaultClient}
	if code, m := c.do("POST", "/v1/groups", map[string]any{"id": "everyone", "name": "Everyone"}); code != http.StatusCreated {
		t.Fatalf("create group = %d %v", code, m)
	}
	var csv bytes.Buffer
	csv.WriteString("recipient_id\n")
	for i := range members {
		fmt.Fprintf(&csv, "member-%06d\n", i)
	}
	csv.WriteString("not a valid id!\n") // reported by line, the rest applied
	rep := c.importMembers("everyone", csv.String())
	if rep["added"] != float64(members) || rep["rejected"] != float64(1) {
		t.Fatalf("import report: %v", rep)
	}
	code, m := c.do("POST", "/v1/groups/everyone/send", map[string]any{
		"channels": []string{"inapp"}, "content": map[string]any{"subject": "News", "body": "For everyone"},
	})
	if code != http.StatusAccepted || m["status"] != "awaiting_approval" {
		t.Fatalf("group send = %d %v, want awaiting_approval above the threshold", code, m)
	}
	batch := m["id"].(string)
	t.Logf("group of %d imported, send awaiting approval (%s)", members, time.Since(started).Round(time.Millisecond))
	if code, m := c.do("POST", "/v1/batches/"+batch+"/approve", map[string]any{"reason": "monthly news"}); code != http.StatusOK {
		t.Fatalf("approve = %d %v", code, m)
	}
	approved := time.Now()
	progress := func() (done float64, status string) {
		code, m := c.do("GET", "/v1/batches/"+batch, nil)
		if code != http.StatusOK {
			return 0, ""
		}
		return m["progress"].(map[string]any)["done"].(float64), m["status"].(string)
	}
	waitUntil(t, 120*time.Second, "the fan-out under way", func() bool { d, _ := progress(); return d >= 10000 })
	p.kill(t)
	killedAt := fanOutDone(t, dir)
	t.Logf("killed at %d of %d members (%s after approval)", killedAt, members, time.Since(approved).Round(time.Millisecond))

	p = startRole(t, "serve", dir, extra...)
	c.base = p.base
	waitUntil(t, 180*time.Second, "the fan-out completed", func() bool { _, st := progress(); return st == "completed" })
	done, _ := progress()
	t.Logf("completed after the restart (%s after approval in all)", time.Since(approved).Round(time.Millisecond))
	if done != members {
		t.Fatalf("batch reports %v done, want %d", done, members)
	}
	p.kill(t) // the log is read directly below

	// Every member exactly once: count the notifications of the batch by
	// recipient straight from the log.
	per := map[string]int{}
	for _, r := range logEvents(t, dir) {
		if r.Type != domain.TypeNotificationRequested {
			continue
		}
		e, err := domain.UnmarshalEvent(r.Type, r.Data)
		if err != nil {
			t.Fatal(err)
		}
		req := e.(domain.NotificationRequested).Request
		if req.BatchID == batch {
			per[req.Recipient.ID]++
		}
	}
	if len(per) != members {
		t.Fatalf("%d members notified, want %d", len(per), members)
	}
	for id, n := range per {
		if n != 1 {
			t.Fatalf("%s notified %d times", id, n)
		}
	}
}

// fanOutDone reads a batch's fan-out cursor from the log (the server is
// down): the last FanOutProgressed's done count.
func fanOutDone(t *testing.T, dir string) int {
	t.Helper()
	done := 0
	for _, r := range logEvents(t, dir) {
		if r.Type == domain.TypeFanOutProgressed {
			var v struct {
				Done int `json:"done"`
			}
			if json.Unmarshal(r.Data, &v) == nil && v.Done > done {
				done = v.Done
			}
		}
	}
	return done
}
