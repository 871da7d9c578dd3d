package commands_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"herald/commands"
	"herald/domain"
)

func TestSendPlansDeliveriesInOneAppend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		body       string
		wantStatus string
		wantEvents []string
		// wantPlans are "channel=address" of every DeliveryPlanned, in order.
		wantPlans []string
		// wantSuppressed are the channels of every DeliverySuppressed.
		wantSuppressed []string
	}{
		{
			name:       "channels with addresses",
			body:       `{"recipient":{"id":"u1","email":"ada@example.com","webhook_url":"https://hooks.example.com/x"},"channels":["webhook","email"],"content":{"body":"hi"}}`,
			wantStatus: "in_progress",
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned", "DeliveryPlanned"},
			wantPlans:  []string{"webhook=https://hooks.example.com/x", "email=ada@example.com"},
		},
		{
			name:           "channel without address is suppressed",
			body:           `{"recipient":{"email":"ada@example.com"},"channels":["email","sms"],"content":{"body":"hi"}}`,
			wantStatus:     "in_progress",
			wantEvents:     []string{"NotificationRequested", "DeliveryPlanned", "DeliverySuppressed"},
			wantPlans:      []string{"email=ada@example.com"},
			wantSuppressed: []string{"sms"},
		},
		{
			name:       "no channels means every addressed channel but web push",
			body:       `{"recipient":{"id":"u1","email":"ada@example.com","phone":"+15551234567"},"content":{"body":"hi"}}`,
			wantStatus: "in_progress",
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned", "DeliveryPlanned", "DeliveryPlanned"},
			wantPlans:  []string{"email=ada@example.com", "sms=+15551234567", "inapp=u1"},
		},
		{
			name:       "id-only recipient goes in-app",
			body:       `{"recipient":{"id":"user-42"},"content":{"body":"Code 123456"}}`,
			wantStatus: "in_progress",
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned"},
			wantPlans:  []string{"inapp=user-42"},
		},
		{
			name:           "every channel suppressed",
			body:           `{"recipient":{"id":"u1"},"channels":["sms"],"content":{"body":"hi"}}`,
			wantStatus:     "failed",
			wantEvents:     []string{"NotificationRequested", "DeliverySuppressed"},
			wantSuppressed: []string{"sms"},
		},
		{
			name:       "scheduled for later is not planned",
			body:       `{"recipient":{"id":"u1"},"content":{"body":"hi"},"scheduled_at":"2026-12-01T09:00:00Z"}`,
			wantStatus: "scheduled",
			wantEvents: []string{"NotificationRequested"},
		},
		{
			name:       "scheduled in the past is planned now",
			body:       `{"recipient":{"id":"u1"},"content":{"body":"hi"},"scheduled_at":"2026-01-01T09:00:00Z"}`,
			wantStatus: "in_progress",
			wantEvents: []string{"NotificationRequested", "DeliveryPlanned"},
			wantPlans:  []string{"inapp=u1"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.postJSON(t, "/v1/notifications", tc.body, "X-Correlation-ID", "corr-1", "X-Request-ID", "req-1")
			mustStatus(t, r, http.StatusAccepted)
			id := r.str("id")
			if r.str("status") != tc.wantStatus {
				t.Errorf("status %q, want %q", r.str("status"), tc.wantStatus)
			}
			if r.str("status_url") != "/v1/notifications/"+id || r.Header.Get("Location") != "/v1/notifications/"+id {
				t.Errorf("status_url %q, Location %q", r.str("status_url"), r.Header.Get("Location"))
			}
			recs := e.events(t, id)
			var types, plans, suppressed []string
			for _, rec := range recs {
				types = append(types, rec.Type)
				if rec.Metadata.Actor != "tester" || rec.Metadata.CorrelationID != "corr-1" || rec.Metadata.CausationID != "req-1" {
					t.Errorf("metadata %+v, want actor tester, correlation corr-1, causation req-1", rec.Metadata)
				}
				if rec.SchemaVersion != domain.EventSchemaVersion || rec.ID == "" {
					t.Errorf("envelope id %q schema %d", rec.ID, rec.SchemaVersion)
				}
				ev, err := domain.UnmarshalEvent(rec.Type, rec.Data)
				if err != nil {
					t.Fatal(err)
				}
				switch ev := ev.(type) {
				case domain.DeliveryPlanned:
					plans = append(plans, string(ev.Channel)+"="+ev.Address)
				case domain.DeliverySuppressed:
					suppressed = append(suppressed, string(ev.Channel))
					if ev.Reason != "no address for channel" {
						t.Errorf("suppression reason %q", ev.Reason)
					}
				case domain.NotificationRequested:
					if string(ev.NotificationID) != id {
						t.Errorf("requested id %q, want %q", ev.NotificationID, id)
					}
				}
			}
			if !slices.Equal(types, tc.wantEvents) {
				t.Errorf("events %v, want %v", types, tc.wantEvents)
			}
			if !slices.Equal(plans, tc.wantPlans) || !slices.Equal(suppressed, tc.wantSuppressed) {
				t.Errorf("plans %v suppressed %v, want %v and %v", plans, suppressed, tc.wantPlans, tc.wantSuppressed)
			}
			// Nothing but this stream is in the log (that the events
			// came in one Append is TestSendIsOneAppendAndBatchIsOneAppendMany's).
			if got := e.head(t); int(got) != len(recs) {
				t.Errorf("log head %d after one send of %d events", got, len(recs))
			}
		})
	}
}

func TestSendIdempotency(t *testing.T) {
	t.Parallel()
	const body = `{"recipient":{"email":"ada@example.com"},"content":{"body":"Code 1"},"priority":"normal"}`

	t.Run("same key same body returns the original", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		first := e.postJSON(t, "/v1/notifications", body, "Idempotency-Key", "k-1")
		mustStatus(t, first, http.StatusAccepted)
		// Same meaning, different spelling: default priority omitted,
		// fields reordered.
		second := e.postJSON(t, "/v1/notifications", `{"content":{"body":"Code 1"},"recipient":{"email":"ada@example.com"}}`, "Idempotency-Key", "k-1")
		mustStatus(t, second, http.StatusOK)
		if first.str("id") != second.str("id") || second.str("status_url") == "" {
			t.Fatalf("ids %q and %q", first.str("id"), second.str("id"))
		}
		if want := string(commands.IdempotentNotificationID("tester", "k-1")); first.str("id") != want {
			t.Errorf("id %q, want the derived %q", first.str("id"), want)
		}
		if n := len(e.events(t, first.str("id"))); int(e.head(t)) != n {
			t.Errorf("log holds %d events, the one stream %d", e.head(t), n)
		}
	})

	t.Run("same key other body conflicts", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		mustStatus(t, e.postJSON(t, "/v1/notifications", body, "Idempotency-Key", "k-1"), http.StatusAccepted)
		before := e.head(t)
		r := e.postJSON(t, "/v1/notifications", `{"recipient":{"email":"ada@example.com"},"content":{"body":"Code 2"}}`, "Idempotency-Key", "k-1")
		mustProblem(t, r, http.StatusConflict, "idempotency-conflict")
		if e.head(t) != before {
			t.Errorf("a refused request appended: head %d → %d", before, e.head(t))
		}
	})

	t.Run("key is scoped to the API key", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		a := e.postJSON(t, "/v1/notifications", body, "Idempotency-Key", "k-1")
		b := e.postJSON(t, "/v1/notifications", body, "Idempotency-Key", "k-1", "X-Test-Key", "other")
		mustStatus(t, a, http.StatusAccepted)
		mustStatus(t, b, http.StatusAccepted)
		if a.str("id") == b.str("id") {
			t.Errorf("two API keys share notification %s", a.str("id"))
		}
	})

	t.Run("holds across a store close and reopen", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		first := e.postJSON(t, "/v1/notifications", body, "Idempotency-Key", "k-restart")
		mustStatus(t, first, http.StatusAccepted)
		e.close()

		e2 := openEnv(t, e.path)
		again := e2.postJSON(t, "/v1/notifications", body, "Idempotency-Key", "k-restart")
		mustStatus(t, again, http.StatusOK)
		if again.str("id") != first.str("id") {
			t.Errorf("after restart id %q, before %q", again.str("id"), first.str("id"))
		}
		mustProblem(t, e2.postJSON(t, "/v1/notifications", `{"recipient":{"id":"x"},"content":{"body":"other"}}`, "Idempotency-Key", "k-restart"),
			http.StatusConflict, "idempotency-conflict")
		if got := e2.eventTypes(t, first.str("id")); !slices.Equal(got, []string{"NotificationRequested", "DeliveryPlanned"}) {
			t.Errorf("stream after restart %v", got)
		}
	})

	t.Run("concurrent repeats create one notification", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const n = 16
		results := make([]commands.SendResult, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		var req domain.NotificationRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			wg.Go(func() {
				results[i], errs[i] = e.handlers.Send.Handle(t.Context(), commands.Send{
					Origin: commands.Origin{Actor: "tester"}, Request: req, IdempotencyKey: "k-race",
				})
			})
		}
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("send %d: %v", i, errs[i])
			}
			if results[i].ID != results[0].ID {
				t.Errorf("send %d got id %s, send 0 %s", i, results[i].ID, results[0].ID)
			}
			if results[i].Created {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d sends report creating the notification, want 1", created)
		}
		if got := e.eventTypes(t, string(results[0].ID)); len(got) != 2 {
			t.Errorf("stream %v, want request and one plan", got)
		}
	})
}

func TestNewHandlersRefusesNilDeps(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		new  func(commands.Deps) error
	}{
		{"handlers", func(d commands.Deps) error { _, err := commands.NewHandlers(d); return err }},
		{"send", func(d commands.Deps) error { _, err := commands.NewSendHandler(d); return err }},
		{"batch", func(d commands.Deps) error { _, err := commands.NewSendBatchHandler(d); return err }},
		{"cancel", func(d commands.Deps) error { _, err := commands.NewCancelHandler(d); return err }},
		{"resend", func(d commands.Deps) error { _, err := commands.NewResendHandler(d); return err }},
		{"receipt", func(d commands.Deps) error { _, err := commands.NewRecordReceiptHandler(d); return err }},
		{"mark read", func(d commands.Deps) error { _, err := commands.NewMarkReadHandler(d); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.new(commands.Deps{})
			if err == nil {
				t.Fatal("nil dependencies accepted")
			}
			for _, name := range []string{"Store", "Clock", "NewID"} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
}

func TestIdempotentNotificationIDIsAStableUUIDv8(t *testing.T) {
	t.Parallel()
	a := commands.IdempotentNotificationID("key-a", "order-17")
	if a != commands.IdempotentNotificationID("key-a", "order-17") {
		t.Fatal("not deterministic")
	}
	// "a\x00bc" and "ab\x00c" must differ: the separator keeps names and keys apart.
	if commands.IdempotentNotificationID("a", "bc") == commands.IdempotentNotificationID("ab", "c") {
		t.Error("actor and key boundaries collide")
	}
	s := string(a)
	if len(s) != 36 || s[14] != '8' || !slices.Contains([]byte("89ab"), s[19]) {
		t.Errorf("%s is not a UUIDv8", s)
	}
}
