package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"herald/domain"
)

// Sends to a protected group wait for an admin over real HTTP: a key
// without the admin scope cannot decide, a rejection needs a reason and
// names who rejected, a rejected batch notifies no one, and an approved
// one notifies every member once. The batch's events in the log name the
// actors.
func TestGroupSendApprovalAndRejection(t *testing.T) {
	dir := t.TempDir()
	base, stop := startTestServer(t, serveArgs(dir, "app:"+testSendKey+":send+read", "ops:"+testAdminKey+":send+read+admin"))
	app := func(method, path, body string) answer { return do(t, method, base+path, testSendKey, body) }
	ops := func(method, path, body string) answer { return do(t, method, base+path, testAdminKey, body) }

	if a := app("POST", "/v1/groups", `{"id":"board","name":"Board","protected":true}`); a.code != http.StatusCreated {
		t.Fatalf("create group = %d %s", a.code, a.raw)
	}
	if a := app("POST", "/v1/groups/board/members", `{"add":["ada","grace","edsger"]}`); a.code != http.StatusOK {
		t.Fatalf("add members = %d %s", a.code, a.raw)
	}
	send := func(body string) string {
		t.Helper()
		a := app("POST", "/v1/groups/board/send", `{"channels":["inapp"],"content":{"subject":"Minutes","body":"`+body+`"}}`)
		if a.code != http.StatusAccepted || a.body["status"] != "awaiting_approval" {
			t.Fatalf("send to a protected group = %d %s, want 202 awaiting_approval", a.code, a.raw)
		}
		return a.body["id"].(string)
	}
	rejected, approved := send("draft"), send("final")

	// Deciding takes the admin scope; a rejection takes a reason.
	if a := app("POST", "/v1/batches/"+rejected+"/reject", `{"reason":"not yet"}`); a.code != http.StatusForbidden || a.ct != "application/problem+json" {
		t.Fatalf("reject with a send key = %d %s, want a 403 problem", a.code, a.raw)
	}
	if a := app("POST", "/v1/batches/"+approved+"/approve", `{"reason":"ok"}`); a.code != http.StatusForbidden {
		t.Fatalf("approve with a send key = %d %s, want 403", a.code, a.raw)
	}
	if a := ops("POST", "/v1/batches/"+rejected+"/reject", `{}`); a.code != http.StatusUnprocessableEntity || a.ct != "application/problem+json" {
		t.Fatalf("reject without a reason = %d %s, want a 422 problem", a.code, a.raw)
	}
	if a := ops("POST", "/v1/batches/"+rejected+"/reject", `{"reason":"draft sent by mistake"}`); a.code != http.StatusOK || a.body["status"] != "rejected" {
		t.Fatalf("reject = %d %s", a.code, a.raw)
	}
	if a := ops("POST", "/v1/batches/"+rejected+"/approve", `{"reason":"changed my mind"}`); a.code/100 == 2 {
		t.Fatalf("approve after a rejection = %d %s, want a refusal", a.code, a.raw)
	}
	if a := ops("POST", "/v1/batches/"+approved+"/approve", `{"reason":"minutes are final"}`); a.code != http.StatusOK {
		t.Fatalf("approve = %d %s", a.code, a.raw)
	}
	waitUntil(t, 20*time.Second, "the approved batch completed", func() bool {
		return app("GET", "/v1/batches/"+approved, "").body["status"] == "completed"
	})
	a := app("GET", "/v1/batches/"+rejected, "")
	dec, _ := a.body["decision"].(map[string]any)
	if a.body["status"] != "rejected" || dec["outcome"] != "rejected" || dec["actor"] != "ops" || dec["reason"] != "draft sent by mistake" {
		t.Fatalf("rejected batch = %s", a.raw)
	}
	if p := a.body["progress"].(map[string]any); p["done"] != float64(0) {
		t.Fatalf("rejected batch progress = %v, want nothing done", p)
	}
	a = app("GET", "/v1/batches/"+approved, "")
	if dec, _ := a.body["decision"].(map[string]any); dec["outcome"] != "approved" || dec["actor"] != "ops" {
		t.Fatalf("approved batch = %s", a.raw)
	}
	stop()

	// Straight from the log: the members were notified once each, by the
	// approved batch only, and the decisions name their actor.
	perBatch := map[string]map[string]int{}
	decisions := map[string]string{} // batch → "type by actor"
	for _, r := range logEvents(t, dir) {
		switch r.Type {
		case domain.TypeNotificationRequested:
			e, err := domain.UnmarshalEvent(r.Type, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			req := e.(domain.NotificationRequested).Request
			if perBatch[req.BatchID] == nil {
				perBatch[req.BatchID] = map[string]int{}
			}
			perBatch[req.BatchID][req.Recipient.ID]++
		case domain.TypeBatchApproved, domain.TypeBatchRejected:
			decisions[r.Stream] = fmt.Sprintf("%s by %s", r.Type, r.Metadata.Actor)
		}
	}
	if n := len(perBatch[rejected]); n != 0 {
		t.Errorf("the rejected batch notified %d members", n)
	}
	if got := perBatch[approved]; len(got) != 3 || got["ada"] != 1 || got["grace"] != 1 || got["edsger"] != 1 {
		t.Errorf("the approved batch notified %v, want ada, grace and edsger once each", got)
	}
	if d := decisions[domain.BatchStream(domain.BatchID(rejected))]; d != domain.TypeBatchRejected+" by ops" {
		t.Errorf("rejection in the log: %q", d)
	}
	if d := decisions[domain.BatchStream(domain.BatchID(approved))]; d != domain.TypeBatchApproved+" by ops" {
		t.Errorf("approval in the log: %q", d)
	}
}
