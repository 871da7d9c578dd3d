package commands_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
)

func TestHTTPErrorPaths(t *testing.T) {
	t.Parallel()
	const valid = `{"recipient":{"id":"u1"},"content":{"body":"hi"}}`
	const unknownID = "0196a6e1-0000-7000-8000-000000000000"
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		headers     []string
		status      int
		typ         string
		fields      []string
		chunked     bool // no Content-Length: the limit is met while reading
	}{
		{name: "malformed json", path: "/v1/notifications", body: `{"recipient":`, status: 400, typ: "malformed-json"},
		{name: "syntax error", path: "/v1/notifications", body: `{"recipient" {}}`, status: 400, typ: "malformed-json"},
		{name: "empty body", path: "/v1/notifications", body: ``, status: 400, typ: "malformed-json"},
		{name: "trailing data", path: "/v1/notifications", body: valid + `{}`, status: 400, typ: "malformed-json"},
		{name: "bad time", path: "/v1/notifications", body: `{"recipient":{"id":"u1"},"content":{"body":"hi"},"scheduled_at":"tomorrow"}`, status: 422, typ: "validation-failed", fields: []string{"scheduled_at"}},
		{name: "unknown field", path: "/v1/notifications", body: `{"recipient":{"id":"u1"},"content":{"body":"hi"},"colour":"red"}`, status: 400, typ: "unknown-field", fields: []string{"colour"}},
		{name: "unknown nested field", path: "/v1/notifications", body: `{"recipient":{"id":"u1","fax":"1"},"content":{"body":"hi"}}`, status: 400, typ: "unknown-field", fields: []string{"recipient.fax"}},
		{name: "too large", path: "/v1/notifications", body: `{"recipient":{"id":"` + strings.Repeat("a", commands.DefaultMaxBodyBytes) + `"}}`, status: 413, typ: "body-too-large"},
		{name: "too large, chunked", path: "/v1/notifications/batch", chunked: true, body: `{"items":[{"recipient":{"id":"` + strings.Repeat("a", commands.DefaultMaxBatchBodyBytes) + `"}}]}`, status: 413, typ: "body-too-large"},
		{name: "text/plain", path: "/v1/notifications", contentType: "text/plain", body: valid, status: 415, typ: "unsupported-media-type"},
		{name: "no content type", path: "/v1/notifications", contentType: "-", body: valid, status: 415, typ: "unsupported-media-type"},
		{name: "json with charset is fine", path: "/v1/notifications", contentType: "application/json; charset=utf-8", body: valid, status: 202},
		{name: "invalid fields listed", path: "/v1/notifications", body: `{"recipient":{"email":"nope","phone":"123"},"channels":["email","pigeon"],"priority":"urgent","expires_at":"2020-01-01T00:00:00Z"}`,
			status: 422, typ: "validation-failed", fields: []string{"recipient.email", "recipient.phone", "channels[1]", "content", "priority", "expires_at"}},
		{name: "wrong type", path: "/v1/notifications", body: `{"recipient":{"id":42},"content":{"body":"hi"}}`, status: 422, typ: "validation-failed", fields: []string{"recipient.id"}},
		{name: "bad idempotency key", path: "/v1/notifications", body: valid, headers: []string{"Idempotency-Key", strings.Repeat("k", 300)}, status: 422, typ: "validation-failed", fields: []string{"Idempotency-Key"}},
		{name: "cancel unknown id", path: "/v1/notifications/" + unknownID + "/cancel", body: `{}`, status: 404, typ: "not-found"},
		{name: "cancel id that is no uuid", path: "/v1/notifications/not-a-uuid/cancel", body: `{}`, status: 404, typ: "not-found"},
		{name: "cancel unknown field", path: "/v1/notifications/" + unknownID + "/cancel", body: `{"why":"x"}`, status: 400, typ: "unknown-field", fields: []string{"why"}},
		{name: "cancel with text body", path: "/v1/notifications/" + unknownID + "/cancel", contentType: "text/plain", body: `stop`, status: 415, typ: "unsupported-media-type"},
		{name: "resend unknown id", path: "/v1/notifications/" + unknownID + "/resend", body: `{}`, status: 404, typ: "not-found"},
		{name: "receipt missing fields", path: "/v1/receipts/email", body: `{}`, status: 422, typ: "validation-failed", fields: []string{"notification_id", "delivery_id", "outcome"}},
		{name: "unknown route", path: "/v1/nothing", body: `{}`, status: 404, typ: "not-found"},
		{name: "wrong method", method: http.MethodGet, path: "/v1/notifications/batch", status: 405, typ: "method-not-allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.chunked {
				req.ContentLength = -1
			}
			switch tc.contentType {
			case "":
				req.Header.Set("Content-Type", "application/json")
			case "-":
			default:
				req.Header.Set("Content-Type", tc.contentType)
			}
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			r := do(t, req)
			if tc.typ == "" {
				mustStatus(t, r, tc.status)
				return
			}
			mustProblem(t, r, tc.status, tc.typ)
			if tc.fields != nil && !slices.Equal(r.fields(), tc.fields) {
				t.Errorf("fields %v, want %v", r.fields(), tc.fields)
			}
			if e.head(t) != 0 {
				t.Errorf("a refused request appended %d events", e.head(t))
			}
		})
	}
}

func TestProblemTypesAreStableAndDistinct(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, p := range commands.ProblemTypes() {
		if seen[p.Name] || p.Status < 400 || p.Title == "" || !strings.HasPrefix(p.URI(), "https://herald.dev/problems/") {
			t.Errorf("problem type %+v repeated or incomplete", p)
		}
		seen[p.Name] = true
	}
	for _, name := range []string{"validation-failed", "malformed-json", "unsupported-media-type", "body-too-large", "idempotency-conflict", "not-found", "conflict", "too-many-items"} {
		if !seen[name] {
			t.Errorf("catalogue lacks %s", name)
		}
	}
}

func TestNewHTTPMiddlewareWraps(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Stand-in for the composition root's auth: refuse without a header.
	auth := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	h := commands.NewHTTP(e.handlers, commands.HTTPOptions{
		Middleware: []func(http.Handler) http.Handler{auth},
		Actor:      func(*http.Request) string { return "key-a" },
	})
	srv := newServer(t, h)
	for _, tc := range []struct {
		auth string
		want int
	}{{"", http.StatusUnauthorized}, {"Bearer s3cret", http.StatusAccepted}} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv+"/v1/notifications", strings.NewReader(`{"recipient":{"id":"u1"},"content":{"body":"hi"}}`))
		req.Header.Set("Content-Type", "application/json")
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("auth %q: status %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
	if e.head(t) != 2 {
		t.Errorf("log head %d, want the one authorized send's 2 events", e.head(t))
	}
}

func TestTransientTellsRetriesFromRefusals(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]bool{
		fmt.Errorf("record: %w", commands.ErrContention):           true,
		fmt.Errorf("append: %w", eventstore.ErrClosed):             true,
		context.DeadlineExceeded:                                   true,
		errors.New("disk I/O error"):                               true,
		fmt.Errorf("receipt: %w", domain.ErrDeliveryNotFound):      false,
		fmt.Errorf("receipt: %w", domain.ErrNotificationNotFound):  false,
		fmt.Errorf("receipt: %w", domain.ErrInvalidReceiptOutcome): false,
		fmt.Errorf("receipt: %w", domain.ErrDeliveryClosed):        false,
	} {
		if got := commands.Transient(err); got != want {
			t.Errorf("Transient(%v) = %v, want %v", err, got, want)
		}
	}
}
