package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
	"herald/infra/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestRequestsAreCountedByRoutePattern(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	r := chi.NewRouter()
	r.Use(m.Middleware)
	r.Get("/v1/notifications/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) })
	srv := httptest.NewServer(r)
	defer srv.Close()
	for _, id := range []string{"a", "b", "c"} {
		resp, err := http.Get(srv.URL + "/v1/notifications/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	out := scrape(t, m)
	want := `herald_http_requests_total{code="404",method="GET",route="/v1/notifications/{id}"} 3`
	if !strings.Contains(out, want) {
		t.Fatalf("scrape lacks %q:\n%s", want, grep(out, "herald_http"))
	}
	if !strings.Contains(out, `herald_http_request_duration_seconds_count{method="GET",route="/v1/notifications/{id}"} 3`) {
		t.Fatalf("latency not observed:\n%s", grep(out, "herald_http"))
	}
}

func TestAppendsAreCountedByOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	raw, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	m := metrics.New()
	s := m.InstrumentStore(raw)
	ev := func() eventstore.EventData {
		return eventstore.EventData{ID: "e-" + t.Name() + strings.Repeat("x", 1), Type: "T", Data: []byte(`{}`)}
	}
	if _, err := s.Append(ctx, "s-1", eventstore.NoStream, ev(), ev()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "s-1", eventstore.NoStream, ev()); !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("want a conflict, got %v", err)
	}
	out := scrape(t, m)
	for _, want := range []string{
		`herald_eventstore_appends_total{outcome="ok"} 1`,
		`herald_eventstore_appends_total{outcome="conflict"} 1`,
		`herald_eventstore_events_appended_total 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q:\n%s", want, grep(out, "herald_eventstore"))
		}
	}
}

func grep(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
