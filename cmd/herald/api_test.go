package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	testSendKey  = "app-secret-0123456789"
	testAdminKey = "ops-secret-0123456789"
)

// startServe runs `serve` in-process on an ephemeral port with two keys and
// returns its base URL; the server stops when the test ends.
func startServe(t *testing.T, dataDir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan net.Addr, 1)
	done := make(chan error, 1)
	args := []string{"--addr", "127.0.0.1:0", "--data", dataDir, "--log-level", "warn",
		"--api-key", "app:" + testSendKey + ":send", "--api-key", "ops:" + testAdminKey + ":send+read+admin"}
	go func() { done <- serve(ctx, args, io.Discard, io.Discard, func(string) string { return "" }, started) }()
	select {
	case a := <-started:
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		return "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return ""
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
