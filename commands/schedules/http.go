package schedules

import (
	"context"
	"fmt"
	"herald/commands/jsonbody"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"herald/domain"
)

// DefaultMaxBodyBytes bounds a request body when Options leave it zero.
const DefaultMaxBodyBytes = 1 << 20

// Options configure the schedule endpoints.
type Options struct {
	// Actor names the caller; nil or "" means "anonymous".
	Actor func(*http.Request) string
	// IsAdmin is accepted for symmetry with the other APIs; no schedule
	// endpoint needs an admin today.
	IsAdmin func(*http.Request) bool
	// Middleware wraps every route, outermost first.
	Middleware []func(http.Handler) http.Handler
	// MaxBodyBytes bounds every body; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// NewHTTP returns the schedule endpoints:
//
//	POST   /v1/schedules              create: 201, 200 for a repeat
//	GET    /v1/schedules/{id}         the schedule with next_firing
//	POST   /v1/schedules/{id}/pause   200
//	POST   /v1/schedules/{id}/resume  200
//	DELETE /v1/schedules/{id}         200 with status deleted
//
// The create body is {"id"?, "cron" | "every" ("15m", a Go duration),
// "time_zone" (default UTC), "start_at"?, "end_at"?, "request": a
// notification request without scheduled_at or expires_at}. Errors are
// application/problem+json. It panics on a nil svc.
func NewHTTP(svc *Service, opt Options) http.Handler {
	if svc == nil {
		panic("schedules.NewHTTP: nil Service")
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = DefaultMaxBodyBytes
	}
	a := &api{svc: svc, opt: opt}
	r := chi.NewRouter()
	r.Use(recoverProblem)
	r.Use(opt.Middleware...)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errRouteNotFound)) })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errMethodNotAllowed)) })
	r.Post("/v1/schedules", a.create)
	r.Get("/v1/schedules/{id}", a.get)
	r.Post("/v1/schedules/{id}/pause", a.change(svc.Pause))
	r.Post("/v1/schedules/{id}/resume", a.change(svc.Resume))
	r.Delete("/v1/schedules/{id}", a.change(svc.Delete))
	return r
}

type api struct {
	svc *Service
	opt Options
}

func recoverProblem(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeProblem(w, problemFor(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (a *api) origin(r *http.Request) Origin {
	o := Origin{CorrelationID: headerID(r, "X-Correlation-ID"), CausationID: headerID(r, "X-Request-ID")}
	if o.CausationID == "" {
		o.CausationID = middleware.GetReqID(r.Context())
	}
	if a.opt.Actor != nil {
		o.Actor = a.opt.Actor(r)
	}
	if o.Actor == "" {
		o.Actor = "anonymous"
	}
	return o
}

func headerID(r *http.Request, name string) string {
	v := r.Header.Get(name)
	if len(v) > 128 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return ""
		}
	}
	return v
}

type createRequestJSON struct {
	ID       domain.ScheduleID          `json:"id"`
	Cron     string                     `json:"cron"`
	Every    string                     `json:"every"`
	TimeZone string                     `json:"time_zone"`
	StartAt  *time.Time                 `json:"start_at"`
	EndAt    *time.Time                 `json:"end_at"`
	Request  domain.NotificationRequest `json:"request"`
}

type scheduleJSON struct {
	ID         domain.ScheduleID          `json:"id"`
	Status     domain.ScheduleStatus      `json:"status"`
	Cron       string                     `json:"cron,omitempty"`
	Every      string                     `json:"every,omitempty"`
	TimeZone   string                     `json:"time_zone"`
	StartAt    time.Time                  `json:"start_at"`
	EndAt      *time.Time                 `json:"end_at,omitempty"`
	NextFiring *time.Time                 `json:"next_firing,omitempty"`
	LastFiring *time.Time                 `json:"last_firing,omitempty"`
	Firings    int                        `json:"firings"`
	CreatedAt  time.Time                  `json:"created_at"`
	CreatedBy  string                     `json:"created_by"`
	Request    domain.NotificationRequest `json:"request"`
	URL        string                     `json:"url"`
}

func scheduleURL(id domain.ScheduleID) string { return "/v1/schedules/" + string(id) }

func (a *api) toJSON(sc domain.Schedule) scheduleJSON {
	spec := sc.Spec()
	out := scheduleJSON{
		ID: sc.ID(), Status: sc.Status(), Cron: spec.Cron, TimeZone: spec.TimeZone, StartAt: spec.StartAt, EndAt: spec.EndAt,
		Firings: sc.Firings(), CreatedAt: sc.CreatedAt(), CreatedBy: sc.CreatedBy(), Request: sc.Request(), URL: scheduleURL(sc.ID()),
	}
	if spec.EverySeconds > 0 {
		out.Every = (time.Duration(spec.EverySeconds) * time.Second).String()
	}
	if next := a.svc.NextFiring(sc); !next.IsZero() {
		out.NextFiring = &next
	}
	if last := sc.LastFiring(); !last.IsZero() {
		out.LastFiring = &last
	}
	return out
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var req createRequestJSON
	if err := a.decodeBody(w, r, &req, false); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	spec := domain.ScheduleSpec{Cron: req.Cron, TimeZone: req.TimeZone, EndAt: req.EndAt}
	if req.StartAt != nil {
		spec.StartAt = *req.StartAt
	}
	if req.Every != "" {
		d, err := time.ParseDuration(req.Every)
		if err != nil || d%time.Second != 0 || d <= 0 {
			writeProblem(w, problemFor(&domain.ValidationError{Fields: []domain.FieldError{{Field: "every", Problem: `must be a duration in whole seconds like "15m" or "24h"`}}}))
			return
		}
		spec.EverySeconds = int64(d / time.Second)
	}
	res, err := a.svc.Create(r.Context(), a.origin(r), req.ID, spec, req.Request, r.Header.Get("Idempotency-Key"))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Location", scheduleURL(res.Schedule.ID()))
	status := http.StatusCreated
	if !res.Changed {
		status = http.StatusOK
	}
	writeJSON(w, status, a.toJSON(res.Schedule))
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	sc, err := a.svc.Get(r.Context(), domain.ScheduleID(chi.URLParam(r, "id")))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, a.toJSON(sc))
}

func (a *api) change(do func(context.Context, Origin, domain.ScheduleID) (Result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := do(r.Context(), a.origin(r), domain.ScheduleID(chi.URLParam(r, "id")))
		if err != nil {
			writeProblem(w, problemFor(err))
			return
		}
		writeJSON(w, http.StatusOK, a.toJSON(res.Schedule))
	}
}

// decodeBody checks the content type, reads at most MaxBodyBytes and
// decodes exactly one JSON value into v, refusing unknown fields. With
// optional, an empty body leaves v as it is.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	return jsonbody.Read(w, r, v, jsonbody.Options{MaxBytes: a.opt.MaxBodyBytes, Optional: optional, UseNumber: true})
}
