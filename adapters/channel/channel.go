// Package channel holds what every channel adapter shares with the
// dispatcher: the Message one attempt delivers, the Sender each adapter
// implements, the Failure that classifies an unsuccessful attempt, and an
// outbound HTTP client that refuses private and metadata addresses (SSRF
// guard). It imports no channel and no engine.
package channel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"herald/domain"
)

// Message is one attempt to deliver one delivery of a notification. Every
// field is filled by the dispatcher from the notification's events; an
// adapter never reads the event log or the views itself.
type Message struct {
	NotificationID domain.NotificationID
	DeliveryID     domain.DeliveryID
	// IdempotencyKey is stable for the delivery across every attempt and
	// every process: the adapter hands it to the provider (webhook-id header,
	// email Message-ID, SMS client reference) so a receiver can dedupe.
	IdempotencyKey string
	Channel        domain.Channel
	// Address is the delivery's resolved address: a URL for webhook and chat
	// channels, an email address, an E.164 phone number, or the recipient id
	// for webpush and inapp.
	Address   string
	Recipient string // recipient id, may be empty
	Priority  domain.Priority
	Category  string
	Subject   string
	Body      string
	HTML      string
	Metadata  map[string]string
	Attempt   int       // 1 for the first attempt
	CreatedAt time.Time // when the notification was requested
}

// Result is what a successful attempt reports.
type Result struct {
	// ProviderMessageID is the provider's id for the message, when it
	// returns one; receipts are later matched against it.
	ProviderMessageID string
	// Confirmed is true when the attempt itself proves delivery (a 2xx from
	// a webhook or chat endpoint, an in-app write) and false when the
	// provider only took the message and a receipt confirms it later (email,
	// SMS): "sent" and "delivered" are never confused.
	Confirmed bool
}

// Sender delivers messages over one channel. Send must be safe for
// concurrent use, must honour ctx's deadline, and returns either a Result or
// an error; errors that are not a *Failure are treated as retryable.
type Sender interface {
	Send(ctx context.Context, m Message) (Result, error)
}

// SenderFunc adapts a function to Sender.
type SenderFunc func(ctx context.Context, m Message) (Result, error)

// Send calls f.
func (f SenderFunc) Send(ctx context.Context, m Message) (Result, error) { return f(ctx, m) }

// Failure is an unsuccessful attempt, classified by the adapter that knows
// its provider's protocol.
type Failure struct {
	// Retryable is true for transient failures (timeouts, connection errors,
	// HTTP 5xx and 429, SMTP 4xx) and false for permanent ones (HTTP 4xx,
	// SMTP 5xx, an address the guard refuses).
	Retryable bool
	// RetryAfter is the provider's own back-off request (HTTP Retry-After,
	// a 429), zero when it gave none. The dispatcher slows the whole channel
	// down, not only this delivery.
	RetryAfter time.Duration
	// Throttled is true when the provider said "too many requests".
	Throttled bool
	// Expired is true when the address itself is gone for good (web push
	// 404/410): the dispatcher records that the subscription expired.
	Expired bool
	// Reason is a short human explanation, safe to store in events: it never
	// contains credentials.
	Reason string
	Err    error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("%s: %v", f.Reason, f.Err)
	}
	return f.Reason
}

func (f *Failure) Unwrap() error { return f.Err }

// Retryable returns a retryable Failure.
func Retryable(reason string, err error) *Failure {
	return &Failure{Retryable: true, Reason: reason, Err: err}
}

// Permanent returns a Failure that no retry can fix.
func Permanent(reason string, err error) *Failure {
	return &Failure{Reason: reason, Err: err}
}

// Classify returns err as a *Failure: the one it wraps, or a retryable one
// for anything else (a bare error means the adapter could not tell, and at
// least once delivery prefers another try).
func Classify(err error) *Failure {
	if err == nil {
		return nil
	}
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Failure{Retryable: true, Reason: "timeout", Err: err}
	}
	return &Failure{Retryable: true, Reason: err.Error(), Err: err}
}
