package schedules

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

// ProblemTypeBase prefixes every problem type URI; it is the one the other
// command APIs use, so a client branches on the same names.
const ProblemTypeBase = problem.Base

// ProblemType is one entry of the catalogue of problems this API answers
// with. Name, and hence the type URI, is stable.
type ProblemType = problem.Type

// The catalogue. Names shared with the other command APIs mean the same
// thing there.
var (
	ProblemValidationFailed     = ProblemType{Name: "validation-failed", Status: http.StatusUnprocessableEntity, Title: "The request is invalid"}
	ProblemMalformedJSON        = ProblemType{Name: "malformed-json", Status: http.StatusBadRequest, Title: "The body is not valid JSON for this request"}
	ProblemUnknownField         = ProblemType{Name: "unknown-field", Status: http.StatusBadRequest, Title: "The body has a field this request does not know"}
	ProblemUnsupportedMediaType = ProblemType{Name: "unsupported-media-type", Status: http.StatusUnsupportedMediaType, Title: "The body's content type is not accepted here"}
	ProblemBodyTooLarge         = ProblemType{Name: "body-too-large", Status: http.StatusRequestEntityTooLarge, Title: "The body is larger than allowed"}
	ProblemConflict             = ProblemType{Name: "conflict", Status: http.StatusConflict, Title: "The schedule's state does not allow this"}
	ProblemNotFound             = ProblemType{Name: "not-found", Status: http.StatusNotFound, Title: "Not found"}
	ProblemMethodNotAllowed     = ProblemType{Name: "method-not-allowed", Status: http.StatusMethodNotAllowed, Title: "Method not allowed"}
	ProblemContention           = ProblemType{Name: "contention", Status: http.StatusServiceUnavailable, Title: "The schedule is changing too fast; try again"}
	ProblemUnavailable          = ProblemType{Name: "unavailable", Status: http.StatusServiceUnavailable, Title: "The service cannot take the request now"}
	ProblemInternal             = ProblemType{Name: "internal", Status: http.StatusInternalServerError, Title: "Internal error"}
)

// ProblemTypes returns the whole catalogue. The slice is fresh on every
// call.
func ProblemTypes() []ProblemType {
	return []ProblemType{
		ProblemValidationFailed, ProblemMalformedJSON, ProblemUnknownField, ProblemUnsupportedMediaType,
		ProblemBodyTooLarge, ProblemConflict, ProblemNotFound, ProblemMethodNotAllowed, ProblemContention,
		ProblemUnavailable, ProblemInternal,
	}
}

// Problem is an RFC 9457 problem details document.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []domain.FieldError `json:"errors,omitempty"`
}

var (
	errUnsupportedMediaType = jsonbody.ErrUnsupportedMediaType
	errRouteNotFound        = errors.New("no such route")
	errMethodNotAllowed     = errors.New("method not allowed on this route")
)

type malformedJSONError = jsonbody.MalformedError

type unknownFieldError = jsonbody.UnknownFieldError

var conflicts = []error{domain.ErrScheduleExists, domain.ErrScheduleDeleted, domain.ErrSchedulePaused}

// problemFor is the one place where errors become HTTP statuses. Only
// errors no input can cause (a failing disk, a bug) become 500.
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
	case errors.Is(err, domain.ErrScheduleNotFound), errors.Is(err, errRouteNotFound):
		pt = ProblemNotFound
	case errors.As(err, &ve):
		pt, flds = ProblemValidationFailed, ve.Fields
		detail = fmt.Sprintf("%d invalid field(s); see errors", len(ve.Fields))
	case isConflict(err):
		pt = ProblemConflict
	case errors.Is(err, domain.ErrInvalidRequest), errors.Is(err, domain.ErrInvalidCommand):
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
