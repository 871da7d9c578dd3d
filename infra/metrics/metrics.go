package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"herald/infra/eventstore"
)

// Metrics is one registry and the collectors Herald updates directly.
type Metrics struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	appends  *prometheus.CounterVec
	appended prometheus.Counter
	appendD  prometheus.Histogram
}

// New returns a registry with Go runtime and process collectors and Herald's
// own metrics registered.
func New() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_http_requests_total", Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "herald_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method"})
	m.appends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "herald_eventstore_appends_total", Help: "Append requests to the event log by outcome (ok, conflict, error).",
	}, []string{"outcome"})
	m.appended = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "herald_eventstore_events_appended_total", Help: "Events durably appended to the event log.",
	})
	m.appendD = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "herald_eventstore_append_duration_seconds", Help: "Time from an append call to its durable commit.",
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1},
	})
	m.Registry.MustRegister(m.requests, m.latency, m.appends, m.appended, m.appendD,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// GaugeFunc registers a gauge whose value is read from f at scrape time,
// with one label set per call.
func (m *Metrics) GaugeFunc(name, help string, labels prometheus.Labels, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels}, f))
}

// Middleware counts and times requests by chi route pattern (not by raw
// path, so ids do not explode the label space).
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route = rc.RoutePattern()
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming responses (server-sent events) through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// InstrumentStore wraps an event log so that its appends are counted and
// timed. Everything else passes through unchanged.
func (m *Metrics) InstrumentStore(s eventstore.Store) eventstore.Store {
	return &instrumentedStore{Store: s, m: m}
}

type instrumentedStore struct {
	eventstore.Store
	m *Metrics
}

func (s *instrumentedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	start := time.Now()
	res, err := s.Store.Append(ctx, stream, expected, events...)
	s.m.appendD.Observe(time.Since(start).Seconds())
	s.record(err, len(events))
	return res, err
}

func (s *instrumentedStore) AppendMany(ctx context.Context, reqs []eventstore.AppendRequest) ([]eventstore.AppendResult, []error) {
	start := time.Now()
	res, errs := s.Store.AppendMany(ctx, reqs)
	s.m.appendD.Observe(time.Since(start).Seconds())
	for i, err := range errs {
		s.record(err, len(reqs[i].Events))
	}
	return res, errs
}

// StreamVersions passes eventstore.StreamVersionReader through, so that
// wrapping a store does not turn its one-query lookup into one per stream.
func (s *instrumentedStore) StreamVersions(ctx context.Context, streams []string) (map[string]uint64, error) {
	return eventstore.StreamVersions(ctx, s.Store, streams)
}

func (s *instrumentedStore) record(err error, events int) {
	switch {
	case err == nil:
		s.m.appends.WithLabelValues("ok").Inc()
		s.m.appended.Add(float64(events))
	case isConflict(err):
		s.m.appends.WithLabelValues("conflict").Inc()
	default:
		s.m.appends.WithLabelValues("error").Inc()
	}
}

func isConflict(err error) bool { return errors.Is(err, eventstore.ErrWrongExpectedVersion) }
