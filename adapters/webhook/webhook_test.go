package webhook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/webhook"
	"herald/domain"
)

// received is one request a sink saw.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// sink is a real HTTP receiver on 127.0.0.1 that records every request and
// answers with respond.
type sink struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []received
}

func newSink(t *testing.T, respond http.HandlerFunc) *sink {
	t.Helper()
	s := &sink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, received{path: r.URL.RequestURI(), header: r.Header.Clone(), body: body})
		s.mu.Unlock()
		respond(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *sink) requests() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.reqs...)
}

func localClient() *http.Client {
	return channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}, Timeout: 5 * time.Second})
}

func message(address string, attempt int) channel.Message {
	return channel.Message{
		NotificationID: "n-42",
		DeliveryID:     "webhook-1",
		IdempotencyKey: "n-42/webhook-1",
		Channel:        domain.ChannelWebhook,
		Address:        address,
		Recipient:      "user-42",
		Priority:       domain.PriorityHigh,
		Category:       "security",
		Subject:        "Your code",
		Body:           "Code 123456",
		HTML:           "<p>Code 123456 & more</p>",
		Metadata:       map[string]string{"order": "A-17"},
		Attempt:        attempt,
		CreatedAt:      time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC),
	}
}

func failure(t *testing.T, err error) *channel.Failure {
	t.Helper()
	var f *channel.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T) is not a *channel.Failure", err, err)
	}
	return f
}

func TestSendDeliversSignedPayload(t *testing.T) {
	t.Parallel()
	key := []byte("a-32-byte-key-for-hmac-sha256!!!")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Message-Id", "rcv-"+r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusAccepted)
	})
	snd, err := webhook.New(webhook.Config{Client: localClient(), DefaultSecret: secret})
	if err != nil {
		t.Fatal(err)
	}

	for attempt := 1; attempt <= 2; attempt++ {
		res, err := snd.Send(context.Background(), message(s.URL+"/hooks/in", attempt))
		if err != nil {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
		if !res.Confirmed || res.ProviderMessageID != "rcv-n-42/webhook-1" {
			t.Fatalf("attempt %d: result %+v", attempt, res)
		}
	}
	reqs := s.requests()
	if len(reqs) != 2 {
		t.Fatalf("sink saw %d requests, want 2", len(reqs))
	}
	for i, r := range reqs {
		if r.path != "/hooks/in" || r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: path %q content-type %q", i, r.path, r.header.Get("Content-Type"))
		}
		if got := r.header.Get("webhook-id"); got != "n-42/webhook-1" {
			t.Fatalf("request %d: webhook-id %q, want the idempotency key", i, got)
		}
		ts := r.header.Get("webhook-timestamp")
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
			t.Fatalf("request %d: webhook-timestamp %q is not the current unix time", i, ts)
		}
		if want := independentSignature(key, "n-42/webhook-1", ts, r.body); r.header.Get("webhook-signature") != want {
			t.Fatalf("request %d: signature %q, want %q", i, r.header.Get("webhook-signature"), want)
		}
		if err := webhook.Verify(secret, r.header, r.body, time.Minute, time.Now()); err != nil {
			t.Fatalf("request %d: Verify: %v", i, err)
		}
		var p map[string]any
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("request %d: body is not JSON: %v", i, err)
		}
		want := map[string]any{
			"id": "n-42/webhook-1", "notification_id": "n-42", "delivery_id": "webhook-1",
			"channel": "webhook", "priority": "high", "category": "security",
			"subject": "Your code", "body": "Code 123456", "html": "<p>Code 123456 & more</p>",
			"metadata": map[string]any{"order": "A-17"}, "created_at": "2026-11-03T09:00:00Z",
			"attempt": float64(i + 1),
		}
		if len(p) != len(want) {
			t.Fatalf("request %d: payload has keys %v, want exactly %d", i, p, len(want))
		}
		for k, v := range want {
			if !equalJSON(p[k], v) {
				t.Fatalf("request %d: payload[%q] = %#v, want %#v", i, k, p[k], v)
			}
		}
		if !strings.Contains(string(r.body), "<p>") {
			t.Fatalf("request %d: html was escaped: %s", i, r.body)
		}
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func TestSendClassifiesAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		confirmed  bool
		retryable  bool
		throttled  bool
		retryAfter time.Duration
		reason     string
	}{
		{name: "200", status: 200, confirmed: true},
		{name: "204", status: 204, confirmed: true},
		{name: "301", status: 301, header: map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}, reason: "redirects are not followed"},
		{name: "400", status: 400, body: "bad payload", reason: "http 400 Bad Request: bad payload"},
		{name: "404", status: 404, reason: "http 404"},
		{name: "410", status: 410, reason: "http 410"},
		{name: "408", status: 408, retryable: true},
		{name: "425", status: 425, retryable: true},
		{name: "429 bare", status: 429, retryable: true, throttled: true},
		{name: "429 seconds", status: 429, header: map[string]string{"Retry-After": "42"}, retryable: true, throttled: true, retryAfter: 42 * time.Second},
		{name: "503 date", status: 503, header: map[string]string{"Retry-After": time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)}, retryable: true, throttled: true, retryAfter: 90 * time.Second},
		{name: "500", status: 500, body: strings.Repeat("x", 1000), retryable: true, reason: "http 500 Internal Server Error: " + strings.Repeat("x", channel.MaxSnippetBytes) + "…"},
		{name: "502", status: 502, retryable: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			snd, err := webhook.New(webhook.Config{Client: localClient(), DefaultSecret: "k"})
			if err != nil {
				t.Fatal(err)
			}
			res, err := snd.Send(context.Background(), message(s.URL, 1))
			if c.confirmed {
				if err != nil || !res.Confirmed || res.ProviderMessageID != "" {
					t.Fatalf("got %+v, %v; want confirmed without provider id", res, err)
				}
				return
			}
			f := failure(t, err)
			if f.Retryable != c.retryable || f.Throttled != c.throttled || f.Expired {
				t.Fatalf("failure %+v: want retryable=%v throttled=%v", f, c.retryable, c.throttled)
			}
			// HTTP dates have whole seconds and the table was built earlier: allow
			// for truncation and a tick of the clock.
			if d := f.RetryAfter - c.retryAfter; d > 0 || d < -3*time.Second {
				t.Fatalf("RetryAfter = %v, want %v", f.RetryAfter, c.retryAfter)
			}
			if !strings.Contains(f.Reason, c.reason) {
				t.Fatalf("reason %q does not contain %q", f.Reason, c.reason)
			}
			if got := len(s.requests()); got != 1 {
				t.Fatalf("sink saw %d requests, want 1 (no redirect following, no retries)", got)
			}
		})
	}
}

func TestSendPicksSecretPerEndpoint(t *testing.T) {
	t.Parallel()
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {})
	hostPort := strings.TrimPrefix(s.URL, "http://")
	snd, err := webhook.New(webhook.Config{
		Client: localClient(),
		Secrets: map[string]string{
			"127.0.0.1":                "host",
			hostPort:                   "host-port",
			s.URL + "/team-a":          "team-a",
			s.URL + "/team-a/ops/":     "team-a-ops",
			"http://203.0.113.9/x":     "other-host",
			"https://" + hostPort + "": "other-scheme",
		},
		DefaultSecret: "default",
	})
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := webhook.New(webhook.Config{Client: localClient(), Secrets: map[string]string{"example.com": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		snd    *webhook.Sender
		path   string
		secret string // "" means no signature header
	}{
		{snd, "/team-a", "team-a"},
		{snd, "/team-a/in?x=1", "team-a"},
		{snd, "/team-a/ops/alerts", "team-a-ops"},
		{snd, "/team-a/ops", "team-a-ops"},
		{snd, "/team-ab", "host-port"}, // a prefix ends at a "/" boundary
		{snd, "/other", "host-port"},
		{unsigned, "/other", ""},
	}
	for _, c := range cases {
		before := len(s.requests())
		if _, err := c.snd.Send(context.Background(), message(s.URL+c.path, 1)); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		r := s.requests()[before]
		if c.secret == "" {
			if sig := r.header.Get("webhook-signature"); sig != "" || r.header.Get("webhook-id") == "" {
				t.Fatalf("%s: want unsigned with an id, got signature %q", c.path, sig)
			}
			continue
		}
		if err := webhook.Verify(c.secret, r.header, r.body, time.Minute, time.Now()); err != nil {
			t.Fatalf("%s: not signed with %q: %v", c.path, c.secret, err)
		}
	}
}

func TestSendRefusesLoopbackWithoutAllowList(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	snd, err := webhook.New(webhook.Config{DefaultSecret: "k"}) // default client: guarded, no allow-list
	if err != nil {
		t.Fatal(err)
	}
	_, err = snd.Send(context.Background(), message(srv.URL+"/in?token=hunter2", 1))
	f := failure(t, err)
	if f.Retryable || !errors.Is(err, channel.ErrAddressRefused) {
		t.Fatalf("want a permanent guard refusal, got %+v", f)
	}
	if hits.Load() != 0 {
		t.Fatalf("the sink was reached %d times", hits.Load())
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the query: %v", err)
	}
}

func TestFailuresNeverCarryCredentials(t *testing.T) {
	t.Parallel()
	const token = "tok-Secret-9f8e"
	echo := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "cannot handle "+r.URL.String()) // a receiver echoing the URL
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	snd, err := webhook.New(webhook.Config{Client: localClient(), DefaultSecret: "whsec_" + base64.StdEncoding.EncodeToString([]byte(token))})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, address string
		retryable     bool
	}{
		{"answer echoes the URL", echo.URL + "/in?token=" + token, true},
		{"connection refused", closedURL + "/in?token=" + token, true},
		{"secret in the path", closedURL + "/hooks/" + token, true},
		{"unparseable address", "http://127.0.0.1:%zz/?token=" + token, false},
		{"not http", "ftp://127.0.0.1/?token=" + token, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := snd.Send(context.Background(), message(c.address, 1))
			f := failure(t, err)
			if f.Retryable != c.retryable {
				t.Fatalf("retryable = %v, want %v (%v)", f.Retryable, c.retryable, f)
			}
			if strings.Contains(f.Reason, token) || strings.Contains(err.Error(), token) {
				t.Fatalf("credential leaked: reason %q, error %q", f.Reason, err)
			}
		})
	}
}

func TestSendHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	s := newSink(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	snd, err := webhook.New(webhook.Config{Client: localClient()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = snd.Send(ctx, message(s.URL, 1))
	f := failure(t, err)
	if !f.Retryable || f.Reason != "timeout" || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want a retryable timeout, got %+v", f)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("Send ignored the deadline: returned after %v", waited)
	}
}

func TestSendWithoutIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := newSink(t, func(http.ResponseWriter, *http.Request) {})
	snd, err := webhook.New(webhook.Config{Client: localClient()})
	if err != nil {
		t.Fatal(err)
	}
	m := message(s.URL, 1)
	m.IdempotencyKey = ""
	if _, err := snd.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := s.requests()[0].header.Get("webhook-id"); got != "n-42/webhook-1" {
		t.Fatalf("webhook-id = %q, want the delivery key", got)
	}
	m.NotificationID = ""
	if _, err := snd.Send(context.Background(), m); failure(t, err).Retryable {
		t.Fatal("a message with no identity must fail permanently")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		cfg   webhook.Config
		wants []string
	}{
		{"zero config is fine", webhook.Config{}, nil},
		{"bad whsec default", webhook.Config{DefaultSecret: "whsec_***"}, []string{"default secret"}},
		{"several problems at once", webhook.Config{Secrets: map[string]string{
			"ftp://example.com/": "k",
			"example.com/path":   "k",
			"example.org":        "whsec_***",
			"https://ok.example": "",
		}}, []string{"ftp://example.com/", "example.com/path", "example.org", "https://ok.example"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			snd, err := webhook.New(c.cfg)
			if len(c.wants) == 0 {
				if err != nil || snd == nil {
					t.Fatalf("New = %v, %v", snd, err)
				}
				return
			}
			if err == nil || snd != nil {
				t.Fatalf("New accepted %+v", c.cfg)
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
