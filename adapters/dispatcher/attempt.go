package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"herald/adapters/channel"
	"herald/commands"
	"herald/domain"
)

// attempt is the router handler of every channel: claim the delivery, send
// it, record the outcome, and tell the lanes whether and when it comes
// back. It returns an error (the lanes then put the delivery back after a
// pause) only when the ledger could not be read or written; a provider's
// failure is an outcome, not an error.
func (d *Dispatcher) attempt(msg *message.Message) error {
	ctx := msg.Context()
	w := work{
		notification: domain.NotificationID(msg.Metadata.Get(MetaNotification)),
		delivery:     domain.DeliveryID(msg.Metadata.Get(MetaDelivery)),
		channel:      domain.Channel(msg.Metadata.Get(MetaChannel)),
		priority:     domain.Priority(msg.Metadata.Get(MetaPriority)),
	}
	origin := commands.Origin{Actor: d.cfg.Actor, CausationID: msg.UUID}
	claim, err := d.cfg.Attempts.Start(ctx, commands.StartAttempt{
		Origin: origin, NotificationID: w.notification, DeliveryID: w.delivery, Lease: d.cfg.Lease,
	})
	switch {
	case err == nil:
	case errors.Is(err, domain.ErrDeliveryInFlight):
		// Another worker holds it (or held it and died): look again when
		// its lease may have ended.
		w.due = d.cfg.Clock().Add(d.cfg.Lease)
		setRetry(msg, w)
		return nil
	case errors.Is(err, domain.ErrRetryNotDue):
		if due := claim.Delivery.NextAttemptAt(); !due.IsZero() {
			w.due = due
			setRetry(msg, w)
		}
		return nil
	case settled(err):
		d.metrics.skipped.WithLabelValues(string(w.channel)).Inc()
		return nil
	default:
		return err
	}

	w.priority = claim.Notification.Priority() // the ledger's, not the lane guess
	d.sched.learn(w, claim.Delivery.Address())
	cc := d.cfg.Channels[w.channel]
	if n := retryCount(claim.Delivery, claim.Attempt, false); n > cc.Retry.MaxAttempts {
		// Only taking over attempts whose worker died (their leases ran
		// out with no outcome) counts past the budget: a delivery that
		// takes its process down with it would otherwise come back for
		// ever. It is dead-lettered unsent.
		return d.record(ctx, msg, w, commands.RecordOutcome{
			Origin: origin, NotificationID: w.notification, DeliveryID: w.delivery, Attempt: claim.Attempt,
			Reason: fmt.Sprintf("retries exhausted: attempt %d of at most %d, after attempts that ended without an outcome (their worker stopped)",
				n, cc.Retry.MaxAttempts),
		})
	}
	dest := addressKey{w.channel, claim.Delivery.Address()}
	window := retryWindowStart(claim.Notification, claim.Delivery)
	if now := d.cfg.Clock(); addressScoped[w.channel] {
		if wait := d.pauses.wait(dest, now); wait > 0 {
			until := now.Add(wait)
			// Its provider asked to slow down (another delivery to the
			// same address was told so): hold this one back until then,
			// without sending and without using up an attempt.
			return d.record(ctx, msg, w, commands.RecordOutcome{
				Origin: origin, NotificationID: w.notification, DeliveryID: w.delivery, Attempt: claim.Attempt,
				Reason:    "not sent: the provider asked to slow down until " + until.UTC().Format(time.RFC3339),
				Retryable: true, Throttled: true,
				RetryAt: cc.Retry.next(retryCount(claim.Delivery, claim.Attempt, true), window, now, until),
			})
		}
	}
	m, sendErr := buildMessage(ctx, claim, w, d.cfg.Renderer)
	var res channel.Result
	started := time.Now()
	if sendErr == nil {
		sendCtx, cancel := context.WithTimeout(ctx, cc.Timeout)
		res, sendErr = send(sendCtx, cc.Sender, m)
		cancel()
	}
	d.metrics.sendSeconds.WithLabelValues(string(w.channel)).Observe(time.Since(started).Seconds())

	out := commands.RecordOutcome{
		Origin: origin, NotificationID: w.notification, DeliveryID: w.delivery, Attempt: claim.Attempt,
	}
	now := d.cfg.Clock()
	var f *channel.Failure
	if sendErr == nil {
		out.Succeeded, out.ProviderMessageID, out.Confirmed = true, res.ProviderMessageID, res.Confirmed
		if m.Channel == domain.ChannelInApp && claim.Notification.Request().Template != nil {
			out.Rendered = &domain.Content{Subject: m.Subject, Body: m.Body, HTML: m.HTML}
		}
		d.metrics.attempts.WithLabelValues(string(w.channel), "succeeded").Inc()
	} else {
		f = channel.Classify(sendErr)
		out.Reason, out.Retryable, out.Throttled = f.Reason, f.Retryable, f.Throttled
		var notBefore time.Time
		if f.RetryAfter > 0 || f.Throttled {
			wait := max(f.RetryAfter, cc.ThrottlePause)
			notBefore = now.Add(wait)
			if addressScoped[w.channel] {
				d.pauses.pause(dest, now.Add(min(wait, cc.Retry.Max)), now)
			} else {
				d.limits[w.channel].pause(now.Add(min(wait, cc.MaxPause)))
			}
		}
		if f.Retryable {
			out.RetryAt = cc.Retry.next(retryCount(claim.Delivery, claim.Attempt, f.Throttled), window, now, notBefore)
		}
		outcome := "failed_permanent"
		if f.Retryable {
			outcome = "failed_retryable"
		}
		d.metrics.attempts.WithLabelValues(string(w.channel), outcome).Inc()
	}
	return d.record(ctx, msg, w, out)
}

// record appends an attempt's outcome and tells the lanes when the
// delivery comes back, if it does.
func (d *Dispatcher) record(ctx context.Context, msg *message.Message, w work, out commands.RecordOutcome) error {
	rec, err := d.cfg.Attempts.Record(ctx, out)
	if errors.Is(err, domain.ErrStaleAttempt) || errors.Is(err, domain.ErrDeliveryNotInFlight) || errors.Is(err, domain.ErrDeliveryAlreadySucceeded) {
		// Our lease ran out and another worker took over, or a receipt
		// overtook us: the ledger has moved on without this outcome.
		d.logger.Warn("outcome not recorded: attempt superseded", "notification", w.notification, "delivery", w.delivery, "err", err)
		return nil
	}
	if err != nil {
		// The provider has the message but the ledger does not know:
		// the lease makes the delivery come back, and the provider
		// dedupes the repeat by its idempotency key.
		return fmt.Errorf("record outcome: %w", err)
	}
	if rec.Delivery.Status() == domain.DeliveryStatusRetryScheduled {
		w.due = rec.Delivery.NextAttemptAt()
		setRetry(msg, w)
	}
	if rec.Delivery.Status() == domain.DeliveryStatusFailed {
		d.metrics.deadLettered.WithLabelValues(string(w.channel)).Inc()
	}
	return nil
}

// send calls the sender, turning a panic into a permanent failure so one
// bad message cannot take the worker down (the router's recoverer would
// only nack it, and it would come back forever).
func send(ctx context.Context, s channel.Sender, m channel.Message) (res channel.Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = channel.Permanent(fmt.Sprintf("adapter panic: %v", r), nil)
		}
	}()
	return s.Send(ctx, m)
}

// settled reports whether an attempt refusal means there is nothing left
// to do for the delivery.
func settled(err error) bool {
	for _, target := range []error{
		domain.ErrDeliveryAlreadySucceeded, domain.ErrDeliveryClosed, domain.ErrNotificationCancelled,
		domain.ErrNotificationExpired, domain.ErrNotificationNotFound, domain.ErrDeliveryNotFound,
		domain.ErrDeliveryNotInFlight,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// errTemplatesNotAvailable refuses, permanently, a notification naming a
// template when no renderer is configured: sending it with an empty body
// would be worse than saying so in the ledger.
var errTemplatesNotAvailable = channel.Permanent("no template renderer in this process", nil)

// buildMessage turns the claimed attempt into what the adapter sends,
// rendering the pinned template version for the delivery's channel.
func buildMessage(ctx context.Context, c commands.StartAttemptResult, w work, r Renderer) (channel.Message, error) {
	n := c.Notification
	req := n.Request()
	m := channel.Message{
		NotificationID: w.notification,
		DeliveryID:     w.delivery,
		IdempotencyKey: w.notification.DeliveryKey(w.delivery),
		Channel:        c.Delivery.Channel(),
		Address:        c.Delivery.Address(),
		Recipient:      req.Recipient.ID,
		Priority:       n.Priority(),
		Category:       n.Category(),
		Metadata:       req.Metadata,
		Attempt:        c.Attempt,
		CreatedAt:      n.RequestedAt(),
	}
	switch {
	case req.Content != nil:
		m.Subject, m.Body, m.HTML = req.Content.Subject, req.Content.Body, req.Content.HTML
	case req.Template != nil && r != nil:
		out, err := r.Render(ctx, *req.Template, m.Channel)
		if err != nil {
			// The version is pinned and was checked when the send was
			// accepted: a failure now will not pass on a retry.
			return m, channel.Permanent("render template "+req.Template.ID, err)
		}
		m.Subject, m.Body, m.HTML = out.Subject, out.Body, out.HTML
	default:
		return m, errTemplatesNotAvailable
	}
	return m, nil
}
