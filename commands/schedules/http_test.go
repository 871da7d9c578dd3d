package schedules_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/schedules"
	"herald/domain"
	"herald/infra/eventstore/sqlite"
)

// 2026-03-28 12:00 UTC: the day before Berlin's spring-forward change.
var t0 = time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)

type response struct {
	status int
	ct     string
	body   []byte
}

func do(t *testing.T, srv *httptest.Server, method, path string, body any) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Test-Actor", "ann")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header.Get("Content-Type"), data}
}

type scheduleJSON struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Every      string     `json:"every"`
	TimeZone   string     `json:"time_zone"`
	NextFiring *time.Time `json:"next_firing"`
	CreatedBy  string     `json:"created_by"`
}

func TestScheduleHTTP(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	svc, err := schedules.NewService(schedules.Deps{Store: store, Clock: func() time.Time { return t0 }, NewID: func() string { return uuid.Must(uuid.NewV7()).String() }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(schedules.NewHTTP(svc, schedules.Options{Actor: func(r *http.Request) string { return r.Header.Get("X-Test-Actor") }}))
	t.Cleanup(srv.Close)

	request := map[string]any{"recipient": map[string]any{"id": "ops"}, "content": map[string]any{"body": "Nightly"}}
	create := map[string]any{"id": "nightly", "cron": "30 2 * * *", "time_zone": "Europe/Berlin", "request": request}
	res := do(t, srv, "POST", "/v1/schedules", create)
	var sc scheduleJSON
	if res.status != 201 || json.Unmarshal(res.body, &sc) != nil {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	// 02:30 does not exist on 29 March in Berlin: next is 03:00 CEST.
	if want := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC); sc.NextFiring == nil || !sc.NextFiring.Equal(want) || sc.Status != "active" || sc.CreatedBy != "ann" {
		t.Errorf("created %+v, want next firing %s", sc, want)
	}
	if res := do(t, srv, "POST", "/v1/schedules", create); res.status != 200 {
		t.Errorf("repeat create: %d %s", res.status, res.body)
	}
	other := map[string]any{"id": "nightly", "every": "1h", "request": request}
	if res := do(t, srv, "POST", "/v1/schedules", other); res.status != 409 || res.ct != "application/problem+json" {
		t.Errorf("conflicting create: %d %s", res.status, res.body)
	}
	res = do(t, srv, "POST", "/v1/schedules", map[string]any{"every": "90m", "request": request})
	// An interval fires at its start, which defaults to the creation time.
	if res.status != 201 || json.Unmarshal(res.body, &sc) != nil || sc.Every != "1h30m0s" || sc.TimeZone != "UTC" || !sc.NextFiring.Equal(t0) {
		t.Errorf("interval create: %d %s", res.status, res.body)
	}

	bad := do(t, srv, "POST", "/v1/schedules", map[string]any{"cron": "61 * * * *", "time_zone": "Mars/Olympus",
		"request": map[string]any{"content": map[string]any{"body": "x"}}})
	var p struct {
		Type   string              `json:"type"`
		Errors []domain.FieldError `json:"errors"`
	}
	if bad.status != 422 || json.Unmarshal(bad.body, &p) != nil {
		t.Fatalf("invalid create: %d %s", bad.status, bad.body)
	}
	var fields []string
	for _, f := range p.Errors {
		fields = append(fields, f.Field)
	}
	if strings.Join(fields, ",") != "cron,time_zone,request.recipient" {
		t.Errorf("fields %v", fields)
	}
	if res := do(t, srv, "POST", "/v1/schedules", map[string]any{"every": "soon", "request": request}); res.status != 422 {
		t.Errorf("bad every: %d", res.status)
	}

	for _, step := range []struct {
		method, path, status string
		next                 bool
	}{
		{"POST", "/v1/schedules/nightly/pause", "paused", false},
		{"POST", "/v1/schedules/nightly/pause", "paused", false},
		{"POST", "/v1/schedules/nightly/resume", "active", true},
		{"DELETE", "/v1/schedules/nightly", "deleted", false},
		{"GET", "/v1/schedules/nightly", "deleted", false},
	} {
		res := do(t, srv, step.method, step.path, nil)
		var got scheduleJSON
		if res.status != 200 || json.Unmarshal(res.body, &got) != nil || got.Status != step.status || (got.NextFiring != nil) != step.next {
			t.Errorf("%s %s: %d %s", step.method, step.path, res.status, res.body)
		}
	}
	if res := do(t, srv, "POST", "/v1/schedules/nightly/resume", nil); res.status != 409 {
		t.Errorf("resume deleted: %d", res.status)
	}
	if res := do(t, srv, "GET", "/v1/schedules/missing", nil); res.status != 404 || res.ct != "application/problem+json" {
		t.Errorf("missing: %d", res.status)
	}
}
