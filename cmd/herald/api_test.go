package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

const (
	testSendKey  = "app-secret-0123456789"
	testAdminKey = "ops-secret-0123456789"
)

// serveArgs are the arguments of a test server on an ephemeral port.
// serveArgs are the arguments of the command- and read-side tests: no
// dispatcher, so the audit trails they check hold only what the API wrote.
// Delivery has its own end-to-end tests (deliver_test.go).
func serveArgs(dataDir string, keys ...string) []string {
	args := []string{"--addr", "127.0.0.1:0", "--data", dataDir, "--log-level", "warn", "--deliver=false"}
	for _, k := range keys {
		args = append(args, "--api-key", k)
	}
	return args
}

// startServe runs `serve` in-process with two keys (app: send; ops: all
// scopes) and returns its base URL; the server stops when the test ends.
func startServe(t *testing.T, dataDir string) string {
	t.Helper()
	base, stop, err := startInProcess(context.Background(), serveArgs(dataDir, "app:"+testSendKey+":send", "ops:"+testAdminKey+":send+read+admin"), io.Discard)
	if err != nil {
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return base
}

type answer struct {
	code int
	ct   string
	body map[string]any
	raw  string
}

func do(t *testing.T, method, url, key, body string) answer {
	t.Helper()
	return doKey(t, method, url, key, body, "")
}

// doKey is do with an Idempotency-Key.
func doKey(t *testing.T, method, url, key, body, idem string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{code: resp.StatusCode, ct: resp.Header.Get("Content-Type"), raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a
}

func TestServeAuthenticatesCommands(t *testing.T) {
	t.Parallel()
	base := startServe(t, t.TempDir())
	send := `{"recipient":{"id":"user-1","email":"ada@example.com"},"channels":["email"],"content":{"subject":"Hi","body":"Hello"}}`

	a := do(t, "POST", base+"/v1/notifications", "", send)
	if a.code != 401 || a.ct != "application/problem+json" || a.body["type"] != "https://herald.dev/problems/unauthorized" {
		t.Fatalf("no key: %d %s %s", a.code, a.ct, a.raw)
	}
	a = do(t, "POST", base+"/v1/notifications", "wrong-key-0123456789", send)
	if a.code != 401 {
		t.Fatalf("unknown key: %d %s", a.code, a.raw)
	}
	a = do(t, "POST", base+"/v1/notifications", testSendKey, send)
	if a.code != 202 || a.body["id"] == nil {
		t.Fatalf("send: %d %s", a.code, a.raw)
	}
	a = do(t, "POST", base+"/v1/notifications", testSendKey, `{"recipient":{}}`)
	if a.code != 422 || a.body["type"] != "https://herald.dev/problems/validation-failed" {
		t.Fatalf("invalid: %d %s", a.code, a.raw)
	}
	a = do(t, "GET", base+"/v1/openapi.json", "", "")
	if a.code != 200 || a.body["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %d %.100s", a.code, a.raw)
	}
	a = do(t, "GET", base+"/metrics", "", "")
	if a.code != 200 || !strings.Contains(a.raw, `herald_http_requests_total{code="202",method="POST",route="/v1/notifications"} 1`) ||
		!strings.Contains(a.raw, "herald_eventstore_events_appended_total") {
		t.Fatalf("metrics do not show the send:\n%s", grepLines(a.raw, "herald_"))
	}
}

func grepLines(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// A /v1 path that no route serves answers problem+json like the rest of
// the API, not the dashboard's plain-text 404.
func TestServeAnswersUnknownAPIPathsWithProblems(t *testing.T) {
	t.Parallel()
	base := startServe(t, t.TempDir())
	for _, c := range []struct {
		method, path string
		code         int
		allow        string
	}{
		{"GET", "/v1/nothing", 404, ""},
		{"GET", "/v1/notifications/x/nothing", 404, ""},
		{"DELETE", "/v1/notifications", 405, "GET, POST"},
		{"PUT", "/v1/notifications/batch", 405, "GET, POST"}, // GET: /v1/notifications/{id}
		{"POST", "/v1/templates/otp", 405, "GET, PUT"},
	} {
		req, err := http.NewRequest(c.method, base+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var p struct{ Type, Detail string }
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		want := "https://herald.dev/problems/not-found"
		if c.code == 405 {
			want = "https://herald.dev/problems/method-not-allowed"
		}
		if err != nil || resp.StatusCode != c.code || resp.Header.Get("Content-Type") != "application/problem+json" ||
			p.Type != want || resp.Header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %s Allow %q, %+v (%v); want %d %s Allow %q", c.method, c.path, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), p, err, c.code, want, c.allow)
		}
	}
	if a := do(t, "GET", base+"/", "", ""); a.code != 200 {
		t.Fatalf("dashboard: %d", a.code)
	}
}

// A path parameter escaped more than it had to be reaches the handler
// decoded: the recipient written as ann%40x is ann@x.
func TestServeDecodesEscapedPathParameters(t *testing.T) {
	t.Parallel()
	base := startServe(t, t.TempDir())
	if a := do(t, "PUT", base+"/v1/recipients/ann%40example", testAdminKey, `{"email":"ann@example.com"}`); a.code/100 != 2 {
		t.Fatalf("PUT escaped: %d %s", a.code, a.raw)
	}
	for _, path := range []string{"/v1/recipients/ann@example", "/v1/recipients/ann%40example"} {
		a := do(t, "GET", base+path, testAdminKey, "")
		if a.code != 200 || a.body["id"] != "ann@example" || a.body["email"] != "ann@example.com" {
			t.Fatalf("GET %s: %d %s; want the profile of ann@example", path, a.code, a.raw)
		}
	}
}
