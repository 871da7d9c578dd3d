package commands

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"herald/commands/jsonbody"
	"herald/commands/problem"
	"herald/domain"
	"herald/infra/eventstore"
)

// ProblemTypeBase prefixes every problem type URI.
const ProblemTypeBase = problem.Base

// ProblemType is one entry of the catalogue of problems the command API
// answers with. Name, and hence the type URI, is stable: clients branch on
// it.
type ProblemType = problem.Type

// The catalogue.
var (
	ProblemValidationFailed     = ProblemType{Name: "validation-failed", Status: http.StatusUnprocessableEntity, Title: "The request is invalid"}
	ProblemTooManyItems         = ProblemType{Name: "too-many-items", Status: http.StatusUnprocessableEntity, Title: "The batch holds too many items"}
	ProblemMalformedJSON        = ProblemType{Name: "malformed-json", Status: http.StatusBadRequest, Title: "The body is not valid JSON for this request"}
	ProblemUnknownField         = ProblemType{Name: "unknown-field", Status: http.StatusBadRequest, Title: "The body has a field this request does not know"}
	ProblemUnsupportedMediaType = ProblemType{Name: "unsupported-media-type", Status: http.StatusUnsupportedMediaType, Title: "The body must be application/json"}
	ProblemBodyTooLarge         = ProblemType{Name: "body-too-large", Status: http.StatusRequestEntityTooLarge, Title: "The body is larger than allowed"}
	ProblemIdempotencyConflict  = ProblemType{Name: "idempotency-conflict", Status: http.StatusConflict, Title: "The Idempotency-Key was used with a different request"}
	ProblemConflict             = ProblemType{Name: "conflict", Status: http.StatusConflict, Title: "The notification's state does not allow this"}
	ProblemNotFound             = ProblemType{Name: "not-found", Status: http.StatusNotFound, Title: "Not found"}
	ProblemMethodNotAllowed     = ProblemType{Name: "method-not-allowed", Status: http.StatusMethodNotAllowed, Title: "Method not allowed"}
	ProblemContention           = ProblemType{Name: "contention", Status: http.StatusServiceUnavailable, Title: "The notification is changing too fast; try again"}
	ProblemUnavailable          = ProblemType{Name: "unavailable", Status: http.StatusServiceUnavailable, Title: "The service cannot take the request now"}
	ProblemInternal             = ProblemType{Name: "internal", Status: http.StatusInternalServerError, Title: "Internal error"}
)

// ProblemTypes returns the whole catalogue, for documentation (the OpenAPI
// document) and tests. The slice is fresh on every call.
func ProblemTypes() []ProblemType {
	return []ProblemType{
		ProblemValidationFailed, ProblemTooManyItems, ProblemMalformedJSON, ProblemUnknownField,
		ProblemUnsupportedMediaType, ProblemBodyTooLarge, ProblemIdempotencyConflict, ProblemConflict,
		ProblemNotFound, ProblemMethodNotAllowed, ProblemContention, ProblemUnavailable, ProblemInternal,
	}
}

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []domain.FieldError `json:"errors,omitempty"`
	// Items is set on a refused batch: the fate of every item.
	Items []batchItemJSON `json:"items,omitempty"`
}

// HTTP-level errors, turned into problems by problemFor.
var (
	errUnsupportedMediaType = jsonbody.ErrUnsupportedMediaType
	errRouteNotFound        = errors.New("no such route")
	errMethodNotAllowed     = errors.New("method not allowed on this route")
)

// malformedJSONError is a body that does not parse.
type malformedJSONError = jsonbody.MalformedError

// unknownFieldError is a body with a field the request type lacks.
type unknownFieldError = jsonbody.UnknownFieldError

// conflicts are the domain refusals that mean "not in this state".
var conflicts = []error{
	domain.ErrNotificationExists, domain.ErrNotificationCancelled, domain.ErrNotificationExpired,
	domain.ErrNotificationFinished, domain.ErrAlreadyPlanned, domain.ErrNotDue,
	domain.ErrDeliveryInFlight, domain.ErrDeliveryNotInFlight, domain.ErrDeliveryAlreadySucceeded,
	domain.ErrDeliveryClosed, domain.ErrRetryNotDue, domain.ErrStaleAttempt, domain.ErrNotInApp,
	domain.ErrDeliveryNotDelivered,
}

// problemFor is the one place where errors become HTTP statuses and problem
// types. Only errors no input can cause (a failing disk, a bug) become 500.
func problemFor(err error) Problem {
	var (
		ve   *domain.ValidationError
		mbe  *http.MaxBytesError
		mje  *malformedJSONError
		ufe  *unknownFieldError
		pt   ProblemType
		flds []domain.FieldError
	)
	detail := err.Error()
	switch {
	case errors.As(err, &mbe):
		pt = ProblemBodyTooLarge
		detail = fmt.Sprintf("the body must be at most %d bytes", mbe.Limit)
	case errors.Is(err, errUnsupportedMediaType):
		pt = ProblemUnsupportedMediaType
	case errors.As(err, &ufe):
		pt = ProblemUnknownField
		flds = []domain.FieldError{{Field: ufe.Field, Problem: "unknown field"}}
	case errors.As(err, &mje):
		pt = ProblemMalformedJSON
	case errors.As(err, &ve):
		pt, flds = ProblemValidationFailed, ve.Fields
		detail = fmt.Sprintf("%d invalid field(s); see errors", len(ve.Fields))
	case errors.Is(err, ErrTooManyItems):
		pt = ProblemTooManyItems
	case errors.Is(err, domain.ErrIdempotencyConflict):
		pt = ProblemIdempotencyConflict
		detail = "this Idempotency-Key was first used with a different request; use a new key for a new notification"
	case errors.Is(err, domain.ErrNotificationNotFound), errors.Is(err, ErrUnknownChannel), errors.Is(err, errRouteNotFound):
		pt = ProblemNotFound
	case isConflict(err):
		pt = ProblemConflict
	case errors.Is(err, domain.ErrDeliveryNotFound):
		pt = ProblemNotFound
	case errors.Is(err, domain.ErrInvalidRequest), errors.Is(err, domain.ErrInvalidCommand),
		errors.Is(err, domain.ErrInvalidChannel), errors.Is(err, domain.ErrInvalidReceiptOutcome),
		errors.Is(err, domain.ErrInvalidPriority):
		pt = ProblemValidationFailed
	case errors.Is(err, errMethodNotAllowed):
		pt = ProblemMethodNotAllowed
	case errors.Is(err, ErrContention):
		pt = ProblemContention
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, eventstore.ErrClosed):
		pt = ProblemUnavailable
	default:
		pt = ProblemInternal
		detail = "" // never leak internals
	}
	return Problem{Type: pt.URI(), Title: pt.Title, Status: pt.Status, Detail: detail, Errors: flds}
}

// Transient reports whether err from a handler may go away when the
// command is tried again (contention, a store unavailable or failing), as
// opposed to a refusal that a retry would meet again: the command API
// answers the first with a 5xx.
func Transient(err error) bool { return problemFor(err).Status >= 500 }

func isConflict(err error) bool {
	for _, c := range conflicts {
		if errors.Is(err, c) {
			return true
		}
	}
	return false
}

// writeProblem answers with p as application/problem+json.
func writeProblem(w http.ResponseWriter, p Problem) { problem.Write(w, p.Status, p) }

func writeJSON(w http.ResponseWriter, status int, v any) { problem.WriteJSON(w, status, v) }
