package recipients

import (
	"errors"
	"fmt"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// MinUnsubscribeSecretLen is the shortest UnsubscribeSecret accepted: the
// secret keys the HMAC that makes unsubscribe links unforgeable.
const MinUnsubscribeSecretLen = 32

// DefaultUnsubscribeTTL is how long an unsubscribe link works when Deps
// leave UnsubscribeTTL zero. Links sit in mailboxes for months; a year
// keeps old messages' links working without making them eternal.
const DefaultUnsubscribeTTL = 365 * 24 * time.Hour

// Deps are what the service needs. Store, Clock and NewID are required.
type Deps struct {
	// Store is the event log the recipient streams live in.
	Store eventstore.Store
	// Clock gives the time of a command and of a token check; nothing here
	// reads the system clock.
	Clock func() time.Time
	// NewID returns a fresh, unique UUIDv7 string naming an event.
	NewID func() string

	// UnsubscribeSecret keys the unsubscribe link signatures. Empty turns
	// unsubscribe links off: UnsubscribeURL returns "" and
	// /v1/unsubscribe answers 404. Otherwise it must have at least
	// MinUnsubscribeSecretLen bytes. Rotating it invalidates every link
	// already sent.
	UnsubscribeSecret []byte
	// PublicURL is the externally reachable base URL of the API
	// ("https://herald.example.com"), which unsubscribe links start with.
	// Empty gives links relative to the host ("/v1/unsubscribe?...").
	PublicURL string
	// UnsubscribeTTL is how long a link works. Zero means
	// DefaultUnsubscribeTTL.
	UnsubscribeTTL time.Duration
}

func (d Deps) validate(op string) error {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("nil Store"))
	}
	if d.Clock == nil {
		errs = append(errs, errors.New("nil Clock"))
	}
	if d.NewID == nil {
		errs = append(errs, errors.New("nil NewID"))
	}
	if n := len(d.UnsubscribeSecret); n > 0 && n < MinUnsubscribeSecretLen {
		errs = append(errs, fmt.Errorf("UnsubscribeSecret of %d bytes: want at least %d", n, MinUnsubscribeSecretLen))
	}
	if d.UnsubscribeTTL < 0 {
		errs = append(errs, errors.New("negative UnsubscribeTTL"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Origin says who issued a command and in which flow; it becomes the
// metadata of every event the command appends.
type Origin struct {
	// Actor is who asked: the API key name for HTTP calls, "recipient" for
	// an unsubscribe link.
	Actor string
	// CorrelationID groups the events of one flow. Empty means the
	// recipient's stream name.
	CorrelationID string
	// CausationID is what caused the command (an HTTP request ID). Empty is
	// allowed.
	CausationID string
}

func (o Origin) metadata(id domain.RecipientID) eventstore.Metadata {
	corr := o.CorrelationID
	if corr == "" {
		corr = domain.RecipientStream(id)
	}
	return eventstore.Metadata{CorrelationID: corr, CausationID: o.CausationID, Actor: o.Actor}
}

// ErrContention means the recipient's stream kept changing under a
// command: every retry met a newer version. The command changed nothing;
// the caller may try again.
var ErrContention = errors.New("recipient stream kept changing; gave up after retries")

// Result is the outcome of a recipient command.
type Result struct {
	// Recipient is the state after the command (as loaded when nothing was
	// appended).
	Recipient domain.RecipientProfile
	// Changed is false when the command was an idempotent repeat and
	// appended nothing.
	Changed bool
	// Created is true when the command started the recipient's stream.
	Created bool
}
