package templates

import (
	"errors"
	"fmt"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// Deps are what the service needs. All fields are required.
type Deps struct {
	// Store is the event log the template streams live in.
	Store eventstore.Store
	// Clock gives the time of a command; nothing here reads the system
	// clock.
	Clock func() time.Time
	// NewID returns a fresh, unique UUIDv7 string naming an event.
	NewID func() string
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Origin says who issued a command and in which flow; it becomes the
// metadata of every event the command appends.
type Origin struct {
	// Actor is who asked: the API key name for HTTP calls.
	Actor string
	// CorrelationID groups the events of one flow. Empty means the
	// template's stream name.
	CorrelationID string
	// CausationID is what caused the command (an HTTP request ID). Empty is
	// allowed.
	CausationID string
}

func (o Origin) metadata(id domain.TemplateID) eventstore.Metadata {
	corr := o.CorrelationID
	if corr == "" {
		corr = domain.TemplateStream(id)
	}
	return eventstore.Metadata{CorrelationID: corr, CausationID: o.CausationID, Actor: o.Actor}
}

// ErrContention means the template's stream kept changing under a command:
// every retry met a newer version. The command changed nothing; the caller
// may try again.
var ErrContention = errors.New("template stream kept changing; gave up after retries")

// Result is the outcome of a template command.
type Result struct {
	// Template is the state after the command (as loaded when nothing was
	// appended).
	Template domain.Template
	// Changed is false when the command was an idempotent repeat and
	// appended nothing.
	Changed bool
}
