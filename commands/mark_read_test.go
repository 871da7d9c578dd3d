package commands_test

import (
	"fmt"
	"net/http"
	"testing"

	"herald/domain"
)

func TestMarkReadInApp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.postJSON(t, "/v1/notifications", `{"recipient":{"id":"user-7"},"channels":["inapp"],"content":{"body":"hello"}}`)
	mustStatus(t, r, http.StatusAccepted)
	id := r.Body["id"].(string)
	readPath := "/v1/recipients/user-7/inbox/" + id + "/read"

	// Not delivered yet: the read cannot be recorded.
	mustProblem(t, e.postJSON(t, readPath, ``), http.StatusConflict, "conflict")

	inapp := domain.NewDeliveryID(domain.ChannelInApp, 1)
	e.advance(t, id,
		domain.RecordAttempt{DeliveryID: inapp, Now: testNow},
		domain.RecordSuccess{DeliveryID: inapp, Confirmed: true, Now: testNow})

	r = e.postJSON(t, readPath, ``)
	mustStatus(t, r, http.StatusOK)
	if r.Body["changed"] != true || r.Body["delivery_id"] != string(inapp) {
		t.Fatalf("first read: %s", r.Raw)
	}
	r = e.postJSON(t, readPath, ``)
	mustStatus(t, r, http.StatusOK)
	if r.Body["changed"] != false {
		t.Fatalf("second read must change nothing: %s", r.Raw)
	}
	types := e.eventTypes(t, id)
	if got := types[len(types)-1]; got != domain.TypeNotificationRead {
		t.Fatalf("last event %s, want NotificationRead; all: %v", got, types)
	}
	count := 0
	for _, typ := range types {
		if typ == domain.TypeNotificationRead {
			count++
		}
	}
	if count != 1 {
		t.Fatalf("%d NotificationRead events, want 1", count)
	}

	// Another recipient cannot read (or learn about) this item.
	mustProblem(t, e.postJSON(t, "/v1/recipients/user-8/inbox/"+id+"/read", ``), http.StatusNotFound, "not-found")
	// A notification of the same recipient without an in-app delivery.
	r = e.postJSON(t, "/v1/notifications", `{"recipient":{"id":"user-7","email":"ada@example.com"},"channels":["email"],"content":{"body":"hi"}}`)
	mustStatus(t, r, http.StatusAccepted)
	mustProblem(t, e.postJSON(t, "/v1/recipients/user-7/inbox/"+r.Body["id"].(string)+"/read", ``), http.StatusConflict, "conflict")
}

// Reading a notification reads every in-app item of it the inbox shows: a
// resend adds one next to the first.
func TestMarkReadReadsEveryInAppItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.postJSON(t, "/v1/notifications", `{"recipient":{"id":"user-7"},"channels":["inapp"],"content":{"body":"hello"}}`)
	mustStatus(t, r, http.StatusAccepted)
	id := r.Body["id"].(string)
	first, second := domain.NewDeliveryID(domain.ChannelInApp, 1), domain.NewDeliveryID(domain.ChannelInApp, 2)
	e.advance(t, id,
		domain.RecordAttempt{DeliveryID: first, Now: testNow},
		domain.RecordSuccess{DeliveryID: first, Confirmed: true, Now: testNow},
		domain.RequestResend{Actor: "ops", Reason: "again", Now: testNow})
	readPath := "/v1/recipients/user-7/inbox/" + id + "/read"
	// The resend is not delivered yet: the first item is read.
	r = e.postJSON(t, readPath, ``)
	mustStatus(t, r, http.StatusOK)
	if r.Body["changed"] != true {
		t.Fatalf("read with the resend in flight: %s", r.Raw)
	}
	e.advance(t, id,
		domain.RecordAttempt{DeliveryID: second, Now: testNow},
		domain.RecordSuccess{DeliveryID: second, Confirmed: true, Now: testNow})
	r = e.postJSON(t, readPath, ``)
	mustStatus(t, r, http.StatusOK)
	if r.Body["changed"] != true || r.Body["delivery_id"] != string(second) {
		t.Fatalf("read after the resend arrived: %s", r.Raw)
	}
	mustStatus(t, e.postJSON(t, readPath, ``), http.StatusOK)
	var read []string
	for _, rec := range e.events(t, id) {
		if rec.Type == domain.TypeNotificationRead {
			ev, err := domain.UnmarshalEvent(rec.Type, rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			read = append(read, string(ev.(domain.NotificationRead).DeliveryID))
		}
	}
	if len(read) != 2 || read[0] != string(first) || read[1] != string(second) {
		t.Fatalf("reads recorded for %v, want [%s %s] once each", read, first, second)
	}
}

// A resend with an Idempotency-Key is made once: a repeat by the same key
// holder answers 200 with the original deliveries and appends nothing, even
// once the resend is delivered; the same key asking for something else is
// a 409; another key holder's key is its own.
func TestResendIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.postJSON(t, "/v1/notifications", `{"recipient":{"id":"user-7","email":"ada@example.com"},"channels":["email","inapp"],"content":{"body":"hello"}}`)
	mustStatus(t, r, http.StatusAccepted)
	id := r.Body["id"].(string)
	email, inapp := domain.NewDeliveryID(domain.ChannelEmail, 1), domain.NewDeliveryID(domain.ChannelInApp, 1)
	e.advance(t, id,
		domain.RecordAttempt{DeliveryID: email, Now: testNow}, domain.RecordSuccess{DeliveryID: email, Now: testNow},
		domain.RecordAttempt{DeliveryID: inapp, Now: testNow}, domain.RecordSuccess{DeliveryID: inapp, Confirmed: true, Now: testNow})
	path := "/v1/notifications/" + id + "/resend"
	body := `{"channels":["email"],"reason":"bounced"}`
	first := e.postJSON(t, path, body, "Idempotency-Key", "rs-1")
	mustStatus(t, first, http.StatusAccepted)
	again := e.postJSON(t, path, body, "Idempotency-Key", "rs-1")
	mustStatus(t, again, http.StatusOK)
	if fmt.Sprint(again.Body["deliveries"]) != fmt.Sprint(first.Body["deliveries"]) {
		t.Fatalf("repeat answered %v, want the original %v", again.Body["deliveries"], first.Body["deliveries"])
	}
	second := domain.NewDeliveryID(domain.ChannelEmail, 2)
	e.advance(t, id, domain.RecordAttempt{DeliveryID: second, Now: testNow}, domain.RecordSuccess{DeliveryID: second, Now: testNow})
	mustStatus(t, e.postJSON(t, path, body, "Idempotency-Key", "rs-1"), http.StatusOK)
	mustProblem(t, e.postJSON(t, path, `{"channels":["email"],"reason":"other"}`, "Idempotency-Key", "rs-1"), http.StatusConflict, "idempotency-conflict")
	mustProblem(t, e.postJSON(t, path, `{"reason":"bounced"}`, "Idempotency-Key", "rs-1"), http.StatusConflict, "idempotency-conflict")
	mustStatus(t, e.postJSON(t, path, body, "Idempotency-Key", "rs-1", "X-Test-Key", "support"), http.StatusAccepted)
	resends := 0
	for _, typ := range e.eventTypes(t, id) {
		if typ == domain.TypeResendRequested {
			resends++
		}
	}
	if resends != 2 {
		t.Fatalf("%d resends recorded, want 2 (one per key holder)", resends)
	}
}
