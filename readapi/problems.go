package readapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// ProblemTypeBase prefixes every problem type URI (the same base the
// command API uses, so one client-side catalogue covers both).
const ProblemTypeBase = "https://herald.dev/problems/"

// ProblemType is one entry of the catalogue of problems the read API
// answers with. Name, and hence the type URI, is stable.
type ProblemType struct {
	Name   string
	Status int
	Title  string
}

// URI returns the problem's type URI.
func (p ProblemType) URI() string { return ProblemTypeBase + p.Name }

// The catalogue.
var (
	ProblemInvalidQuery     = ProblemType{"invalid-query", http.StatusBadRequest, "A query parameter is invalid"}
	ProblemNotFound         = ProblemType{"not-found", http.StatusNotFound, "Not found"}
	ProblemMethodNotAllowed = ProblemType{"method-not-allowed", http.StatusMethodNotAllowed, "Method not allowed"}
	ProblemConflict         = ProblemType{"conflict", http.StatusConflict, "The resource's state does not allow this"}
	ProblemUnavailable      = ProblemType{"unavailable", http.StatusServiceUnavailable, "The service cannot answer now"}
	ProblemInternal         = ProblemType{"internal", http.StatusInternalServerError, "Internal error"}
)

// ProblemTypes returns the whole catalogue. The slice is fresh on every call.
func ProblemTypes() []ProblemType {
	return []ProblemType{ProblemInvalidQuery, ProblemNotFound, ProblemMethodNotAllowed, ProblemConflict, ProblemUnavailable, ProblemInternal}
}

// Problem is an RFC 9457 problem details document. Errors names the
// invalid query parameters, in the shape the command API uses for fields.
type Problem struct {
	Type   string              `json:"type"`
	Title  string              `json:"title"`
	Status int                 `json:"status"`
	Detail string              `json:"detail,omitempty"`
	Errors []domain.FieldError `json:"errors,omitempty"`
}

var (
	errRouteNotFound    = errors.New("no such route")
	errMethodNotAllowed = errors.New("method not allowed on this route")
	errUnavailable      = errors.New("this view is not configured")
)

// paramError is a query parameter that does not parse or is out of range.
type paramError struct{ param, reason string }

func (e *paramError) Error() string { return fmt.Sprintf("query parameter %s: %s", e.param, e.reason) }

func badParam(param, reason string) error { return &paramError{param, reason} }

// problemFor is the one place where errors become HTTP statuses and problem
// types. Only errors no input can cause (a failing disk, a bug) become 500.
func problemFor(err error) Problem {
	var (
		pe   *paramError
		qe   *projections.QueryError
		pt   ProblemType
		flds []domain.FieldError
	)
	detail := err.Error()
	switch {
	case errors.As(err, &pe):
		pt, flds = ProblemInvalidQuery, []domain.FieldError{{Field: pe.param, Problem: pe.reason}}
	case errors.As(err, &qe):
		pt, flds = ProblemInvalidQuery, []domain.FieldError{{Field: qe.Param, Problem: qe.Reason}}
	case errors.Is(err, projections.ErrInvalidCursor):
		pt, flds = ProblemInvalidQuery, []domain.FieldError{{Field: "cursor", Problem: "not a cursor from a previous page"}}
	case errors.Is(err, projections.ErrInvalidQuery):
		pt = ProblemInvalidQuery
	case errors.Is(err, projections.ErrNotFound), errors.Is(err, eventstore.ErrStreamNotFound),
		errors.Is(err, projections.ErrUnknownProjection), errors.Is(err, errRouteNotFound):
		pt = ProblemNotFound
	case errors.Is(err, errMethodNotAllowed):
		pt = ProblemMethodNotAllowed
	case errors.Is(err, projections.ErrRebuildInProgress):
		pt = ProblemConflict
	case errors.Is(err, errUnavailable), errors.Is(err, eventstore.ErrClosed), errors.Is(err, projections.ErrNotRunning),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// A store that did not answer in time, or a request given up
		// (the server shutting down): worth trying again, as the
		// command API says with the same 503.
		pt = ProblemUnavailable
	default:
		pt, detail = ProblemInternal, "" // internal details stay in the logs
	}
	return Problem{Type: pt.URI(), Title: pt.Title, Status: pt.Status, Detail: detail, Errors: flds}
}

func writeProblem(w http.ResponseWriter, err error) {
	p := problemFor(err)
	if p.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSONAs(w, "application/problem+json", p.Status, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, "application/json", status, v)
}

func writeJSONAs(w http.ResponseWriter, contentType string, status int, v any) {
	body, err := fastjson.Marshal(v)
	if err != nil {
		contentType, status = "application/problem+json", http.StatusInternalServerError
		body = []byte(`{"type":"` + ProblemInternal.URI() + `","title":"Internal error","status":500}`)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
