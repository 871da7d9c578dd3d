package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// NotificationCommand is a command DecideNotification understands. The
// interface is sealed: only the command types of this package implement it.
type NotificationCommand interface {
	notificationCommand()
}

// RequestNotification creates a notification. ID is derived by the caller
// (deterministically from IdempotencyKey when the client sent one), so a
// repeated request lands on the same stream.
type RequestNotification struct {
	ID             NotificationID
	Request        NotificationRequest
	IdempotencyKey string
	Now            time.Time
}

// DeliveryPlan is one delivery to create: a channel and the address resolved
// for it.
type DeliveryPlan struct {
	Channel Channel
	Address string
}

// Suppression is a channel that will not be used, with the reason.
type Suppression struct {
	Channel Channel
	Reason  string
}

// PlanDeliveries fixes the notification's deliveries. The caller resolves
// channels and addresses (recipient profile, preferences, quiet hours) and
// passes the outcome; the domain checks it is due and consistent.
type PlanDeliveries struct {
	Plans        []DeliveryPlan
	Suppressions []Suppression
	// HoldUntil, when after Now, means the preferences say "not now"
	// (quiet hours): NotificationHeld is recorded instead of plans, with
	// HoldReason, and the notification is planned again at HoldUntil.
	HoldUntil  time.Time
	HoldReason string
	// Policy, when set, is recorded (PolicyApplied) before the plans or
	// the hold it decided.
	Policy *PolicyRecord
	Now    time.Time
}

// RecordAttempt records that an attempt on a delivery is starting. Lease,
// when positive, bounds how long the attempt keeps its claim without an
// outcome: after Now+Lease another worker may start a new attempt (the
// first worker is presumed dead). An attempt in flight whose lease has
// ended may be taken over; one whose lease runs, or that has none, may not.
type RecordAttempt struct {
	DeliveryID DeliveryID
	Lease      time.Duration
	Now        time.Time
}

// RecordSuccess records that the attempt in flight succeeded. Attempt 0 means
// "the attempt in flight"; any other number must name it. Confirmed is true
// when delivery itself is confirmed (2xx from a webhook or chat, an in-app
// write) and false when the provider only accepted it (email, SMS).
type RecordSuccess struct {
	DeliveryID        DeliveryID
	Attempt           int
	ProviderMessageID string
	Confirmed         bool
	// Rendered, for an in-app delivery of a template, is the text shown.
	Rendered *Content
	Now      time.Time
}

// RecordFailure records that the attempt in flight failed. Attempt 0 means
// "the attempt in flight". RetryAt is when the caller's retry policy wants
// the next attempt; zero means the policy gave up.
type RecordFailure struct {
	DeliveryID DeliveryID
	Attempt    int
	Reason     string
	Retryable  bool
	Throttled  bool // see DeliveryFailed.Throttled
	RetryAt    time.Time
	Now        time.Time
}

// RecordReceipt records a provider callback about a delivery.
type RecordReceipt struct {
	DeliveryID        DeliveryID
	Outcome           ReceiptOutcome
	ProviderMessageID string
	Reason            string
	Now               time.Time
}

// MarkRead records that the recipient read an in-app delivery.
type MarkRead struct {
	DeliveryID DeliveryID
	Now        time.Time
	Actor      string
}

// CancelNotification stops further attempts.
type CancelNotification struct {
	Reason string
	Actor  string
	Now    time.Time
}

// ExpireNotification marks the notification expired once expires_at passed.
type ExpireNotification struct {
	Now time.Time
}

// RequestResend creates a new delivery on each chosen channel, repeating the
// latest delivery there. Empty Channels means every channel that has a
// delivery that was not suppressed.
type RequestResend struct {
	Channels []Channel
	Actor    string
	Reason   string
	// IdempotencyKey, when set, is scoped to Actor: a repeat of an
	// earlier resend with the key is a no-op when it asks for the same
	// (the channels it resolves to and the reason), ErrIdempotencyConflict
	// when not.
	IdempotencyKey string
	Now            time.Time
}

func (RequestNotification) notificationCommand() {}
func (PlanDeliveries) notificationCommand()      {}
func (RecordAttempt) notificationCommand()       {}
func (RecordSuccess) notificationCommand()       {}
func (RecordFailure) notificationCommand()       {}
func (RecordReceipt) notificationCommand()       {}
func (MarkRead) notificationCommand()            {}
func (CancelNotification) notificationCommand()  {}
func (ExpireNotification) notificationCommand()  {}
func (RequestResend) notificationCommand()       {}

// DecideNotification returns the events cmd causes on state, or an error
// wrapping one of the package's sentinels (or a *ValidationError). It is
// pure: time comes from cmd.Now, IDs from the command or from the state.
// A (nil, nil) result means the command was already applied (an idempotent
// repeat) and nothing should be appended. Event times are cmd.Now in UTC.
func DecideNotification(state Notification, cmd NotificationCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case RequestNotification:
		return decideRequest(state, c)
	case PlanDeliveries:
		return decidePlan(state, c)
	case RecordAttempt:
		return decideAttempt(state, c)
	case RecordSuccess:
		return decideSuccess(state, c)
	case RecordFailure:
		return decideFailure(state, c)
	case RecordReceipt:
		return decideReceipt(state, c)
	case MarkRead:
		return decideMarkRead(state, c)
	case CancelNotification:
		return decideCancel(state, c)
	case ExpireNotification:
		return decideExpire(state, c)
	case RequestResend:
		return decideResend(state, c)
	}
	return nil, fmt.Errorf("decide notification: unsupported command %T: %w", cmd, ErrInvalidCommand)
}

func decideRequest(n Notification, c RequestNotification) ([]Event, error) {
	const op = "request notification"
	if c.ID == "" {
		return nil, fmt.Errorf("%s: empty id: %w", op, ErrInvalidCommand)
	}
	if n.exists {
		switch {
		case !sameRequest(n.request, c.Request):
			return nil, fmt.Errorf("%s %s: %w", op, n.id, ErrIdempotencyConflict)
		case n.idempotencyKey != c.IdempotencyKey:
			return nil, fmt.Errorf("%s %s: %w", op, n.id, ErrNotificationExists)
		}
		return nil, nil
	}
	if err := c.Request.Validate(c.Now); err != nil {
		return nil, err
	}
	return []Event{NotificationRequested{
		NotificationID: c.ID,
		Request:        c.Request.Normalized(),
		IdempotencyKey: c.IdempotencyKey,
		RequestedAt:    c.Now.UTC(),
	}}, nil
}

// checkOpen refuses work on a notification that does not exist, was
// cancelled or has expired (by event or by the clock).
func checkOpen(op string, n Notification, now time.Time) error {
	switch {
	case !n.exists:
		return fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	case n.cancelled:
		return fmt.Errorf("%s %s: %w", op, n.id, ErrNotificationCancelled)
	case n.expiredAt(now):
		return fmt.Errorf("%s %s: %w", op, n.id, ErrNotificationExpired)
	}
	return nil
}

func decidePlan(n Notification, c PlanDeliveries) ([]Event, error) {
	const op = "plan deliveries"
	if err := checkOpen(op, n, c.Now); err != nil {
		return nil, err
	}
	if n.planned {
		return nil, fmt.Errorf("%s %s: %w", op, n.id, ErrAlreadyPlanned)
	}
	if at := n.ReleaseAt(); !at.IsZero() && c.Now.Before(at) {
		return nil, fmt.Errorf("%s %s: due at %s: %w", op, n.id, at.Format(time.RFC3339), ErrNotDue)
	}
	now := c.Now.UTC()
	var events []Event
	if c.Policy != nil {
		events = append(events, PolicyApplied{Policy: *c.Policy, AppliedAt: now})
	}
	if c.HoldUntil.After(c.Now) {
		if c.HoldReason == "" {
			return nil, fmt.Errorf("%s %s: a hold needs a reason: %w", op, n.id, ErrInvalidCommand)
		}
		return append(events, NotificationHeld{Until: c.HoldUntil.UTC(), Reason: c.HoldReason, HeldAt: now}), nil
	}
	if len(c.Plans)+len(c.Suppressions) == 0 {
		return nil, fmt.Errorf("%s %s: no plans and no suppressions: %w", op, n.id, ErrInvalidCommand)
	}

	// Each channel appears once, and only channels the request allows.
	seen := map[Channel]bool{}
	checkChannel := func(ch Channel) error {
		switch {
		case !ch.Valid():
			return fmt.Errorf("%s %s: unknown channel %q: %w", op, n.id, ch, ErrInvalidCommand)
		case seen[ch]:
			return fmt.Errorf("%s %s: channel %q planned twice: %w", op, n.id, ch, ErrInvalidCommand)
		case len(n.request.Channels) > 0 && !slices.Contains(n.request.Channels, ch):
			return fmt.Errorf("%s %s: channel %q not in the request: %w", op, n.id, ch, ErrInvalidCommand)
		}
		seen[ch] = true
		return nil
	}

	for _, p := range c.Plans {
		if err := checkChannel(p.Channel); err != nil {
			return nil, err
		}
		if p.Address == "" {
			return nil, fmt.Errorf("%s %s: channel %q without address: %w", op, n.id, p.Channel, ErrInvalidCommand)
		}
		events = append(events, DeliveryPlanned{
			DeliveryID: NewDeliveryID(p.Channel, 1),
			Channel:    p.Channel,
			Address:    p.Address,
			Priority:   n.lanePriority(),
			PlannedAt:  now,
		})
	}
	for _, s := range c.Suppressions {
		if err := checkChannel(s.Channel); err != nil {
			return nil, err
		}
		events = append(events, DeliverySuppressed{Channel: s.Channel, Reason: s.Reason, SuppressedAt: now})
	}
	return events, nil
}

// findDelivery returns the delivery or a wrapped ErrDeliveryNotFound.
func findDelivery(op string, n Notification, id DeliveryID) (Delivery, error) {
	d, ok := n.Delivery(id)
	if !ok {
		return Delivery{}, fmt.Errorf("%s %s/%s: %w", op, n.id, id, ErrDeliveryNotFound)
	}
	return d, nil
}

// settledError explains why a delivery that is not in flight cannot take an
// outcome or an attempt.
func settledError(op string, n Notification, d Delivery) error {
	var err error
	switch {
	case d.status.Succeeded():
		err = ErrDeliveryAlreadySucceeded
	case d.status == DeliveryStatusFailed, d.status == DeliveryStatusSuppressed:
		err = ErrDeliveryClosed
	case d.status == DeliveryStatusInFlight:
		err = ErrDeliveryInFlight
	default:
		err = ErrDeliveryNotInFlight
	}
	return fmt.Errorf("%s %s/%s: status %s: %w", op, n.id, d.id, d.status, err)
}

func decideAttempt(n Notification, c RecordAttempt) ([]Event, error) {
	const op = "record attempt"
	if err := checkOpen(op, n, c.Now); err != nil {
		return nil, err
	}
	d, err := findDelivery(op, n, c.DeliveryID)
	if err != nil {
		return nil, err
	}
	switch d.status {
	case DeliveryStatusPlanned:
	case DeliveryStatusRetryScheduled:
		if c.Now.Before(d.nextAttemptAt) {
			return nil, fmt.Errorf("%s %s/%s: due at %s: %w", op, n.id, d.id, d.nextAttemptAt.Format(time.RFC3339Nano), ErrRetryNotDue)
		}
	case DeliveryStatusInFlight:
		// Taking over an abandoned attempt: only once its lease is over.
		if !d.attemptOpen || d.nextAttemptAt.IsZero() || c.Now.Before(d.nextAttemptAt) {
			return nil, settledError(op, n, d)
		}
	default:
		return nil, settledError(op, n, d)
	}
	e := DeliveryAttempted{DeliveryID: d.id, Attempt: d.attempts + 1, AttemptedAt: c.Now.UTC()}
	if c.Lease > 0 {
		e.LeaseUntil = c.Now.Add(c.Lease).UTC()
	}
	return []Event{e}, nil
}

// checkAttempt makes sure an outcome is about the attempt in flight: a late
// report about an earlier attempt must not settle the current one.
func checkAttempt(op string, n Notification, d Delivery, attempt int) error {
	if attempt != 0 && attempt != d.attempts {
		return fmt.Errorf("%s %s/%s: attempt %d, in flight %d: %w", op, n.id, d.id, attempt, d.attempts, ErrStaleAttempt)
	}
	return nil
}

func decideSuccess(n Notification, c RecordSuccess) ([]Event, error) {
	const op = "record success"
	// No cancelled/expired check: the attempt already started, and the
	// ledger must record what happened to it.
	if !n.exists {
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	}
	d, err := findDelivery(op, n, c.DeliveryID)
	if err != nil {
		return nil, err
	}
	// attemptOpen, not the status, decides: a receipt may have overtaken
	// this record and already moved the status on.
	if !d.attemptOpen {
		return nil, settledError(op, n, d)
	}
	if err := checkAttempt(op, n, d, c.Attempt); err != nil {
		return nil, err
	}
	return []Event{DeliverySucceeded{
		DeliveryID:        d.id,
		Attempt:           d.attempts,
		ProviderMessageID: c.ProviderMessageID,
		Confirmed:         c.Confirmed,
		SucceededAt:       c.Now.UTC(),
		Rendered:          c.Rendered,
	}}, nil
}

func decideFailure(n Notification, c RecordFailure) ([]Event, error) {
	const op = "record failure"
	if !n.exists {
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	}
	d, err := findDelivery(op, n, c.DeliveryID)
	if err != nil {
		return nil, err
	}
	// Only a delivery still in flight can fail: once a receipt confirmed
	// or failed it, a late failure report is outdated.
	if !d.attemptOpen || d.status != DeliveryStatusInFlight {
		return nil, settledError(op, n, d)
	}
	if err := checkAttempt(op, n, d, c.Attempt); err != nil {
		return nil, err
	}
	now := c.Now.UTC()
	events := []Event{DeliveryFailed{
		DeliveryID: d.id, Attempt: d.attempts, Reason: c.Reason, Retryable: c.Retryable, Throttled: c.Throttled, FailedAt: now,
	}}

	var giveUp string
	switch {
	case !c.Retryable:
	case c.RetryAt.IsZero():
		giveUp = "retries exhausted"
	case n.cancelled:
		giveUp = "notification cancelled"
	case n.expiredAt(now):
		giveUp = "notification expired"
	case n.request.ExpiresAt != nil && !c.RetryAt.Before(*n.request.ExpiresAt):
		giveUp = "retry would come after expires_at"
	default:
		return append(events, DeliveryRetryScheduled{
			DeliveryID: d.id, NextAttempt: d.attempts + 1, DueAt: c.RetryAt.UTC(),
		}), nil
	}
	reason := c.Reason
	if giveUp != "" {
		reason = giveUp + ": " + c.Reason
	}
	return append(events, DeliveryDeadLettered{
		DeliveryID: d.id, Attempts: d.attempts, Reason: reason, DeadLetteredAt: now,
	}), nil
}

func decideReceipt(n Notification, c RecordReceipt) ([]Event, error) {
	const op = "record receipt"
	if !n.exists {
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	}
	if !c.Outcome.Valid() {
		return nil, fmt.Errorf("%s %s/%s: outcome %q: %w", op, n.id, c.DeliveryID, c.Outcome, ErrInvalidCommand)
	}
	d, err := findDelivery(op, n, c.DeliveryID)
	if err != nil {
		return nil, err
	}
	// Providers repeat callbacks; an identical one changes nothing. This
	// comes before the status check because the first copy may have moved
	// the delivery to failed.
	if d.hasReceipt(receiptKey{c.Outcome, c.ProviderMessageID, c.Reason}) {
		return nil, nil
	}
	switch d.status {
	case DeliveryStatusInFlight, DeliveryStatusSent, DeliveryStatusDelivered, DeliveryStatusRead:
	case DeliveryStatusFailed, DeliveryStatusSuppressed:
		return nil, fmt.Errorf("%s %s/%s: status %s: %w", op, n.id, d.id, d.status, ErrDeliveryClosed)
	default:
		return nil, fmt.Errorf("%s %s/%s: status %s: %w", op, n.id, d.id, d.status, ErrDeliveryNotInFlight)
	}
	return []Event{DeliveryReceiptRecorded{
		DeliveryID:        d.id,
		Outcome:           c.Outcome,
		ProviderMessageID: c.ProviderMessageID,
		Reason:            c.Reason,
		ReceivedAt:        c.Now.UTC(),
	}}, nil
}

func decideMarkRead(n Notification, c MarkRead) ([]Event, error) {
	const op = "mark read"
	if !n.exists {
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	}
	d, err := findDelivery(op, n, c.DeliveryID)
	if err != nil {
		return nil, err
	}
	switch {
	case d.channel != ChannelInApp:
		return nil, fmt.Errorf("%s %s/%s: %w", op, n.id, d.id, ErrNotInApp)
	case d.status == DeliveryStatusRead:
		return nil, nil
	case d.status != DeliveryStatusDelivered:
		return nil, fmt.Errorf("%s %s/%s: status %s: %w", op, n.id, d.id, d.status, ErrDeliveryNotDelivered)
	}
	return []Event{NotificationRead{DeliveryID: d.id, Actor: c.Actor, ReadAt: c.Now.UTC()}}, nil
}

func decideCancel(n Notification, c CancelNotification) ([]Event, error) {
	const op = "cancel notification"
	switch {
	case !n.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	case n.cancelled:
		return nil, nil
	case n.status.Finished():
		return nil, fmt.Errorf("%s %s: status %s: %w", op, n.id, n.status, ErrNotificationFinished)
	}
	return []Event{NotificationCancelled{Reason: c.Reason, Actor: c.Actor, CancelledAt: c.Now.UTC()}}, nil
}

func decideExpire(n Notification, c ExpireNotification) ([]Event, error) {
	const op = "expire notification"
	switch {
	case !n.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	case n.request.ExpiresAt == nil:
		return nil, fmt.Errorf("%s %s: %w", op, n.id, ErrNoExpiry)
	case n.expired:
		return nil, nil
	case n.cancelled:
		return nil, fmt.Errorf("%s %s: %w", op, n.id, ErrNotificationCancelled)
	case n.status.Finished():
		return nil, fmt.Errorf("%s %s: status %s: %w", op, n.id, n.status, ErrNotificationFinished)
	case c.Now.Before(*n.request.ExpiresAt):
		return nil, fmt.Errorf("%s %s: expires at %s: %w", op, n.id, n.request.ExpiresAt.Format(time.RFC3339Nano), ErrNotDue)
	}
	return []Event{NotificationExpired{ExpiredAt: c.Now.UTC()}}, nil
}

func decideResend(n Notification, c RequestResend) ([]Event, error) {
	const op = "request resend"
	if !n.exists {
		return nil, fmt.Errorf("%s: %w", op, ErrNotificationNotFound)
	}
	channels := c.Channels
	if len(channels) == 0 {
		for _, ch := range AllChannels() {
			if d, ok := n.LatestDelivery(ch); ok && d.status != DeliveryStatusSuppressed {
				channels = append(channels, ch)
			}
		}
	}
	if c.IdempotencyKey != "" {
		// A repeat is judged before anything else: the original may
		// have made the channels busy, or the notification finished.
		if orig, ok := n.ResendByKey(c.Actor, c.IdempotencyKey); ok {
			var had []Channel
			for _, d := range orig.Deliveries {
				had = append(had, d.Channel)
			}
			if orig.Reason != c.Reason || !sameChannels(had, channels) {
				return nil, fmt.Errorf("%s %s: %w", op, n.id, ErrIdempotencyConflict)
			}
			return nil, nil
		}
	}
	if err := checkOpen(op, n, c.Now); err != nil {
		return nil, err
	}
	if len(channels) == 0 {
		return nil, fmt.Errorf("%s %s: no delivery to resend: %w", op, n.id, ErrDeliveryNotFound)
	}

	var out []ResendDelivery
	var errs []error
	seen := map[Channel]bool{}
	for _, ch := range channels {
		if !ch.Valid() || seen[ch] {
			return nil, fmt.Errorf("%s %s: unknown or repeated channel %q: %w", op, n.id, ch, ErrInvalidCommand)
		}
		seen[ch] = true
		d, ok := n.LatestDelivery(ch)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s %s: channel %s: %w", op, n.id, ch, ErrDeliveryNotFound))
		case d.status == DeliveryStatusSuppressed:
			errs = append(errs, fmt.Errorf("%s %s: channel %s suppressed: %w", op, n.id, ch, ErrDeliveryClosed))
		case d.status.Pending():
			// Resending while the channel is still busy would race the
			// running delivery and double-send.
			errs = append(errs, fmt.Errorf("%s %s/%s: status %s: %w", op, n.id, d.id, d.status, ErrDeliveryInFlight))
		default:
			out = append(out, ResendDelivery{
				DeliveryID: n.nextDeliveryID(ch), Repeats: d.id, Channel: ch, Address: d.address,
			})
		}
	}
	// All or nothing, and every refused channel is named at once.
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return []Event{ResendRequested{Deliveries: out, Actor: c.Actor, Reason: c.Reason, Priority: n.lanePriority(),
		IdempotencyKey: c.IdempotencyKey, RequestedAt: c.Now.UTC()}}, nil
}

// sameChannels reports whether a and b hold the same channels, in any
// order.
func sameChannels(a, b []Channel) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
