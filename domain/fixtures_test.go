package domain_test

import (
	"slices"
	"time"

	"herald/domain"
)

// Given/when/then fixtures. Every helper returns fresh values so table cases
// never share slices.

const nid = domain.NotificationID("n-1")

const (
	email   = domain.ChannelEmail
	webhook = domain.ChannelWebhook
	inapp   = domain.ChannelInApp
	sms     = domain.ChannelSMS
	slack   = domain.ChannelSlack
)

func evs(e ...domain.Event) []domain.Event { return e }

func hist(parts ...[]domain.Event) []domain.Event { return slices.Concat(parts...) }

func requestedWith(r domain.NotificationRequest) domain.Event {
	return domain.NotificationRequested{NotificationID: nid, Request: r.Normalized(), IdempotencyKey: "key-1", RequestedAt: t0}
}

// expiringRequest expires an hour after t0.
func expiringRequest() domain.NotificationRequest {
	r := validRequest()
	r.ExpiresAt = ptr(at(60))
	return r
}

func scheduledRequest() domain.NotificationRequest {
	r := validRequest()
	r.ScheduledAt = ptr(at(30))
	return r
}

func addressOf(ch domain.Channel) string { return validRequest().Recipient.Address(ch) }

func did(ch domain.Channel, n int) domain.DeliveryID { return domain.NewDeliveryID(ch, n) }

func planned(ch domain.Channel) domain.Event {
	return domain.DeliveryPlanned{DeliveryID: did(ch, 1), Channel: ch, Address: addressOf(ch), PlannedAt: at(1)}
}

func suppressed(ch domain.Channel, reason string) domain.Event {
	return domain.DeliverySuppressed{Channel: ch, Reason: reason, SuppressedAt: at(1)}
}

func leased(id domain.DeliveryID, n int, tm, until time.Time) domain.Event {
	return domain.DeliveryAttempted{DeliveryID: id, Attempt: n, AttemptedAt: tm, LeaseUntil: until}
}

func attempted(id domain.DeliveryID, n int, tm time.Time) domain.Event {
	return domain.DeliveryAttempted{DeliveryID: id, Attempt: n, AttemptedAt: tm}
}

func succeeded(id domain.DeliveryID, n int, confirmed bool, tm time.Time) domain.Event {
	return domain.DeliverySucceeded{DeliveryID: id, Attempt: n, ProviderMessageID: "pm-" + string(id), Confirmed: confirmed, SucceededAt: tm}
}

func failed(id domain.DeliveryID, n int, reason string, retryable bool, tm time.Time) domain.Event {
	return domain.DeliveryFailed{DeliveryID: id, Attempt: n, Reason: reason, Retryable: retryable, FailedAt: tm}
}

func retry(id domain.DeliveryID, next int, due time.Time) domain.Event {
	return domain.DeliveryRetryScheduled{DeliveryID: id, NextAttempt: next, DueAt: due}
}

func dead(id domain.DeliveryID, attempts int, reason string, tm time.Time) domain.Event {
	return domain.DeliveryDeadLettered{DeliveryID: id, Attempts: attempts, Reason: reason, DeadLetteredAt: tm}
}

func receipt(id domain.DeliveryID, o domain.ReceiptOutcome, reason string, tm time.Time) domain.Event {
	return domain.DeliveryReceiptRecorded{DeliveryID: id, Outcome: o, ProviderMessageID: "pm-" + string(id), Reason: reason, ReceivedAt: tm}
}

func resendOf(ch domain.Channel, n int) domain.ResendDelivery {
	return domain.ResendDelivery{DeliveryID: did(ch, n), Repeats: did(ch, n-1), Channel: ch, Address: addressOf(ch)}
}

func resent(tm time.Time, ds ...domain.ResendDelivery) domain.Event {
	return domain.ResendRequested{Deliveries: ds, Actor: "ops", Reason: "again", RequestedAt: tm}
}

func cancelled(tm time.Time) domain.Event {
	return domain.NotificationCancelled{Reason: "mistake", Actor: "ops", CancelledAt: tm}
}

func expired(tm time.Time) domain.Event { return domain.NotificationExpired{ExpiredAt: tm} }

// Standard histories.

func hRequested() []domain.Event { return evs(requestedWith(validRequest())) }

func hExpiring() []domain.Event { return evs(requestedWith(expiringRequest())) }

// hPlanned: email, webhook and in-app planned at at(1).
func hPlanned() []domain.Event {
	return hist(hRequested(), evs(planned(email), planned(webhook), planned(inapp)))
}

func hExpiringPlanned() []domain.Event {
	return hist(hExpiring(), evs(planned(email), planned(webhook), planned(inapp)))
}

func hEmailInFlight() []domain.Event {
	return hist(hPlanned(), evs(attempted(did(email, 1), 1, at(2))))
}

func hEmailSent() []domain.Event {
	return hist(hEmailInFlight(), evs(succeeded(did(email, 1), 1, false, at(3))))
}

// hEmailRetry: the first email attempt failed; the second is due at at(10).
func hEmailRetry() []domain.Event {
	return hist(hEmailInFlight(), evs(
		failed(did(email, 1), 1, "421 try later", true, at(3)),
		retry(did(email, 1), 2, at(10)),
	))
}

func hEmailDead() []domain.Event {
	return hist(hEmailInFlight(), evs(
		failed(did(email, 1), 1, "550 no such user", false, at(3)),
		dead(did(email, 1), 1, "550 no such user", at(3)),
	))
}

func hInAppDelivered() []domain.Event {
	return hist(hPlanned(), evs(
		attempted(did(inapp, 1), 1, at(2)),
		succeeded(did(inapp, 1), 1, true, at(2)),
	))
}

// hAllDelivered: email sent, webhook and in-app confirmed.
func hAllDelivered() []domain.Event {
	return hist(hEmailSent(), evs(
		attempted(did(webhook, 1), 1, at(2)), succeeded(did(webhook, 1), 1, true, at(3)),
		attempted(did(inapp, 1), 1, at(2)), succeeded(did(inapp, 1), 1, true, at(3)),
	))
}

// hPartial: email sent, webhook dead-lettered, in-app confirmed.
func hPartial() []domain.Event {
	return hist(hEmailSent(), evs(
		attempted(did(webhook, 1), 1, at(2)),
		failed(did(webhook, 1), 1, "HTTP 410", false, at(3)),
		dead(did(webhook, 1), 1, "HTTP 410", at(3)),
		attempted(did(inapp, 1), 1, at(2)), succeeded(did(inapp, 1), 1, true, at(3)),
	))
}

// hAllFailed: only email planned, and it dead-lettered.
func hAllFailed() []domain.Event {
	return hist(hRequested(), evs(
		planned(email),
		attempted(did(email, 1), 1, at(2)),
		failed(did(email, 1), 1, "550", false, at(3)),
		dead(did(email, 1), 1, "550", at(3)),
	))
}

func hSMSSuppressed() []domain.Event {
	return hist(hPlanned(), evs(suppressed(sms, "opted out")))
}

func replay(events []domain.Event) domain.Notification { return domain.ReplayNotification(events) }
