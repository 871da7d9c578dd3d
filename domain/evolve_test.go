package domain_test

import (
	"reflect"
	"testing"
	"time"

	"herald/domain"
)

func TestOverallStatus(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given []domain.Event
		want  domain.NotificationStatus
	}{
		{"nothing yet", nil, ""},
		{"requested", hRequested(), domain.StatusAccepted},
		{"requested with a schedule", evs(requestedWith(scheduledRequest())), domain.StatusScheduled},
		{"planned", hPlanned(), domain.StatusInProgress},
		{"one in flight", hEmailInFlight(), domain.StatusInProgress},
		{"one waiting for a retry", hEmailRetry(), domain.StatusInProgress},
		{"some sent, others still planned", hEmailSent(), domain.StatusInProgress},
		{"all sent or delivered", hAllDelivered(), domain.StatusDelivered},
		{"all delivered plus a suppression", hist(hAllDelivered(), evs(suppressed(sms, "opted out"))), domain.StatusDelivered},
		{"read counts as delivered", hist(hAllDelivered(), evs(
			domain.NotificationRead{DeliveryID: "inapp-1", ReadAt: at(4)})), domain.StatusDelivered},
		{"some delivered some failed", hPartial(), domain.StatusPartiallyDelivered},
		{"bounce after sent makes it partial", hist(hAllDelivered(), evs(
			receipt("email-1", domain.ReceiptBounced, "mailbox full", at(5)))), domain.StatusPartiallyDelivered},
		{"all failed", hAllFailed(), domain.StatusFailed},
		{"all suppressed", hist(hRequested(), evs(suppressed(sms, "opted out"), suppressed(email, "no address"))), domain.StatusFailed},
		{"failed plus suppressed", hist(hAllFailed(), evs(suppressed(sms, "opted out"))), domain.StatusFailed},
		{"cancelled before planning", hist(hRequested(), evs(cancelled(at(1)))), domain.StatusCancelled},
		{"cancelled is sticky when the started attempt succeeds", hist(hEmailInFlight(), evs(
			cancelled(at(2)), succeeded("email-1", 1, false, at(3)))), domain.StatusCancelled},
		{"expired", hist(hExpiring(), evs(expired(at(60)))), domain.StatusExpired},
		{"expired is sticky", hist(hExpiringPlanned(), evs(attempted("email-1", 1, at(59)), expired(at(60)),
			succeeded("email-1", 1, true, at(61)))), domain.StatusExpired},
		{"resend re-opens a delivered notification", hist(hAllDelivered(), evs(resent(at(5), resendOf(email, 2)))), domain.StatusInProgress},
		{"resend re-opens a failed notification", hist(hAllFailed(), evs(resent(at(5), resendOf(email, 2)))), domain.StatusInProgress},
		{"a successful resend turns a failed channel into delivered", hist(hAllFailed(), evs(
			resent(at(5), resendOf(email, 2)), attempted("email-2", 1, at(6)), succeeded("email-2", 1, false, at(7)))), domain.StatusDelivered},
		{"a failed resend after a success makes it partial", hist(hist(hAllDelivered(), evs(
			resent(at(5), resendOf(webhook, 2)), attempted("webhook-2", 1, at(6)),
			failed("webhook-2", 1, "HTTP 500", false, at(7)), dead("webhook-2", 1, "HTTP 500", at(7))))), domain.StatusPartiallyDelivered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := replay(tt.given)
			if got := n.Status(); got != tt.want {
				t.Errorf("status = %q, want %q", got, tt.want)
			}
			if n.Exists() != (len(tt.given) > 0) {
				t.Errorf("Exists() = %v", n.Exists())
			}
		})
	}
}

func TestDeliveryStatusTransitions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		given []domain.Event
		id    domain.DeliveryID
		want  domain.DeliveryStatus
	}{
		{"planned", hPlanned(), "email-1", domain.DeliveryStatusPlanned},
		{"suppressed", hSMSSuppressed(), "sms-1", domain.DeliveryStatusSuppressed},
		{"in flight", hEmailInFlight(), "email-1", domain.DeliveryStatusInFlight},
		{"retry scheduled", hEmailRetry(), "email-1", domain.DeliveryStatusRetryScheduled},
		{"sent when not confirmed", hEmailSent(), "email-1", domain.DeliveryStatusSent},
		{"delivered when confirmed", hInAppDelivered(), "inapp-1", domain.DeliveryStatusDelivered},
		{"failed when dead-lettered", hEmailDead(), "email-1", domain.DeliveryStatusFailed},
		{"delivered receipt", hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(4)))), "email-1", domain.DeliveryStatusDelivered},
		{"bounced receipt", hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptBounced, "x", at(4)))), "email-1", domain.DeliveryStatusFailed},
		{"failed receipt", hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptFailed, "x", at(4)))), "email-1", domain.DeliveryStatusFailed},
		{"opened receipt", hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptOpened, "", at(4)))), "email-1", domain.DeliveryStatusRead},
		{"read is not undone by a late delivered receipt", hist(hEmailSent(), evs(
			receipt("email-1", domain.ReceiptOpened, "", at(4)), receipt("email-1", domain.ReceiptDelivered, "", at(5)))), "email-1", domain.DeliveryStatusRead},
		{"success after an overtaking receipt keeps delivered", hist(hEmailInFlight(), evs(
			receipt("email-1", domain.ReceiptDelivered, "", at(3)), succeeded("email-1", 1, false, at(4)))), "email-1", domain.DeliveryStatusDelivered},
		{"in-app read", hist(hInAppDelivered(), evs(domain.NotificationRead{DeliveryID: "inapp-1", ReadAt: at(4)})), "inapp-1", domain.DeliveryStatusRead},
		{"resent delivery is planned", hist(hEmailSent(), evs(resent(at(5), resendOf(email, 2)))), "email-2", domain.DeliveryStatusPlanned},
		{"resend leaves the original as it was", hist(hEmailSent(), evs(resent(at(5), resendOf(email, 2)))), "email-1", domain.DeliveryStatusSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, ok := replay(tt.given).Delivery(tt.id)
			if !ok {
				t.Fatalf("delivery %s not found", tt.id)
			}
			if d.Status() != tt.want {
				t.Errorf("status = %q, want %q", d.Status(), tt.want)
			}
		})
	}
}

func TestNotificationAccessors(t *testing.T) {
	t.Parallel()
	r := expiringRequest()
	r.ScheduledAt = ptr(at(-1))
	r.Category = "security"
	r.Priority = domain.PriorityLow
	given := evs(
		requestedWith(r),
		planned(email), planned(webhook), suppressed(sms, "opted out"),
		attempted("email-1", 1, at(2)),
		failed("email-1", 1, "421 try later", true, at(3)),
		retry("email-1", 2, at(10)),
		attempted("webhook-1", 1, at(2)),
		succeeded("webhook-1", 1, true, at(3)),
	)
	n := replay(given)

	if n.ID() != nid || n.IdempotencyKey() != "key-1" || !n.RequestedAt().Equal(t0) {
		t.Errorf("ID %q, key %q, requested at %v", n.ID(), n.IdempotencyKey(), n.RequestedAt())
	}
	if n.Priority() != domain.PriorityLow || n.Category() != "security" {
		t.Errorf("priority %q, category %q", n.Priority(), n.Category())
	}
	if !n.ScheduledAt().Equal(at(-1)) || !n.ExpiresAt().Equal(at(60)) {
		t.Errorf("scheduled %v, expires %v", n.ScheduledAt(), n.ExpiresAt())
	}
	if !reflect.DeepEqual(n.Request(), r.Normalized()) {
		t.Errorf("Request() = %+v, want the normalized request", n.Request())
	}
	if n.Version() != len(given) || !n.Planned() {
		t.Errorf("version %d (want %d), planned %v", n.Version(), len(given), n.Planned())
	}

	var ids []domain.DeliveryID
	for _, d := range n.Deliveries() {
		ids = append(ids, d.ID())
	}
	if want := []domain.DeliveryID{"email-1", "webhook-1", "sms-1"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("deliveries %v, want %v in planning order", ids, want)
	}

	e, _ := n.Delivery("email-1")
	if e.Channel() != email || e.Address() != "ada@example.com" || e.Attempts() != 1 ||
		e.LastError() != "421 try later" || !e.NextAttemptAt().Equal(at(10)) || e.Repeats() != "" {
		t.Errorf("email-1: channel %q address %q attempts %d error %q next %v repeats %q",
			e.Channel(), e.Address(), e.Attempts(), e.LastError(), e.NextAttemptAt(), e.Repeats())
	}
	w, _ := n.Delivery("webhook-1")
	if w.ProviderMessageID() != "pm-webhook-1" || !w.NextAttemptAt().IsZero() || w.LastError() != "" {
		t.Errorf("webhook-1: provider id %q next %v error %q", w.ProviderMessageID(), w.NextAttemptAt(), w.LastError())
	}
	s, _ := n.Delivery("sms-1")
	if s.SuppressionReason() != "opted out" || s.Address() != "" || s.Channel() != sms {
		t.Errorf("sms-1: reason %q address %q", s.SuppressionReason(), s.Address())
	}
	if _, ok := n.Delivery("slack-1"); ok {
		t.Error("Delivery(slack-1) found a delivery that was never planned")
	}

	var zero domain.Notification
	if zero.Exists() || zero.Status() != "" || zero.Version() != 0 || zero.Deliveries() != nil ||
		!zero.ScheduledAt().IsZero() || !zero.ExpiresAt().IsZero() {
		t.Error("zero Notification is not empty")
	}
}

func TestDeadLetterAndBounceReasons(t *testing.T) {
	t.Parallel()
	n := replay(hist(hEmailInFlight(), evs(
		failed("email-1", 1, "421", true, at(3)),
		dead("email-1", 1, "retries exhausted: 421", at(3)),
	)))
	if d, _ := n.Delivery("email-1"); d.LastError() != "retries exhausted: 421" || d.Status() != domain.DeliveryStatusFailed {
		t.Errorf("last error %q status %q", d.LastError(), d.Status())
	}
	n = replay(hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptBounced, "mailbox full", at(4)))))
	if d, _ := n.Delivery("email-1"); d.LastError() != "mailbox full" {
		t.Errorf("bounce last error %q", d.LastError())
	}
	n = replay(hist(hEmailRetry(), evs(attempted("email-1", 2, at(10)))))
	if d, _ := n.Delivery("email-1"); !d.NextAttemptAt().IsZero() || d.Attempts() != 2 {
		t.Errorf("after retry attempt: next %v attempts %d", d.NextAttemptAt(), d.Attempts())
	}
}

func TestEvolveKeepsOldStatesIntact(t *testing.T) {
	t.Parallel()
	base := replay(hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(4)))))
	snapshot := replay(hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(4)))))

	// Every kind of change, each applied to the same base state.
	for _, e := range []domain.Event{
		attempted("webhook-1", 1, at(5)),
		receipt("email-1", domain.ReceiptOpened, "", at(5)),
		resent(at(5), resendOf(email, 2)),
		suppressed(sms, "late"),
		planned(slack),
		cancelled(at(5)),
	} {
		next := domain.EvolveNotification(base, e)
		if reflect.DeepEqual(next, base) {
			t.Errorf("%s changed nothing", e.EventType())
		}
		if !reflect.DeepEqual(base, snapshot) {
			t.Fatalf("evolving %s modified the old state", e.EventType())
		}
	}

	// Two branches from one state do not see each other, whatever spare
	// capacity the state's slices happen to have: branch from every prefix.
	history := hist(hAllDelivered(), evs(resent(at(5), resendOf(email, 2))))
	var prefix domain.Notification
	for i, e := range history {
		prefix = domain.EvolveNotification(prefix, e)
		if !prefix.Planned() {
			continue
		}
		a := domain.EvolveNotification(prefix, planned(slack))
		b := domain.EvolveNotification(prefix, suppressed(sms, "x"))
		if _, ok := a.Delivery("sms-1"); ok {
			t.Errorf("after event %d: branch a sees branch b's delivery", i)
		}
		if _, ok := b.Delivery("slack-1"); ok {
			t.Errorf("after event %d: branch b sees branch a's delivery", i)
		}
		c := domain.EvolveNotification(prefix, resent(at(9), resendOf(webhook, 2)))
		d := domain.EvolveNotification(prefix, resent(at(9), resendOf(inapp, 2)))
		if _, ok := c.Delivery("inapp-2"); ok {
			t.Errorf("after event %d: resend branch c sees branch d's delivery", i)
		}
		if _, ok := d.Delivery("webhook-2"); ok {
			t.Errorf("after event %d: resend branch d sees branch c's delivery", i)
		}
	}

	// The same for the receipts a delivery remembers to drop duplicates.
	receipts := hEmailSent()
	for i := range 6 {
		receipts = append(receipts, receipt("email-1", domain.ReceiptDelivered, string(rune('a'+i)), at(4)))
		prefix := replay(receipts)
		a := domain.EvolveNotification(prefix, receipt("email-1", domain.ReceiptDelivered, "branch-a", at(5)))
		b := domain.EvolveNotification(prefix, receipt("email-1", domain.ReceiptDelivered, "branch-b", at(5)))
		events, err := domain.DecideNotification(b, domain.RecordReceipt{
			DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, ProviderMessageID: "pm-email-1", Reason: "branch-a", Now: at(6)})
		if err != nil || len(events) != 1 {
			t.Errorf("after %d receipts: branch b treats branch a's receipt as a duplicate (%v, %v)", i+1, events, err)
		}
		again, err := domain.DecideNotification(a, domain.RecordReceipt{
			DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, ProviderMessageID: "pm-email-1", Reason: "branch-a", Now: at(6)})
		if err != nil || again != nil {
			t.Errorf("after %d receipts: branch a lost its own receipt to branch b (%v, %v)", i+1, again, err)
		}
	}

	// Accessors hand out copies.
	ds := base.Deliveries()
	ds[0] = domain.Delivery{}
	req := base.Request()
	req.Recipient.Email = "changed"
	req.Content.Body = "changed"
	if !reflect.DeepEqual(base, snapshot) {
		t.Error("mutating accessor results changed the state")
	}
}

func TestEvolveIgnoresWhatItCannotApply(t *testing.T) {
	t.Parallel()
	base := replay(hPlanned())
	tests := []struct {
		name string
		e    domain.Event
	}{
		{"unknown event type", alienEvent{}},
		{"event for an unknown delivery", attempted("slack-9", 1, at(2))},
		{"second NotificationRequested", domain.NotificationRequested{NotificationID: "other", RequestedAt: at(9)}},
	}
	for _, tt := range tests {
		next := domain.EvolveNotification(base, tt.e)
		if next.Version() != base.Version()+1 {
			t.Errorf("%s: version %d, want %d (every stored event counts)", tt.name, next.Version(), base.Version()+1)
		}
		if next.ID() != base.ID() || next.Status() != base.Status() || !reflect.DeepEqual(next.Deliveries(), base.Deliveries()) {
			t.Errorf("%s changed the state", tt.name)
		}
	}
	if got := domain.EvolveNotification(base, nil); !reflect.DeepEqual(got, base) {
		t.Error("nil event changed the state")
	}
	orphan := domain.EvolveNotification(domain.Notification{}, planned(email))
	if orphan.Exists() || len(orphan.Deliveries()) != 0 {
		t.Error("a delivery event before NotificationRequested created state")
	}
}

func TestEvolveAcceptsPointerEvents(t *testing.T) {
	t.Parallel()
	byValue := replay(hEmailSent())
	var byPointer domain.Notification
	for _, e := range hEmailSent() {
		v := reflect.New(reflect.TypeOf(e))
		v.Elem().Set(reflect.ValueOf(e))
		byPointer = domain.EvolveNotification(byPointer, v.Interface().(domain.Event))
	}
	if !reflect.DeepEqual(byPointer, byValue) {
		t.Error("pointer events evolve differently from values")
	}
	var nilPlanned *domain.DeliveryPlanned
	if got := domain.EvolveNotification(byValue, nilPlanned); !reflect.DeepEqual(got, byValue) {
		t.Error("a nil *DeliveryPlanned changed the state")
	}
}

// TestLifecycleThroughDecide drives a notification only through decide and
// evolve, storing every event through the codec as the command handlers
// will, and checks delivery IDs stay deterministic across resends.
func TestLifecycleThroughDecide(t *testing.T) {
	t.Parallel()
	var stream []domain.Event
	state := domain.Notification{}
	step := func(cmd domain.NotificationCommand) []domain.Event {
		t.Helper()
		events, err := domain.DecideNotification(state, cmd)
		if err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
		for _, e := range events {
			typ, data, err := domain.MarshalEvent(e)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := domain.UnmarshalEvent(typ, data)
			if err != nil {
				t.Fatal(err)
			}
			stream = append(stream, stored)
			state = domain.EvolveNotification(state, stored)
		}
		return events
	}
	expectStatus := func(want domain.NotificationStatus) {
		t.Helper()
		if state.Status() != want {
			t.Fatalf("status = %q, want %q", state.Status(), want)
		}
	}

	r := validRequest()
	r.Channels = []domain.Channel{email, sms}
	step(domain.RequestNotification{ID: nid, Request: r, IdempotencyKey: "key-1", Now: t0})
	expectStatus(domain.StatusAccepted)

	var plans []domain.DeliveryPlan
	for _, c := range r.Channels {
		plans = append(plans, domain.DeliveryPlan{Channel: c, Address: r.Recipient.Address(c)})
	}
	step(domain.PlanDeliveries{Plans: plans, Now: at(1)})
	expectStatus(domain.StatusInProgress)

	step(domain.RecordAttempt{DeliveryID: "sms-1", Now: at(2)})
	step(domain.RecordSuccess{DeliveryID: "sms-1", Attempt: 1, ProviderMessageID: "SM1", Now: at(2)})
	step(domain.RecordAttempt{DeliveryID: "email-1", Now: at(2)})
	step(domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "421", Retryable: true, RetryAt: at(5), Now: at(3)})
	step(domain.RecordAttempt{DeliveryID: "email-1", Now: at(5)})
	step(domain.RecordFailure{DeliveryID: "email-1", Attempt: 2, Reason: "550", Now: at(6)})
	expectStatus(domain.StatusPartiallyDelivered)

	first := step(domain.RequestResend{Channels: []domain.Channel{email}, Actor: "ops", Now: at(10)})
	expectStatus(domain.StatusInProgress)
	step(domain.RecordAttempt{DeliveryID: "email-2", Now: at(11)})
	step(domain.RecordSuccess{DeliveryID: "email-2", ProviderMessageID: "m2", Now: at(12)})
	expectStatus(domain.StatusDelivered)

	second := step(domain.RequestResend{Actor: "ops", Now: at(20)})
	wantFirst := []domain.ResendDelivery{{DeliveryID: "email-2", Repeats: "email-1", Channel: email, Address: "ada@example.com"}}
	wantSecond := []domain.ResendDelivery{
		{DeliveryID: "email-3", Repeats: "email-2", Channel: email, Address: "ada@example.com"},
		{DeliveryID: "sms-2", Repeats: "sms-1", Channel: sms, Address: "+15551234567"},
	}
	if got := first[0].(domain.ResendRequested).Deliveries; !reflect.DeepEqual(got, wantFirst) {
		t.Errorf("first resend %+v, want %+v", got, wantFirst)
	}
	if got := second[0].(domain.ResendRequested).Deliveries; !reflect.DeepEqual(got, wantSecond) {
		t.Errorf("second resend %+v, want %+v", got, wantSecond)
	}

	// Replaying the stored stream rebuilds the same state with the same IDs,
	// and each delivery has its own stable provider idempotency key.
	replayed := domain.ReplayNotification(stream)
	if !reflect.DeepEqual(replayed, state) {
		t.Error("replay differs from the incrementally evolved state")
	}
	if replayed.Version() != len(stream) {
		t.Errorf("version %d, stream length %d", replayed.Version(), len(stream))
	}
	keys := map[string]bool{}
	for _, d := range replayed.Deliveries() {
		keys[replayed.ID().DeliveryKey(d.ID())] = true
	}
	for _, k := range []string{"n-1/email-1", "n-1/email-2", "n-1/email-3", "n-1/sms-1", "n-1/sms-2"} {
		if !keys[k] {
			t.Errorf("missing delivery key %s (have %v)", k, keys)
		}
	}
	if d, _ := replayed.Delivery("email-1"); d.Attempts() != 2 || d.LastError() != "550" {
		t.Errorf("email-1 attempts %d, last error %q", d.Attempts(), d.LastError())
	}

	// Cancelling a finished-then-reopened notification is allowed while the
	// resends are pending, and stops them.
	step(domain.CancelNotification{Reason: "enough", Actor: "ops", Now: at(21)})
	expectStatus(domain.StatusCancelled)
	if _, err := domain.DecideNotification(state, domain.RecordAttempt{DeliveryID: "email-3", Now: at(22)}); err == nil {
		t.Error("attempt after cancellation was accepted")
	}
}

func TestScheduledNotificationFlow(t *testing.T) {
	t.Parallel()
	r := scheduledRequest()
	r.ExpiresAt = ptr(at(40))
	state := domain.ReplayNotification(nil)
	events, err := domain.DecideNotification(state, domain.RequestNotification{ID: nid, Request: r, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	state = domain.ReplayNotification(events)
	if state.Status() != domain.StatusScheduled {
		t.Fatalf("status %q, want scheduled", state.Status())
	}
	plan := domain.PlanDeliveries{Plans: []domain.DeliveryPlan{{Channel: email, Address: "ada@example.com"}}}
	for _, tc := range []struct {
		now  time.Time
		ok   bool
		desc string
	}{
		{at(29), false, "before scheduled_at"},
		{at(30), true, "at scheduled_at"},
		{at(40), false, "at expires_at"},
	} {
		plan.Now = tc.now
		_, err := domain.DecideNotification(state, plan)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error = %v, want ok=%v", tc.desc, err, tc.ok)
		}
	}
}
