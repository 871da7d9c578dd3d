package domain

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors callers branch on. Decide wraps them with a short prefix
// naming the command and the delivery; compare with errors.Is.
var (
	// ErrInvalidRequest is what every *ValidationError unwraps to.
	ErrInvalidRequest = errors.New("invalid notification request")
	// ErrInvalidCommand means the command itself is malformed (a missing
	// ID, an unknown channel, an empty plan), as opposed to being refused
	// by the current state.
	ErrInvalidCommand = errors.New("invalid command")
	// ErrInvalidPriority is returned by ParsePriority for unknown values.
	ErrInvalidPriority = errors.New("invalid priority")
	// ErrInvalidChannel is returned by ParseChannel for unknown values.
	ErrInvalidChannel = errors.New("invalid channel")
	// ErrInvalidReceiptOutcome is returned by ParseReceiptOutcome for
	// unknown values.
	ErrInvalidReceiptOutcome = errors.New("invalid receipt outcome")

	// ErrNotificationNotFound means the notification was never requested.
	ErrNotificationNotFound = errors.New("notification not found")
	// ErrNotificationExists means a notification already lives under this
	// ID and the command would create another.
	ErrNotificationExists = errors.New("notification already exists")
	// ErrIdempotencyConflict means the ID (hence the idempotency key) was
	// reused with a different request. It wraps ErrNotificationExists, so a
	// caller that only cares that the notification exists catches it too.
	ErrIdempotencyConflict = fmt.Errorf("idempotency key reused with a different request: %w", ErrNotificationExists)
	// ErrAlreadyPlanned means deliveries were planned before.
	ErrAlreadyPlanned = errors.New("deliveries already planned")
	// ErrNotDue means the command came before its time (a scheduled send
	// before scheduled_at, an expiry before expires_at).
	ErrNotDue = errors.New("not due yet")
	// ErrNotificationCancelled means the notification was cancelled.
	ErrNotificationCancelled = errors.New("notification cancelled")
	// ErrNotificationExpired means the notification expired or its
	// expires_at has passed.
	ErrNotificationExpired = errors.New("notification expired")
	// ErrNotificationFinished means the notification already reached a
	// final outcome (delivered, partially delivered, failed or expired).
	ErrNotificationFinished = errors.New("notification already finished")
	// ErrNoExpiry means an expiry was requested for a notification without
	// expires_at.
	ErrNoExpiry = errors.New("notification has no expiry")

	// ErrDeliveryNotFound means no delivery has that ID, or no delivery
	// was ever planned on the channel a resend names.
	ErrDeliveryNotFound = errors.New("delivery not found")
	// ErrDeliveryInFlight means the delivery still has work under way
	// (an attempt in flight, or for a resend: planned, in flight or
	// waiting to retry).
	ErrDeliveryInFlight = errors.New("delivery in flight")
	// ErrDeliveryNotInFlight means an outcome was reported for a delivery
	// with no attempt under way.
	ErrDeliveryNotInFlight = errors.New("delivery not in flight")
	// ErrDeliveryAlreadySucceeded means the delivery was already sent,
	// delivered or read.
	ErrDeliveryAlreadySucceeded = errors.New("delivery already succeeded")
	// ErrDeliveryClosed means the delivery was suppressed or has failed for
	// good; only a resend can try that channel again.
	ErrDeliveryClosed = errors.New("delivery closed")
	// ErrRetryNotDue means an attempt came before the scheduled retry time.
	ErrRetryNotDue = errors.New("retry not due yet")
	// ErrStaleAttempt means an outcome names an attempt other than the one
	// in flight.
	ErrStaleAttempt = errors.New("outcome for a stale attempt")
	// ErrNotInApp means a read mark was given for a delivery on a channel
	// other than in-app.
	ErrNotInApp = errors.New("not an in-app delivery")
	// ErrDeliveryNotDelivered means a read mark came before the in-app
	// delivery was delivered.
	ErrDeliveryNotDelivered = errors.New("delivery not delivered yet")

	// ErrUnknownEventType means UnmarshalEvent or MarshalEvent met a type
	// this version of the package does not know.
	ErrUnknownEventType = errors.New("unknown event type")
	// ErrUnsupportedSchema means stored event data carries a schema version
	// this package cannot read.
	ErrUnsupportedSchema = errors.New("unsupported event schema version")
)

// FieldError names one invalid field of a request by its JSON path
// ("recipient.email", "channels[1]") and says what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// ValidationError lists every invalid field of a request, in a fixed order,
// so a client can fix them all in one round trip. It unwraps to
// ErrInvalidRequest.
type ValidationError struct {
	Fields []FieldError
}

// Error joins the field problems into one line.
func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Problem
	}
	return ErrInvalidRequest.Error() + ": " + strings.Join(parts, "; ")
}

// Unwrap returns ErrInvalidRequest.
func (e *ValidationError) Unwrap() error { return ErrInvalidRequest }
