package commands_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// testNow is the fixed clock of every test: deterministic times make event
// comparisons exact.
var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// env is a real SQLite event store behind the real command HTTP endpoints
// on an ephemeral port.
type env struct {
	path     string
	store    *sqlite.Store
	srv      *httptest.Server
	handlers commands.Handlers
}

// newEnv opens a fresh store in t.TempDir().
func newEnv(t *testing.T) *env {
	t.Helper()
	return openEnv(t, filepath.Join(t.TempDir(), "events.db"))
}

// openEnv opens (or reopens) the store at path and serves the endpoints.
// The caller identifies itself with the X-Test-Key header, standing in for
// the composition root's authentication middleware.
func openEnv(t *testing.T, path string) *env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	h, err := commands.NewHandlers(commands.Deps{
		Store: store, Clock: func() time.Time { return testNow }, NewID: commands.UUIDv7,
	})
	if err != nil {
		t.Fatalf("new handlers: %v", err)
	}
	srv := httptest.NewServer(commands.NewHTTP(h, commands.HTTPOptions{
		Actor: func(r *http.Request) string { return r.Header.Get("X-Test-Key") },
	}))
	e := &env{path: path, store: store, srv: srv, handlers: h}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.srv.Close()
	_ = e.store.Close()
}

// response is an HTTP answer with its JSON body decoded.
type response struct {
	Status      int
	ContentType string
	Header      http.Header
	Raw         []byte
	Body        map[string]any
}

// problemType returns the body's problem type name without the base URI.
func (r response) problemType() string {
	s, _ := r.Body["type"].(string)
	if len(s) > len(commands.ProblemTypeBase) {
		return s[len(commands.ProblemTypeBase):]
	}
	return s
}

// fields returns the field names of a problem's errors list.
func (r response) fields() []string {
	var out []string
	list, _ := r.Body["errors"].([]any)
	for _, f := range list {
		m, _ := f.(map[string]any)
		name, _ := m["field"].(string)
		out = append(out, name)
	}
	return out
}

func (r response) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// post sends body with the given content type ("" for none) and headers as
// key, value pairs.
func (e *env) post(t *testing.T, path, contentType, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+path, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("X-Test-Key", "tester")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Header: resp.Header, Raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			t.Fatalf("%s %s: answer is not a JSON object: %v: %s", req.Method, req.URL.Path, err, raw)
		}
	}
	return r
}

// postJSON posts body as application/json.
func (e *env) postJSON(t *testing.T, path, body string, headers ...string) response {
	t.Helper()
	return e.post(t, path, "application/json", body, headers...)
}

// mustStatus fails the test unless r has the wanted status.
func mustStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %s", r.Status, want, r.Raw)
	}
}

// mustProblem checks status, content type and problem type.
func mustProblem(t *testing.T, r response, status int, typ string) {
	t.Helper()
	mustStatus(t, r, status)
	if r.ContentType != "application/problem+json" {
		t.Errorf("content type %q, want application/problem+json", r.ContentType)
	}
	if got := r.problemType(); got != typ {
		t.Errorf("problem type %q, want %q: %s", got, typ, r.Raw)
	}
	if int(r.Body["status"].(float64)) != status {
		t.Errorf("problem status %v, want %d", r.Body["status"], status)
	}
	if r.str("title") == "" {
		t.Errorf("problem without title: %s", r.Raw)
	}
}

// eventTypes reads the stream of notification id and returns its event
// types in order (nil when the stream does not exist).
func (e *env) eventTypes(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, rec := range e.events(t, id) {
		out = append(out, rec.Type)
	}
	return out
}

func (e *env) events(t *testing.T, id string) []eventstore.RecordedEvent {
	t.Helper()
	recs, err := e.store.ReadStream(t.Context(), domain.NotificationStream(domain.NotificationID(id)), 0, 1000)
	if err != nil && err != eventstore.ErrStreamNotFound {
		t.Fatalf("read stream %s: %v", id, err)
	}
	return recs
}

func (e *env) head(t *testing.T) eventstore.Position {
	t.Helper()
	h, err := e.store.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// advance appends what cmd decides on notification id, the way the
// dispatcher will (which is not built yet): it stands in for delivery
// attempts and outcomes.
func (e *env) advance(t *testing.T, id string, cmds ...domain.NotificationCommand) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	nid := domain.NotificationID(id)
	for _, cmd := range cmds {
		recs := e.events(t, id)
		var evs []domain.Event
		for _, rec := range recs {
			ev, err := domain.UnmarshalEvent(rec.Type, rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, ev)
		}
		state := domain.ReplayNotification(evs)
		out, err := domain.DecideNotification(state, cmd)
		if err != nil {
			t.Fatalf("advance %s with %T: %v", id, cmd, err)
		}
		var data []eventstore.EventData
		for _, ev := range out {
			typ, raw, err := domain.MarshalEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, eventstore.EventData{ID: commands.UUIDv7(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: raw})
		}
		if _, err := e.store.Append(ctx, domain.NotificationStream(nid), eventstore.Exactly(uint64(state.Version())), data...); err != nil {
			t.Fatalf("advance %s: %v", id, err)
		}
	}
}

// sendEmail sends a notification to an email address and returns its id.
func (e *env) sendEmail(t *testing.T) string {
	t.Helper()
	r := e.postJSON(t, "/v1/notifications", `{"recipient":{"email":"ada@example.com"},"channels":["email"],"content":{"body":"hi"}}`)
	mustStatus(t, r, http.StatusAccepted)
	return r.str("id")
}

// deliverEmail takes email-1 of id through an attempt to "sent".
func (e *env) deliverEmail(t *testing.T, id string) {
	t.Helper()
	e.advance(t, id,
		domain.RecordAttempt{DeliveryID: "email-1", Now: testNow},
		domain.RecordSuccess{DeliveryID: "email-1", ProviderMessageID: "pm-1", Now: testNow},
	)
}

// newServer serves h on an ephemeral port until the test ends.
func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newServerB(b *testing.B, h http.Handler) string {
	b.Helper()
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL
}
