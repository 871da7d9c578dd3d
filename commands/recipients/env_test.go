package recipients_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/recipients"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

var secret = []byte("0123456789abcdef0123456789abcdef-test")

// testClock is a clock the test moves; it starts at t0.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return t0.Add(time.Duration(c.offset.Load())) }
func (c *testClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

type env struct {
	t     *testing.T
	store *sqlite.Store
	clock *testClock
	svc   *recipients.Service
	srv   *httptest.Server
}

// newEnv serves the recipient API over a real SQLite event log in a
// temporary directory. Requests to /v1/recipients need the header
// "Authorization: Bearer key" (the test's stand-in for API keys);
// /v1/unsubscribe does not.
func newEnv(t *testing.T, configure func(*recipients.Deps)) *env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	clock := &testClock{}
	d := recipients.Deps{
		Store: store, Clock: clock.now,
		NewID:             func() string { return uuid.Must(uuid.NewV7()).String() },
		UnsubscribeSecret: secret, PublicURL: "https://herald.example.com/",
	}
	if configure != nil {
		configure(&d)
	}
	svc, err := recipients.NewService(d)
	if err != nil {
		t.Fatal(err)
	}
	requireKey := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer key" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(recipients.NewHTTP(svc, recipients.Options{
		Actor:      func(r *http.Request) string { return r.Header.Get("X-Test-Actor") },
		Middleware: []func(http.Handler) http.Handler{requireKey},
	}))
	t.Cleanup(srv.Close)
	return &env{t: t, store: store, clock: clock, svc: svc, srv: srv}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

type problemJSON struct {
	Type   string              `json:"type"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Errors []domain.FieldError `json:"errors"`
}

// problem decodes a problem+json answer and checks its status and type.
func (r response) problem(t *testing.T, status int, name string) problemJSON {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q: %s", ct, r.body)
	}
	var p problemJSON
	r.decode(t, &p)
	if p.Type != recipients.ProblemTypeBase+name || p.Status != status {
		t.Fatalf("problem %+v, want %s", p, name)
	}
	return p
}

func (p problemJSON) fields() []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

// do sends a request with the API key; header pairs follow the body.
func (e *env) do(method, path, body string, header ...string) response {
	e.t.Helper()
	h := append([]string{"Authorization", "Bearer key", "Content-Type", "application/json"}, header...)
	return e.raw(method, path, body, h...)
}

// raw sends a request with exactly the given headers.
func (e *env) raw(method, path, body string, header ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// events returns the recipient's stream as (type, data) pairs.
func (e *env) events(id string) []eventstore.RecordedEvent {
	e.t.Helper()
	recs, err := e.store.ReadStream(e.t.Context(), domain.RecipientStream(domain.RecipientID(id)), 0, 1000)
	if err != nil && !errors.Is(err, eventstore.ErrStreamNotFound) {
		e.t.Fatal(err)
	}
	return recs
}

func types(recs []eventstore.RecordedEvent) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

var (
	pushKey  = base64.RawURLEncoding.EncodeToString(append([]byte{4}, bytes.Repeat([]byte{7}, 64)...))
	pushAuth = base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16))
)

func pushBody(endpoint string) string {
	return `{"endpoint":"` + endpoint + `","expirationTime":null,"keys":{"p256dh":"` + pushKey + `","auth":"` + pushAuth + `"}}`
}
