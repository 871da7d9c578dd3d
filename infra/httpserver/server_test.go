package httpserver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herald/infra/config"
	"herald/infra/httpserver"
)

func startServer(t *testing.T, s *httpserver.Server) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, "127.0.0.1:0", 5*time.Second, started) }()
	select {
	case a := <-started:
		t.Cleanup(cancel)
		return "http://" + a.String(), cancel, done
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return "", nil, nil
}

func call(t *testing.T, method, url, bearer string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestReadinessFollowsChecksAndShutdown(t *testing.T) {
	t.Parallel()
	var broken atomic.Bool
	s := httpserver.New(slog.New(slog.DiscardHandler), nil, httpserver.Check{Name: "eventstore", Probe: func(context.Context) error {
		if broken.Load() {
			return errors.New("disk gone")
		}
		return nil
	}})
	base, cancel, done := startServer(t, s)
	if code, _ := call(t, "GET", base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz = %d", code)
	}
	broken.Store(true)
	if code, body := call(t, "GET", base+"/readyz", ""); code != 503 || !strings.Contains(body, "eventstore") {
		t.Fatalf("readyz with a failing check = %d %s", code, body)
	}
	if code, _ := call(t, "GET", base+"/healthz", ""); code != 200 {
		t.Fatalf("healthz must stay 200 while a dependency is down, got %d", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
}

func TestAuthenticatorScopes(t *testing.T) {
	t.Parallel()
	sendKey, err := config.ParseAPIKey("app:app-secret-0123456789:send")
	if err != nil {
		t.Fatal(err)
	}
	adminKey, err := config.ParseAPIKey("ops:ops-secret-0123456789:send+read+admin")
	if err != nil {
		t.Fatal(err)
	}
	auth := httpserver.NewAuthenticator([]config.APIKey{sendKey, adminKey}, func(w http.ResponseWriter, r *http.Request, status int, detail string) {
		w.WriteHeader(status)
		io.WriteString(w, detail)
	})
	s := httpserver.New(slog.New(slog.DiscardHandler), nil)
	s.Router().With(auth.Require(config.ScopeAdmin)).Get("/admin", func(w http.ResponseWriter, r *http.Request) {
		k, _ := httpserver.KeyFrom(r.Context())
		io.WriteString(w, "hello "+k.Name)
	})
	base, _, _ := startServer(t, s)
	cases := []struct {
		name, bearer string
		code         int
		body         string
	}{
		{"no key", "", 401, "missing"},
		{"unknown key", "nope-nope-nope-nope", 401, "unknown"},
		{"key without scope", "app-secret-0123456789", 403, "lacks the admin scope"},
		{"key with scope", "ops-secret-0123456789", 200, "hello ops"},
	}
	for _, c := range cases {
		code, body := call(t, "GET", base+"/admin", c.bearer)
		if code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, code, body, c.code, c.body)
		}
	}
}
