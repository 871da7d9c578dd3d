package domain_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"herald/domain"
)

type decideCase struct {
	name  string
	given []domain.Event
	when  domain.NotificationCommand
	then  []domain.Event // expected events; nil with a nil err means "idempotent no-op"
	err   error          // expected sentinel, checked with errors.Is
}

func runDecideCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			state := replay(tc.given)
			before := replay(tc.given)
			got, err := domain.DecideNotification(state, tc.when)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				if got != nil {
					t.Errorf("events = %#v alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events:\n got %#v\nwant %#v", got, tc.then)
			}
			if !reflect.DeepEqual(state, before) {
				t.Error("decide modified the state it was given")
			}
			// Whatever decide emits must apply cleanly.
			next := state
			for _, e := range got {
				next = domain.EvolveNotification(next, e)
			}
			if next.Version() != state.Version()+len(got) {
				t.Errorf("version %d after %d events on version %d", next.Version(), len(got), state.Version())
			}
		})
	}
}

func requestNotificationCases() []decideCase {
	cet := time.FixedZone("CET", 3600)
	withHigh := validRequest()
	withHigh.Priority = domain.PriorityHigh
	explicitNormal := validRequest()
	explicitNormal.Priority = domain.PriorityNormal
	invalid := validRequest()
	invalid.Content = nil

	return []decideCase{
		{
			name: "new notification is requested with the normalized request",
			when: domain.RequestNotification{ID: nid, Request: validRequest(), IdempotencyKey: "key-1", Now: t0.In(cet)},
			then: evs(requestedWith(validRequest())),
		},
		{
			name: "invalid request",
			when: domain.RequestNotification{ID: nid, Request: invalid, Now: t0},
			err:  domain.ErrInvalidRequest,
		},
		{
			name: "missing id",
			when: domain.RequestNotification{Request: validRequest(), Now: t0},
			err:  domain.ErrInvalidCommand,
		},
		{
			name:  "same key and same request is an idempotent no-op",
			given: hRequested(),
			when:  domain.RequestNotification{ID: nid, Request: validRequest(), IdempotencyKey: "key-1", Now: at(5)},
		},
		{
			name:  "same key and request equal once normalized is a no-op",
			given: hRequested(),
			when:  domain.RequestNotification{ID: nid, Request: explicitNormal, IdempotencyKey: "key-1", Now: at(5)},
		},
		{
			name:  "repeat after the notification moved on is still a no-op",
			given: hAllDelivered(),
			when:  domain.RequestNotification{ID: nid, Request: validRequest(), IdempotencyKey: "key-1", Now: at(50)},
		},
		{
			name:  "same key with a different request conflicts",
			given: hRequested(),
			when:  domain.RequestNotification{ID: nid, Request: withHigh, IdempotencyKey: "key-1", Now: at(5)},
			err:   domain.ErrIdempotencyConflict,
		},
		{
			name:  "a conflict is also an existing notification",
			given: hRequested(),
			when:  domain.RequestNotification{ID: nid, Request: withHigh, IdempotencyKey: "key-1", Now: at(5)},
			err:   domain.ErrNotificationExists,
		},
		{
			name:  "different key on an existing id",
			given: hRequested(),
			when:  domain.RequestNotification{ID: nid, Request: validRequest(), IdempotencyKey: "key-2", Now: at(5)},
			err:   domain.ErrNotificationExists,
		},
	}
}

func TestDecideRequestNotification(t *testing.T) {
	t.Parallel()
	runDecideCases(t, requestNotificationCases())
}

func TestDecideRequestNotificationIdempotentAfterStorage(t *testing.T) {
	t.Parallel()
	// Template vars come back from storage as json.Number; a repeat of the
	// original request (with an int) must still be recognised.
	r := validRequest()
	r.Content = nil
	r.Template = &domain.TemplateRef{ID: "otp", Vars: map[string]any{"attempts": 3, "code": "1"}}
	first, err := domain.DecideNotification(domain.Notification{}, domain.RequestNotification{ID: nid, Request: r, IdempotencyKey: "k", Now: t0})
	if err != nil || len(first) != 1 {
		t.Fatalf("first request: %v, %v", first, err)
	}
	typ, data, err := domain.MarshalEvent(first[0])
	if err != nil {
		t.Fatal(err)
	}
	stored, err := domain.UnmarshalEvent(typ, data)
	if err != nil {
		t.Fatal(err)
	}
	state := domain.ReplayNotification([]domain.Event{stored})
	again, err := domain.DecideNotification(state, domain.RequestNotification{ID: nid, Request: r, IdempotencyKey: "k", Now: at(1)})
	if err != nil || again != nil {
		t.Errorf("repeat after storage = %v, %v; want nil, nil", again, err)
	}
	r.Template.Vars["attempts"] = 4
	if _, err := domain.DecideNotification(state, domain.RequestNotification{ID: nid, Request: r, IdempotencyKey: "k", Now: at(1)}); !errors.Is(err, domain.ErrIdempotencyConflict) {
		t.Errorf("changed vars: error = %v, want ErrIdempotencyConflict", err)
	}
}

func TestDecideRepeatNamingLatestTemplateMatchesPinnedOriginal(t *testing.T) {
	t.Parallel()
	// The original was accepted with "latest" pinned to version 3; a
	// repeat still asking for "latest" is the same request, one naming
	// another version is not.
	pinned := validRequest()
	pinned.Content = nil
	pinned.Template = &domain.TemplateRef{ID: "otp", Version: 3, Vars: map[string]any{"code": "1"}}
	state := domain.ReplayNotification([]domain.Event{domain.NotificationRequested{
		NotificationID: nid, Request: pinned.Normalized(), IdempotencyKey: "k", RequestedAt: t0,
	}})
	latest := pinned
	latest.Template = &domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "1"}}
	if again, err := domain.DecideNotification(state, domain.RequestNotification{ID: nid, Request: latest, IdempotencyKey: "k", Now: at(1)}); err != nil || again != nil {
		t.Errorf("repeat naming the latest version = %v, %v; want nil, nil", again, err)
	}
	other := pinned
	other.Template = &domain.TemplateRef{ID: "otp", Version: 2, Vars: map[string]any{"code": "1"}}
	if _, err := domain.DecideNotification(state, domain.RequestNotification{ID: nid, Request: other, IdempotencyKey: "k", Now: at(1)}); !errors.Is(err, domain.ErrIdempotencyConflict) {
		t.Errorf("repeat naming version 2: error = %v, want ErrIdempotencyConflict", err)
	}
}

func TestDecideRequestNotificationReportsValidationFields(t *testing.T) {
	t.Parallel()
	r := validRequest()
	r.Priority = "urgent"
	r.Recipient.Email = "x"
	_, err := domain.DecideNotification(domain.Notification{}, domain.RequestNotification{ID: nid, Request: r, Now: t0})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("error = %v, want a *ValidationError with 2 fields", err)
	}
}

func planDeliveriesCases() []decideCase {
	onlyEmail := validRequest()
	onlyEmail.Channels = []domain.Channel{email}
	plans := []domain.DeliveryPlan{{Channel: email, Address: addressOf(email)}, {Channel: webhook, Address: addressOf(webhook)}}

	policy := &domain.PolicyRecord{RecipientID: "user-42", ProfileVersion: 2, Rules: []string{"quiet hours 22:00-07:00"}}
	held := domain.NotificationHeld{Until: at(600), Reason: "quiet hours", HeldAt: at(1)}
	return []decideCase{
		{
			name:  "quiet hours: the policy and a hold instead of plans",
			given: hRequested(),
			when:  domain.PlanDeliveries{Plans: plans, HoldUntil: at(600), HoldReason: "quiet hours", Policy: policy, Now: at(1)},
			then:  evs(domain.PolicyApplied{Policy: *policy, AppliedAt: at(1)}, held),
		},
		{
			name:  "held: planning before the hold ends",
			given: hist(hRequested(), evs(held)),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(599)},
			err:   domain.ErrNotDue,
		},
		{
			name:  "held: planned once the hold ends",
			given: hist(hRequested(), evs(held)),
			when:  domain.PlanDeliveries{Plans: plans, Policy: policy, Now: at(600)},
			then: evs(domain.PolicyApplied{Policy: *policy, AppliedAt: at(600)},
				domain.DeliveryPlanned{DeliveryID: "email-1", Channel: email, Address: addressOf(email), PlannedAt: at(600)},
				domain.DeliveryPlanned{DeliveryID: "webhook-1", Channel: webhook, Address: addressOf(webhook), PlannedAt: at(600)}),
		},
		{
			name:  "a hold without a reason",
			given: hRequested(),
			when:  domain.PlanDeliveries{HoldUntil: at(600), Now: at(1)},
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "plans and suppressions",
			given: hRequested(),
			when: domain.PlanDeliveries{
				Plans:        plans,
				Suppressions: []domain.Suppression{{Channel: sms, Reason: "opted out"}},
				Now:          at(1),
			},
			then: evs(planned(email), planned(webhook), suppressed(sms, "opted out")),
		},
		{
			name:  "everything suppressed is still a plan",
			given: hRequested(),
			when:  domain.PlanDeliveries{Suppressions: []domain.Suppression{{Channel: sms, Reason: "opted out"}}, Now: at(1)},
			then:  evs(suppressed(sms, "opted out")),
		},
		{
			name:  "scheduled notification once due",
			given: evs(requestedWith(scheduledRequest())),
			when:  domain.PlanDeliveries{Plans: plans[:1], Now: at(30)},
			then: evs(domain.DeliveryPlanned{
				DeliveryID: "email-1", Channel: email, Address: addressOf(email), PlannedAt: at(30),
			}),
		},
		{
			name: "not requested",
			when: domain.PlanDeliveries{Plans: plans, Now: at(1)},
			err:  domain.ErrNotificationNotFound,
		},
		{
			name:  "already planned",
			given: hPlanned(),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(2)},
			err:   domain.ErrAlreadyPlanned,
		},
		{
			name:  "already planned with only suppressions",
			given: hist(hRequested(), evs(suppressed(sms, "opted out"))),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(2)},
			err:   domain.ErrAlreadyPlanned,
		},
		{
			name:  "before scheduled_at",
			given: evs(requestedWith(scheduledRequest())),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(29)},
			err:   domain.ErrNotDue,
		},
		{
			name:  "cancelled",
			given: hist(hRequested(), evs(cancelled(at(1)))),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(2)},
			err:   domain.ErrNotificationCancelled,
		},
		{
			name:  "expired by event",
			given: hist(hExpiring(), evs(expired(at(60)))),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(61)},
			err:   domain.ErrNotificationExpired,
		},
		{
			name:  "expires_at reached",
			given: hExpiring(),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(60)},
			err:   domain.ErrNotificationExpired,
		},
		{
			name:  "just before expires_at",
			given: hExpiring(),
			when:  domain.PlanDeliveries{Plans: plans[:1], Now: at(1)},
			then:  evs(planned(email)),
		},
		{
			name:  "empty plan",
			given: hRequested(),
			when:  domain.PlanDeliveries{Now: at(1)},
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "unknown channel",
			given: hRequested(),
			when:  domain.PlanDeliveries{Plans: []domain.DeliveryPlan{{Channel: "fax", Address: "123"}}, Now: at(1)},
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "channel planned twice",
			given: hRequested(),
			when: domain.PlanDeliveries{
				Plans:        plans[:1],
				Suppressions: []domain.Suppression{{Channel: email, Reason: "x"}},
				Now:          at(1),
			},
			err: domain.ErrInvalidCommand,
		},
		{
			name:  "plan without address",
			given: hRequested(),
			when:  domain.PlanDeliveries{Plans: []domain.DeliveryPlan{{Channel: email}}, Now: at(1)},
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "channel the request did not allow",
			given: evs(requestedWith(onlyEmail)),
			when:  domain.PlanDeliveries{Plans: plans, Now: at(1)},
			err:   domain.ErrInvalidCommand,
		},
	}
}

func TestDecidePlanDeliveries(t *testing.T) {
	t.Parallel()
	runDecideCases(t, planDeliveriesCases())
}

func recordAttemptCases() []decideCase {
	return []decideCase{
		{
			name:  "first attempt of a planned delivery",
			given: hPlanned(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(2)},
			then:  evs(attempted("email-1", 1, at(2))),
		},
		{
			name:  "retry once due",
			given: hEmailRetry(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(10)},
			then:  evs(attempted("email-1", 2, at(10))),
		},
		{
			name:  "retry before due",
			given: hEmailRetry(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(9)},
			err:   domain.ErrRetryNotDue,
		},
		{
			name:  "already in flight",
			given: hEmailInFlight(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(3)},
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "first attempt with a lease",
			given: hPlanned(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Lease: 30 * time.Second, Now: at(2)},
			then: evs(domain.DeliveryAttempted{
				DeliveryID: "email-1", Attempt: 1, AttemptedAt: at(2), LeaseUntil: at(2).Add(30 * time.Second),
			}),
		},
		{
			name:  "in flight, lease still running",
			given: hist(hPlanned(), evs(leased("email-1", 1, at(2), at(5)))),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(4)},
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "in flight, lease over: taken over as the next attempt",
			given: hist(hPlanned(), evs(leased("email-1", 1, at(2), at(5)))),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(5)},
			then:  evs(attempted("email-1", 2, at(5))),
		},
		{
			name:  "lease over but the outcome arrived",
			given: hist(hPlanned(), evs(leased("email-1", 1, at(2), at(5)), succeeded("email-1", 1, false, at(3)))),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(6)},
			err:   domain.ErrDeliveryAlreadySucceeded,
		},
		{
			name:  "already sent",
			given: hEmailSent(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(4)},
			err:   domain.ErrDeliveryAlreadySucceeded,
		},
		{
			name:  "receipt overtook the success record",
			given: hist(hEmailInFlight(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(3)))),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(4)},
			err:   domain.ErrDeliveryAlreadySucceeded,
		},
		{
			name:  "dead-lettered",
			given: hEmailDead(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(4)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "suppressed",
			given: hSMSSuppressed(),
			when:  domain.RecordAttempt{DeliveryID: "sms-1", Now: at(2)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "unknown delivery",
			given: hPlanned(),
			when:  domain.RecordAttempt{DeliveryID: "email-2", Now: at(2)},
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name: "unknown notification",
			when: domain.RecordAttempt{DeliveryID: "email-1", Now: at(2)},
			err:  domain.ErrNotificationNotFound,
		},
		{
			name:  "cancelled",
			given: hist(hPlanned(), evs(cancelled(at(2)))),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(2)},
			err:   domain.ErrNotificationCancelled,
		},
		{
			name:  "expires_at reached",
			given: hExpiringPlanned(),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(60)},
			err:   domain.ErrNotificationExpired,
		},
		{
			name:  "expired by event",
			given: hist(hExpiringPlanned(), evs(expired(at(61)))),
			when:  domain.RecordAttempt{DeliveryID: "email-1", Now: at(61)},
			err:   domain.ErrNotificationExpired,
		},
		{
			name:  "resent delivery",
			given: hist(hEmailSent(), evs(resent(at(5), resendOf(email, 2)))),
			when:  domain.RecordAttempt{DeliveryID: "email-2", Now: at(6)},
			then:  evs(attempted("email-2", 1, at(6))),
		},
	}
}

func TestDecideRecordAttempt(t *testing.T) {
	t.Parallel()
	runDecideCases(t, recordAttemptCases())
}

func recordSuccessCases() []decideCase {
	return []decideCase{
		{
			name:  "provider accepted",
			given: hEmailInFlight(),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, ProviderMessageID: "pm-email-1", Now: at(3)},
			then:  evs(succeeded("email-1", 1, false, at(3))),
		},
		{
			name:  "confirmed",
			given: hist(hPlanned(), evs(attempted("webhook-1", 1, at(2)))),
			when:  domain.RecordSuccess{DeliveryID: "webhook-1", Attempt: 1, ProviderMessageID: "pm-webhook-1", Confirmed: true, Now: at(3)},
			then:  evs(succeeded("webhook-1", 1, true, at(3))),
		},
		{
			name:  "attempt 0 means the attempt in flight",
			given: hist(hEmailRetry(), evs(attempted("email-1", 2, at(10)))),
			when:  domain.RecordSuccess{DeliveryID: "email-1", ProviderMessageID: "pm-email-1", Now: at(11)},
			then:  evs(succeeded("email-1", 2, false, at(11))),
		},
		{
			name:  "stale attempt",
			given: hist(hEmailRetry(), evs(attempted("email-1", 2, at(10)))),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, Now: at(11)},
			err:   domain.ErrStaleAttempt,
		},
		{
			name:  "second success",
			given: hEmailSent(),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, Now: at(4)},
			err:   domain.ErrDeliveryAlreadySucceeded,
		},
		{
			name:  "no attempt started",
			given: hPlanned(),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, Now: at(4)},
			err:   domain.ErrDeliveryNotInFlight,
		},
		{
			name:  "waiting for a retry",
			given: hEmailRetry(),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Now: at(4)},
			err:   domain.ErrDeliveryNotInFlight,
		},
		{
			name:  "dead-lettered",
			given: hEmailDead(),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, Now: at(4)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "after cancellation the started attempt is still recorded",
			given: hist(hEmailInFlight(), evs(cancelled(at(2)))),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, ProviderMessageID: "pm-email-1", Now: at(3)},
			then:  evs(succeeded("email-1", 1, false, at(3))),
		},
		{
			name:  "after expiry the started attempt is still recorded",
			given: hist(hExpiringPlanned(), evs(attempted("email-1", 1, at(59)), expired(at(60)))),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, ProviderMessageID: "pm-email-1", Now: at(61)},
			then:  evs(succeeded("email-1", 1, false, at(61))),
		},
		{
			name:  "receipt overtook the success record",
			given: hist(hEmailInFlight(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(3)))),
			when:  domain.RecordSuccess{DeliveryID: "email-1", Attempt: 1, ProviderMessageID: "pm-email-1", Now: at(4)},
			then:  evs(succeeded("email-1", 1, false, at(4))),
		},
		{
			name:  "unknown delivery",
			given: hEmailInFlight(),
			when:  domain.RecordSuccess{DeliveryID: "sms-1", Now: at(3)},
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name: "unknown notification",
			when: domain.RecordSuccess{DeliveryID: "email-1", Now: at(3)},
			err:  domain.ErrNotificationNotFound,
		},
	}
}

func TestDecideRecordSuccess(t *testing.T) {
	t.Parallel()
	runDecideCases(t, recordSuccessCases())
}

func recordFailureCases() []decideCase {
	return []decideCase{
		{
			name:  "retryable failure schedules a retry",
			given: hEmailInFlight(),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "421 try later", Retryable: true, RetryAt: at(10), Now: at(3)},
			then:  evs(failed("email-1", 1, "421 try later", true, at(3)), retry("email-1", 2, at(10))),
		},
		{
			name:  "permanent failure dead-letters",
			given: hEmailInFlight(),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "550 no such user", Now: at(3)},
			then:  evs(failed("email-1", 1, "550 no such user", false, at(3)), dead("email-1", 1, "550 no such user", at(3))),
		},
		{
			name:  "retryable without a retry time: the policy gave up",
			given: hist(hEmailRetry(), evs(attempted("email-1", 2, at(10)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Reason: "421", Retryable: true, Now: at(11)},
			then:  evs(failed("email-1", 2, "421", true, at(11)), dead("email-1", 2, "retries exhausted: 421", at(11))),
		},
		{
			name:  "retryable but the notification was cancelled",
			given: hist(hEmailInFlight(), evs(cancelled(at(2)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "421", Retryable: true, RetryAt: at(10), Now: at(3)},
			then:  evs(failed("email-1", 1, "421", true, at(3)), dead("email-1", 1, "notification cancelled: 421", at(3))),
		},
		{
			name:  "retryable but the notification expired",
			given: hist(hExpiringPlanned(), evs(attempted("email-1", 1, at(59)), expired(at(60)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "421", Retryable: true, RetryAt: at(70), Now: at(61)},
			then:  evs(failed("email-1", 1, "421", true, at(61)), dead("email-1", 1, "notification expired: 421", at(61))),
		},
		{
			name:  "retry would come at expires_at",
			given: hist(hExpiringPlanned(), evs(attempted("email-1", 1, at(2)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "421", Retryable: true, RetryAt: at(60), Now: at(3)},
			then:  evs(failed("email-1", 1, "421", true, at(3)), dead("email-1", 1, "retry would come after expires_at: 421", at(3))),
		},
		{
			name:  "retry before expires_at",
			given: hist(hExpiringPlanned(), evs(attempted("email-1", 1, at(2)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "421", Retryable: true, RetryAt: at(59), Now: at(3)},
			then:  evs(failed("email-1", 1, "421", true, at(3)), retry("email-1", 2, at(59))),
		},
		{
			name:  "stale attempt",
			given: hist(hEmailRetry(), evs(attempted("email-1", 2, at(10)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "late", Now: at(11)},
			err:   domain.ErrStaleAttempt,
		},
		{
			name:  "no attempt started",
			given: hPlanned(),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "x", Now: at(3)},
			err:   domain.ErrDeliveryNotInFlight,
		},
		{
			name:  "already sent",
			given: hEmailSent(),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "x", Now: at(4)},
			err:   domain.ErrDeliveryAlreadySucceeded,
		},
		{
			name:  "receipt confirmed it while in flight",
			given: hist(hEmailInFlight(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(3)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "timeout", Now: at(4)},
			err:   domain.ErrDeliveryAlreadySucceeded,
		},
		{
			name:  "receipt bounced it while in flight",
			given: hist(hEmailInFlight(), evs(receipt("email-1", domain.ReceiptBounced, "mailbox full", at(3)))),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "timeout", Now: at(4)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "dead-lettered",
			given: hEmailDead(),
			when:  domain.RecordFailure{DeliveryID: "email-1", Attempt: 1, Reason: "x", Now: at(4)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "unknown delivery",
			given: hEmailInFlight(),
			when:  domain.RecordFailure{DeliveryID: "email-9", Reason: "x", Now: at(4)},
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name: "unknown notification",
			when: domain.RecordFailure{DeliveryID: "email-1", Reason: "x", Now: at(4)},
			err:  domain.ErrNotificationNotFound,
		},
	}
}

func TestDecideRecordFailure(t *testing.T) {
	t.Parallel()
	runDecideCases(t, recordFailureCases())
}

func recordReceiptCases() []decideCase {
	return []decideCase{
		{
			name:  "delivered receipt for a sent email",
			given: hEmailSent(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, ProviderMessageID: "pm-email-1", Now: at(4)},
			then:  evs(receipt("email-1", domain.ReceiptDelivered, "", at(4))),
		},
		{
			name:  "bounce for a sent email",
			given: hEmailSent(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptBounced, ProviderMessageID: "pm-email-1", Reason: "mailbox full", Now: at(4)},
			then:  evs(receipt("email-1", domain.ReceiptBounced, "mailbox full", at(4))),
		},
		{
			name:  "failed receipt for a sent email",
			given: hEmailSent(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptFailed, ProviderMessageID: "pm-email-1", Reason: "carrier rejected", Now: at(4)},
			then:  evs(receipt("email-1", domain.ReceiptFailed, "carrier rejected", at(4))),
		},
		{
			name:  "opened after delivered",
			given: hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(4)))),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptOpened, ProviderMessageID: "pm-email-1", Now: at(5)},
			then:  evs(receipt("email-1", domain.ReceiptOpened, "", at(5))),
		},
		{
			name:  "receipt overtaking the success record",
			given: hEmailInFlight(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, ProviderMessageID: "pm-email-1", Now: at(3)},
			then:  evs(receipt("email-1", domain.ReceiptDelivered, "", at(3))),
		},
		{
			name:  "late receipt after read is recorded",
			given: hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptOpened, "", at(4)))),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, ProviderMessageID: "pm-email-1", Now: at(5)},
			then:  evs(receipt("email-1", domain.ReceiptDelivered, "", at(5))),
		},
		{
			name:  "duplicate receipt is a no-op",
			given: hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptDelivered, "", at(4)))),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, ProviderMessageID: "pm-email-1", Now: at(9)},
		},
		{
			name:  "duplicate bounce on a failed delivery is a no-op",
			given: hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptBounced, "mailbox full", at(4)))),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptBounced, ProviderMessageID: "pm-email-1", Reason: "mailbox full", Now: at(9)},
		},
		{
			name:  "new receipt after a bounce",
			given: hist(hEmailSent(), evs(receipt("email-1", domain.ReceiptBounced, "mailbox full", at(4)))),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptOpened, ProviderMessageID: "pm-email-1", Now: at(9)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "dead-lettered",
			given: hEmailDead(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, Now: at(9)},
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "never attempted",
			given: hPlanned(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, Now: at(9)},
			err:   domain.ErrDeliveryNotInFlight,
		},
		{
			name:  "unknown outcome",
			given: hEmailSent(),
			when:  domain.RecordReceipt{DeliveryID: "email-1", Outcome: "clicked", Now: at(9)},
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "unknown delivery",
			given: hEmailSent(),
			when:  domain.RecordReceipt{DeliveryID: "sms-1", Outcome: domain.ReceiptDelivered, Now: at(9)},
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name: "unknown notification",
			when: domain.RecordReceipt{DeliveryID: "email-1", Outcome: domain.ReceiptDelivered, Now: at(9)},
			err:  domain.ErrNotificationNotFound,
		},
	}
}

func TestDecideRecordReceipt(t *testing.T) {
	t.Parallel()
	runDecideCases(t, recordReceiptCases())
}

func markReadCases() []decideCase {
	return []decideCase{
		{
			name:  "delivered in-app message",
			given: hInAppDelivered(),
			when:  domain.MarkRead{DeliveryID: "inapp-1", Actor: "user-42", Now: at(5)},
			then:  evs(domain.NotificationRead{DeliveryID: "inapp-1", Actor: "user-42", ReadAt: at(5)}),
		},
		{
			name: "already read is a no-op",
			given: hist(hInAppDelivered(), evs(
				domain.NotificationRead{DeliveryID: "inapp-1", Actor: "user-42", ReadAt: at(5)})),
			when: domain.MarkRead{DeliveryID: "inapp-1", Actor: "user-42", Now: at(6)},
		},
		{
			name:  "not an in-app delivery",
			given: hAllDelivered(),
			when:  domain.MarkRead{DeliveryID: "webhook-1", Now: at(5)},
			err:   domain.ErrNotInApp,
		},
		{
			name:  "in-app not delivered yet",
			given: hPlanned(),
			when:  domain.MarkRead{DeliveryID: "inapp-1", Now: at(5)},
			err:   domain.ErrDeliveryNotDelivered,
		},
		{
			name:  "unknown delivery",
			given: hPlanned(),
			when:  domain.MarkRead{DeliveryID: "inapp-2", Now: at(5)},
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name: "unknown notification",
			when: domain.MarkRead{DeliveryID: "inapp-1", Now: at(5)},
			err:  domain.ErrNotificationNotFound,
		},
	}
}

func TestDecideMarkRead(t *testing.T) {
	t.Parallel()
	runDecideCases(t, markReadCases())
}

func cancelNotificationCases() []decideCase {
	cancel := domain.CancelNotification{Reason: "mistake", Actor: "ops", Now: at(2)}
	return []decideCase{
		{name: "accepted", given: hRequested(), when: cancel, then: evs(cancelled(at(2)))},
		{name: "scheduled", given: evs(requestedWith(scheduledRequest())), when: cancel, then: evs(cancelled(at(2)))},
		{name: "in progress", given: hEmailInFlight(), when: cancel, then: evs(cancelled(at(2)))},
		{name: "already cancelled is a no-op", given: hist(hRequested(), evs(cancelled(at(1)))), when: cancel},
		{name: "delivered", given: hAllDelivered(), when: cancel, err: domain.ErrNotificationFinished},
		{name: "partially delivered", given: hPartial(), when: cancel, err: domain.ErrNotificationFinished},
		{name: "failed", given: hAllFailed(), when: cancel, err: domain.ErrNotificationFinished},
		{name: "expired", given: hist(hExpiring(), evs(expired(at(60)))), when: cancel, err: domain.ErrNotificationFinished},
		{name: "unknown notification", when: cancel, err: domain.ErrNotificationNotFound},
	}
}

func TestDecideCancelNotification(t *testing.T) {
	t.Parallel()
	runDecideCases(t, cancelNotificationCases())
}

func expireNotificationCases() []decideCase {
	return []decideCase{
		{name: "at expires_at", given: hExpiring(), when: domain.ExpireNotification{Now: at(60)}, then: evs(expired(at(60)))},
		{name: "in progress past expires_at", given: hist(hExpiringPlanned(), evs(attempted("email-1", 1, at(2)))),
			when: domain.ExpireNotification{Now: at(61)}, then: evs(expired(at(61)))},
		{name: "before expires_at", given: hExpiring(), when: domain.ExpireNotification{Now: at(59)}, err: domain.ErrNotDue},
		{name: "no expiry", given: hRequested(), when: domain.ExpireNotification{Now: at(60)}, err: domain.ErrNoExpiry},
		{name: "already expired is a no-op", given: hist(hExpiring(), evs(expired(at(60)))), when: domain.ExpireNotification{Now: at(61)}},
		{name: "cancelled", given: hist(hExpiring(), evs(cancelled(at(1)))), when: domain.ExpireNotification{Now: at(60)}, err: domain.ErrNotificationCancelled},
		{name: "finished", given: hist(hExpiring(), evs(
			planned(email), attempted("email-1", 1, at(2)), succeeded("email-1", 1, false, at(3)))),
			when: domain.ExpireNotification{Now: at(60)}, err: domain.ErrNotificationFinished},
		{name: "unknown notification", when: domain.ExpireNotification{Now: at(60)}, err: domain.ErrNotificationNotFound},
	}
}

func TestDecideExpireNotification(t *testing.T) {
	t.Parallel()
	runDecideCases(t, expireNotificationCases())
}

func requestResendCases() []decideCase {
	resend := func(chs ...domain.Channel) domain.RequestResend {
		return domain.RequestResend{Channels: chs, Actor: "ops", Reason: "again", Now: at(20)}
	}
	return []decideCase{
		{
			name:  "one delivered channel",
			given: hAllDelivered(),
			when:  resend(email),
			then:  evs(resent(at(20), resendOf(email, 2))),
		},
		{
			name:  "every channel with a delivery, in channel order",
			given: hist(hAllDelivered(), evs(suppressed(sms, "opted out"))),
			when:  resend(),
			then:  evs(resent(at(20), resendOf(webhook, 2), resendOf(email, 2), resendOf(inapp, 2))),
		},
		{
			name:  "a resend of a resend repeats the latest",
			given: hist(hAllDelivered(), evs(resent(at(5), resendOf(email, 2)), attempted("email-2", 1, at(6)), succeeded("email-2", 1, false, at(7)))),
			when:  resend(email),
			then:  evs(resent(at(20), resendOf(email, 3))),
		},
		{
			name:  "a dead-lettered channel can be resent",
			given: hPartial(),
			when:  resend(webhook),
			then:  evs(resent(at(20), resendOf(webhook, 2))),
		},
		{
			name:  "a failed notification can be resent",
			given: hAllFailed(),
			when:  resend(),
			then:  evs(resent(at(20), resendOf(email, 2))),
		},
		{
			name:  "channel still planned",
			given: hPlanned(),
			when:  resend(email),
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "channel in flight",
			given: hEmailInFlight(),
			when:  resend(email),
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "channel waiting for a retry",
			given: hEmailRetry(),
			when:  resend(email),
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "one busy channel refuses the whole resend",
			given: hEmailSent(),
			when:  resend(email, webhook),
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "a resend still pending blocks another",
			given: hist(hAllDelivered(), evs(resent(at(5), resendOf(email, 2)))),
			when:  resend(email),
			err:   domain.ErrDeliveryInFlight,
		},
		{
			name:  "channel never planned",
			given: hAllDelivered(),
			when:  resend(slack),
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name:  "nothing planned yet",
			given: hRequested(),
			when:  resend(),
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name:  "suppressed channel",
			given: hist(hAllDelivered(), evs(suppressed(sms, "opted out"))),
			when:  resend(sms),
			err:   domain.ErrDeliveryClosed,
		},
		{
			name:  "only suppressed channels",
			given: hist(hRequested(), evs(suppressed(sms, "opted out"))),
			when:  resend(),
			err:   domain.ErrDeliveryNotFound,
		},
		{
			name:  "unknown channel",
			given: hAllDelivered(),
			when:  resend("fax"),
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "repeated channel",
			given: hAllDelivered(),
			when:  resend(email, email),
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "cancelled",
			given: hist(hEmailSent(), evs(cancelled(at(4)))),
			when:  resend(email),
			err:   domain.ErrNotificationCancelled,
		},
		{
			name:  "expired",
			given: hist(hExpiringPlanned(), evs(expired(at(60)))),
			when:  domain.RequestResend{Channels: []domain.Channel{email}, Now: at(61)},
			err:   domain.ErrNotificationExpired,
		},
		{
			name: "unknown notification",
			when: resend(email),
			err:  domain.ErrNotificationNotFound,
		},
	}
}

func TestDecideRequestResend(t *testing.T) {
	t.Parallel()
	runDecideCases(t, requestResendCases())
}

func TestDecideRejectsNilCommand(t *testing.T) {
	t.Parallel()
	runDecideCases(t, nilCommandCases())
}

func nilCommandCases() []decideCase {
	return []decideCase{{name: "nil command", given: hRequested(), when: nil, err: domain.ErrInvalidCommand}}
}

func TestResendErrorNamesEveryRefusedChannel(t *testing.T) {
	t.Parallel()
	given := hist(hEmailInFlight(), evs(suppressed(sms, "opted out")))
	_, err := domain.DecideNotification(replay(given), domain.RequestResend{Channels: []domain.Channel{email, sms, slack}, Now: at(5)})
	for _, want := range []error{domain.ErrDeliveryInFlight, domain.ErrDeliveryClosed, domain.ErrDeliveryNotFound} {
		if !errors.Is(err, want) {
			t.Errorf("error %v does not include %v", err, want)
		}
	}
}

// TestEverySentinelIsProduced checks every sentinel DecideNotification can
// return is expected by at least one given/when/then case.
func TestEverySentinelIsProduced(t *testing.T) {
	t.Parallel()
	decideSentinels := []error{
		domain.ErrInvalidRequest, domain.ErrInvalidCommand, domain.ErrNotificationNotFound,
		domain.ErrNotificationExists, domain.ErrIdempotencyConflict, domain.ErrAlreadyPlanned,
		domain.ErrNotDue, domain.ErrNotificationCancelled, domain.ErrNotificationExpired,
		domain.ErrNotificationFinished, domain.ErrNoExpiry, domain.ErrDeliveryNotFound,
		domain.ErrDeliveryInFlight, domain.ErrDeliveryNotInFlight, domain.ErrDeliveryAlreadySucceeded,
		domain.ErrDeliveryClosed, domain.ErrRetryNotDue, domain.ErrStaleAttempt,
		domain.ErrNotInApp, domain.ErrDeliveryNotDelivered,
	}
	produced := map[error]bool{}
	for _, cases := range [][]decideCase{requestNotificationCases(), planDeliveriesCases(), recordAttemptCases(), recordSuccessCases(), recordFailureCases(), recordReceiptCases(), markReadCases(), cancelNotificationCases(), expireNotificationCases(), requestResendCases(), nilCommandCases()} {
		for _, c := range cases {
			produced[c.err] = true
		}
	}
	for _, s := range decideSentinels {
		if !produced[s] {
			t.Errorf("no decide case expects %v", s)
		}
	}
}
