package commands_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"herald/domain"
)

func TestCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		prepare    func(t *testing.T, e *env, id string)
		body       string
		wantStatus int
		wantType   string // problem type when refused
		wantEvents []string
	}{
		{
			name:       "in progress",
			body:       `{"reason":"sent by mistake"}`,
			wantStatus: http.StatusOK,
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned", "NotificationCancelled"},
		},
		{
			name:       "without a body",
			wantStatus: http.StatusOK,
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned", "NotificationCancelled"},
		},
		{
			name: "twice changes nothing the second time",
			prepare: func(t *testing.T, e *env, id string) {
				mustStatus(t, e.postJSON(t, "/v1/notifications/"+id+"/cancel", `{}`), http.StatusOK)
			},
			wantStatus: http.StatusOK,
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned", "NotificationCancelled"},
		},
		{
			name: "after delivered is a conflict",
			prepare: func(t *testing.T, e *env, id string) {
				e.deliverEmail(t, id)
				mustStatus(t, e.postJSON(t, "/v1/receipts/email", `{"notification_id":"`+id+`","delivery_id":"email-1","outcome":"delivered"}`), http.StatusOK)
			},
			wantStatus: http.StatusConflict,
			wantType:   "conflict",
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned", "DeliveryAttempted", "DeliverySucceeded", "DeliveryReceiptRecorded"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			id := e.sendEmail(t)
			if tc.prepare != nil {
				tc.prepare(t, e, id)
			}
			var r response
			if tc.body == "" {
				r = e.post(t, "/v1/notifications/"+id+"/cancel", "", "")
			} else {
				r = e.postJSON(t, "/v1/notifications/"+id+"/cancel", tc.body)
			}
			if tc.wantType != "" {
				mustProblem(t, r, tc.wantStatus, tc.wantType)
			} else {
				mustStatus(t, r, tc.wantStatus)
				if r.str("status") != "cancelled" || r.str("id") != id {
					t.Errorf("answer %s", r.Raw)
				}
			}
			if got := e.eventTypes(t, id); !slices.Equal(got, tc.wantEvents) {
				t.Errorf("events %v, want %v", got, tc.wantEvents)
			}
		})
	}
}

func TestCancelRecordsActorAndReason(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.sendEmail(t)
	mustStatus(t, e.postJSON(t, "/v1/notifications/"+id+"/cancel", `{"reason":"duplicate"}`, "X-Test-Key", "ops"), http.StatusOK)
	recs := e.events(t, id)
	last := recs[len(recs)-1]
	ev, err := domain.UnmarshalEvent(last.Type, last.Data)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := ev.(domain.NotificationCancelled)
	if !ok || c.Reason != "duplicate" || c.Actor != "ops" || last.Metadata.Actor != "ops" {
		t.Errorf("last event %T %+v, metadata %+v", ev, ev, last.Metadata)
	}
}

func TestConcurrentCancelsConverge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := e.sendEmail(t)
	const n = 12
	statuses := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = e.postJSON(t, "/v1/notifications/"+id+"/cancel", `{"reason":"race"}`)
		})
	}
	wg.Wait()
	for i, r := range statuses {
		if r.Status != http.StatusOK || r.str("status") != "cancelled" {
			t.Errorf("cancel %d: %d %s", i, r.Status, r.Raw)
		}
	}
	cancelled := 0
	for _, typ := range e.eventTypes(t, id) {
		if typ == "NotificationCancelled" {
			cancelled++
		}
	}
	if cancelled != 1 {
		t.Errorf("%d NotificationCancelled events, want exactly 1", cancelled)
	}
}

func TestResend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		prepare    func(t *testing.T, e *env, id string)
		body       string
		wantStatus int
		wantType   string
		// wantDeliveries are "id<-repeats" of the answer.
		wantDeliveries []string
	}{
		{
			name: "chosen channel after delivery",
			prepare: func(t *testing.T, e *env, id string) {
				e.deliverEmail(t, id)
			},
			body:           `{"channels":["email"],"reason":"customer lost it"}`,
			wantStatus:     http.StatusAccepted,
			wantDeliveries: []string{"email-2<-email-1"},
		},
		{
			name:           "every channel, no body",
			prepare:        func(t *testing.T, e *env, id string) { e.deliverEmail(t, id) },
			wantStatus:     http.StatusAccepted,
			wantDeliveries: []string{"email-2<-email-1"},
		},
		{
			name:       "while the delivery is still planned",
			body:       `{"channels":["email"]}`,
			wantStatus: http.StatusConflict,
			wantType:   "conflict",
		},
		{
			name: "after cancel",
			prepare: func(t *testing.T, e *env, id string) {
				mustStatus(t, e.postJSON(t, "/v1/notifications/"+id+"/cancel", `{}`), http.StatusOK)
			},
			body:       `{}`,
			wantStatus: http.StatusConflict,
			wantType:   "conflict",
		},
		{
			name:       "unknown channel",
			body:       `{"channels":["pigeon"]}`,
			wantStatus: http.StatusUnprocessableEntity,
			wantType:   "validation-failed",
		},
		{
			name:       "channel never used",
			prepare:    func(t *testing.T, e *env, id string) { e.deliverEmail(t, id) },
			body:       `{"channels":["sms"]}`,
			wantStatus: http.StatusNotFound,
			wantType:   "not-found",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			id := e.sendEmail(t)
			if tc.prepare != nil {
				tc.prepare(t, e, id)
			}
			before := e.head(t)
			var r response
			if tc.body == "" {
				r = e.post(t, "/v1/notifications/"+id+"/resend", "", "", "X-Test-Key", "support")
			} else {
				r = e.postJSON(t, "/v1/notifications/"+id+"/resend", tc.body, "X-Test-Key", "support")
			}
			if tc.wantType != "" {
				mustProblem(t, r, tc.wantStatus, tc.wantType)
				if e.head(t) != before {
					t.Errorf("refused resend appended")
				}
				return
			}
			mustStatus(t, r, tc.wantStatus)
			var got []string
			list, _ := r.Body["deliveries"].([]any)
			for _, d := range list {
				m := d.(map[string]any)
				got = append(got, m["delivery_id"].(string)+"<-"+m["repeats"].(string))
			}
			if !slices.Equal(got, tc.wantDeliveries) {
				t.Errorf("deliveries %v, want %v", got, tc.wantDeliveries)
			}
			if r.str("status") != "in_progress" {
				t.Errorf("status %q after resend, want in_progress", r.str("status"))
			}
			recs := e.events(t, id)
			last := recs[len(recs)-1]
			ev, err := domain.UnmarshalEvent(last.Type, last.Data)
			if err != nil {
				t.Fatal(err)
			}
			rr, ok := ev.(domain.ResendRequested)
			if !ok || rr.Actor != "support" {
				t.Errorf("last event %T %+v, want ResendRequested by support", ev, ev)
			}
		})
	}
}

func TestRecordReceipt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		attempted          bool
		path               string
		body               string // %s is the notification id
		wantStatus         int
		wantType           string
		wantDeliveryStatus string
		wantNotification   string
	}{
		{
			name: "delivered", attempted: true, path: "/v1/receipts/email",
			body:       `{"notification_id":"%s","delivery_id":"email-1","outcome":"delivered","provider_message_id":"pm-1"}`,
			wantStatus: http.StatusOK, wantDeliveryStatus: "delivered", wantNotification: "delivered",
		},
		{
			name: "bounced", attempted: true, path: "/v1/receipts/email",
			body:       `{"notification_id":"%s","delivery_id":"email-1","outcome":"bounced","reason":"mailbox full"}`,
			wantStatus: http.StatusOK, wantDeliveryStatus: "failed", wantNotification: "failed",
		},
		{
			name: "opened", attempted: true, path: "/v1/receipts/email",
			body:       `{"notification_id":"%s","delivery_id":"email-1","outcome":"opened"}`,
			wantStatus: http.StatusOK, wantDeliveryStatus: "read", wantNotification: "delivered",
		},
		{
			name: "before any attempt", path: "/v1/receipts/email",
			body:       `{"notification_id":"%s","delivery_id":"email-1","outcome":"delivered"}`,
			wantStatus: http.StatusConflict, wantType: "conflict",
		},
		{
			name: "unknown delivery", attempted: true, path: "/v1/receipts/email",
			body:       `{"notification_id":"%s","delivery_id":"email-7","outcome":"delivered"}`,
			wantStatus: http.StatusNotFound, wantType: "not-found",
		},
		{
			name: "unknown notification", path: "/v1/receipts/email",
			body:       `{"notification_id":"0196a6e1-0000-7000-8000-000000000000","delivery_id":"email-1","outcome":"delivered"}`,
			wantStatus: http.StatusNotFound, wantType: "not-found",
		},
		{
			name: "unknown channel", path: "/v1/receipts/pigeon",
			body:       `{"notification_id":"%s","delivery_id":"email-1","outcome":"delivered"}`,
			wantStatus: http.StatusNotFound, wantType: "not-found",
		},
		{
			name: "delivery of another channel and bad outcome", attempted: true, path: "/v1/receipts/sms",
			body:       `{"notification_id":"%s","delivery_id":"email-1","outcome":"lost"}`,
			wantStatus: http.StatusUnprocessableEntity, wantType: "validation-failed",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			id := e.sendEmail(t)
			if tc.attempted {
				e.deliverEmail(t, id)
			}
			before := e.head(t)
			body := strings.Replace(tc.body, "%s", id, 1)
			r := e.postJSON(t, tc.path, body, "X-Test-Key", "provider")
			if tc.wantType != "" {
				mustProblem(t, r, tc.wantStatus, tc.wantType)
				if e.head(t) != before {
					t.Error("refused receipt appended")
				}
				return
			}
			mustStatus(t, r, tc.wantStatus)
			if r.str("delivery_status") != tc.wantDeliveryStatus || r.str("status") != tc.wantNotification || r.Body["recorded"] != true {
				t.Errorf("answer %s, want delivery %s, notification %s", r.Raw, tc.wantDeliveryStatus, tc.wantNotification)
			}
			// Providers repeat callbacks: the same one again is a no-op.
			again := e.postJSON(t, tc.path, body)
			mustStatus(t, again, http.StatusOK)
			if again.Body["recorded"] != false {
				t.Errorf("repeat answer %s, want recorded false", again.Raw)
			}
			if got := e.eventTypes(t, id); got[len(got)-1] != "DeliveryReceiptRecorded" || len(got) != 5 {
				t.Errorf("events %v", got)
			}
		})
	}
}
