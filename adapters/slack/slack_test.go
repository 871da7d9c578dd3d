package slack_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/slack"
	"herald/domain"
)

const hookPath = "/services/T000/B000/XXXXsecretXXXX"

func localSender(t *testing.T) *slack.Sender {
	t.Helper()
	snd, err := slack.New(slack.Config{Client: channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}, Timeout: 5 * time.Second})})
	if err != nil {
		t.Fatal(err)
	}
	return snd
}

func message(address string) channel.Message {
	return channel.Message{
		NotificationID: "n-1", DeliveryID: "slack-1", IdempotencyKey: "n-1/slack-1",
		Channel: domain.ChannelSlack, Address: address, Priority: domain.PriorityNormal,
		Subject: "Deploy <done>", Body: "Build #12 & tests passed", Attempt: 1,
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

func TestSendPostsMrkdwn(t *testing.T) {
	t.Parallel()
	type seen struct {
		path, contentType string
		body              map[string]any
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		raw, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(raw, &body); err != nil || r.Method != http.MethodPost {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		got <- seen{r.URL.Path, r.Header.Get("Content-Type"), body}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()

	res, err := localSender(t).Send(context.Background(), message(srv.URL+hookPath))
	if err != nil || !res.Confirmed || res.ProviderMessageID != "" {
		t.Fatalf("Send = %+v, %v; want confirmed", res, err)
	}
	s := <-got
	if s.path != hookPath || !strings.HasPrefix(s.contentType, "application/json") {
		t.Fatalf("path %q content-type %q", s.path, s.contentType)
	}
	want := "*Deploy &lt;done&gt;*\nBuild #12 &amp; tests passed"
	if s.body["text"] != want || s.body["mrkdwn"] != true || len(s.body) != 2 {
		t.Fatalf("payload %v, want text %q with mrkdwn", s.body, want)
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	cases := []struct{ subject, body, want string }{
		{"Hi", "there", "*Hi*\nthere"},
		{"", "just a body", "just a body"},
		{"Only subject", "", "*Only subject*"},
		{"  two\nlines  ", "b", "*two lines*\nb"},
		{"<!channel>", "a<b>&c", "*&lt;!channel&gt;*\na&lt;b&gt;&amp;c"},
		{"", "", ""},
	}
	for _, c := range cases {
		if got := slack.Text(c.subject, c.body); got != c.want {
			t.Errorf("Text(%q, %q) = %q, want %q", c.subject, c.body, got, c.want)
		}
	}
}

func TestSendClassifiesSlackAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		retryable  bool
		throttled  bool
		wantAfter  time.Duration
	}{
		{name: "invalid_payload", status: 400, body: "invalid_payload"},
		{name: "action_prohibited", status: 403, body: "action_prohibited"},
		{name: "no_service", status: 404, body: "no_service"},
		{name: "channel_is_archived", status: 410, body: "channel_is_archived"},
		{name: "redirect", status: 302, body: ""},
		{name: "rate limited", status: 429, body: "rate_limited", retryAfter: "30", retryable: true, throttled: true, wantAfter: 30 * time.Second},
		{name: "rate limited without header", status: 429, body: "rate_limited", retryable: true, throttled: true},
		{name: "server error", status: 500, body: "internal_error", retryable: true},
		{name: "unavailable", status: 503, body: "service_unavailable", retryable: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				if c.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			_, err := localSender(t).Send(context.Background(), message(srv.URL+hookPath))
			f := failure(t, err)
			if f.Retryable != c.retryable || f.Throttled != c.throttled || f.RetryAfter != c.wantAfter {
				t.Fatalf("failure %+v, want retryable=%v throttled=%v after=%v", f, c.retryable, c.throttled, c.wantAfter)
			}
			if c.body != "" && !strings.Contains(f.Reason, c.body) {
				t.Fatalf("reason %q does not quote Slack's %q", f.Reason, c.body)
			}
			if strings.Contains(err.Error(), "XXXXsecretXXXX") {
				t.Fatalf("error leaks the webhook path: %v", err)
			}
		})
	}
}

func TestSendRefusesLoopbackWithoutAllowList(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	snd, err := slack.New(slack.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = snd.Send(context.Background(), message(srv.URL+hookPath))
	f := failure(t, err)
	if f.Retryable || !errors.Is(err, channel.ErrAddressRefused) || hits.Load() != 0 {
		t.Fatalf("want a permanent refusal without contact, got %+v (hits %d)", f, hits.Load())
	}
	if strings.Contains(err.Error(), "XXXXsecretXXXX") {
		t.Fatalf("error leaks the webhook path: %v", err)
	}
}

func TestFailuresNeverCarryTheWebhookPath(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no_service for "+r.URL.Path, http.StatusNotFound)
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	cases := []struct {
		name, address string
		retryable     bool
	}{
		{"answer echoes the path", echo.URL + hookPath, false},
		{"connection refused", closedURL + hookPath, true},
		{"bad address", "hooks.slack.com" + hookPath, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := localSender(t).Send(context.Background(), message(c.address))
			f := failure(t, err)
			if f.Retryable != c.retryable {
				t.Fatalf("retryable = %v, want %v: %v", f.Retryable, c.retryable, f)
			}
			if strings.Contains(f.Reason, "XXXXsecretXXXX") || strings.Contains(err.Error(), "XXXXsecretXXXX") {
				t.Fatalf("credential leaked: %q / %q", f.Reason, err)
			}
		})
	}
}

func TestSendHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := localSender(t).Send(ctx, message(srv.URL+hookPath))
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if f := failure(t, err); !f.Retryable || !errors.Is(err, context.Canceled) {
			t.Fatalf("want a retryable cancellation, got %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after its context was cancelled")
	}
}
