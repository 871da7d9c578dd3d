package channel_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/domain"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"   ", 0, false},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{" 7 ", 7 * time.Second, true},
		{"-5", 0, false},
		{"+5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"999999999999999999999999", channel.MaxRetryAfter, true},
		{"86400", channel.MaxRetryAfter, true},
		{"Tue, 03 Nov 2026 10:00:30 GMT", 30 * time.Second, true},      // IMF-fixdate
		{"Tuesday, 03-Nov-26 10:01:00 GMT", time.Minute, true},         // RFC 850
		{"Tue Nov  3 10:02:00 2026", 2 * time.Minute, true},            // asctime
		{"Tue, 03 Nov 2026 09:00:00 GMT", 0, true},                     // in the past
		{"Fri, 06 Nov 2026 10:00:00 GMT", channel.MaxRetryAfter, true}, // capped
	}
	for _, c := range cases {
		got, ok := channel.ParseRetryAfter(c.in, now)
		if got != c.want || ok != c.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.in, got, ok, c.want, c.wantOK)
		}
	}
}

func TestStatusFailure(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	cases := []struct {
		code       int
		header     http.Header
		ok         bool
		retryable  bool
		throttled  bool
		retryAfter time.Duration
	}{
		{code: 200, ok: true},
		{code: 202, ok: true},
		{code: 204, ok: true},
		{code: 301},
		{code: 302, header: h("Location", "http://169.254.169.254/")},
		{code: 307},
		{code: 400},
		{code: 401},
		{code: 403},
		{code: 404},
		{code: 410},
		{code: 422},
		{code: 408, retryable: true},
		{code: 425, retryable: true},
		{code: 429, retryable: true, throttled: true},
		{code: 429, header: h("Retry-After", "30"), retryable: true, throttled: true, retryAfter: 30 * time.Second},
		{code: 429, header: h("Retry-After", "garbage"), retryable: true, throttled: true},
		{code: 500, retryable: true},
		{code: 502, retryable: true},
		{code: 503, retryable: true},
		{code: 503, header: h("Retry-After", "Tue, 03 Nov 2026 10:05:00 GMT"), retryable: true, throttled: true, retryAfter: 5 * time.Minute},
		{code: 500, header: h("Retry-After", "30"), retryable: true}, // only 429/503 carry a back-off
		{code: 599, retryable: true},
		{code: 600},
		{code: 100},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.code, c.header), func(t *testing.T) {
			header := c.header
			if header == nil {
				header = http.Header{}
			}
			f := channel.StatusFailure(c.code, header, "detail", now)
			if c.ok {
				if f != nil {
					t.Fatalf("status %d: got failure %+v, want success", c.code, f)
				}
				return
			}
			if f == nil {
				t.Fatalf("status %d: got success, want failure", c.code)
			}
			if f.Retryable != c.retryable || f.Throttled != c.throttled || f.RetryAfter != c.retryAfter {
				t.Fatalf("status %d: got retryable=%v throttled=%v retryAfter=%v, want %v %v %v",
					c.code, f.Retryable, f.Throttled, f.RetryAfter, c.retryable, c.throttled, c.retryAfter)
			}
			if !strings.Contains(f.Reason, fmt.Sprint(c.code)) || !strings.HasSuffix(f.Reason, ": detail") {
				t.Fatalf("status %d: reason %q lacks the code or the snippet", c.code, f.Reason)
			}
			var se *channel.StatusError
			if !errors.As(f, &se) || se.StatusCode != c.code {
				t.Fatalf("status %d: failure does not wrap StatusError{%d}: %v", c.code, c.code, f.Err)
			}
		})
	}
}

func TestAnswerSnippet(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 150) // 300 bytes, two per character
	cases := []struct {
		name    string
		body    string
		secrets []string
		want    string
	}{
		{"empty", "", nil, ""},
		{"folds whitespace", "  invalid_payload\n\n\tbad  ", nil, "invalid_payload bad"},
		{"redacts secrets", "no such key k-123 in /hook?key=k-123", []string{"k-123", ""}, "no such key <redacted> in /hook?key=<redacted>"},
		{"redacts escaped secrets", "token a%2Bb%2Fc seen", []string{"a+b/c"}, "token <redacted> seen"},
		{"invalid utf-8", "ok\xffok", nil, "ok\uFFFDok"},
		{"cut on a character boundary", long, nil, strings.Repeat("é", 100) + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if got := channel.AnswerSnippet([]byte(c.body), c.secrets...); got != c.want {
				t.Fatalf("AnswerSnippet = %q, want %q", got, c.want)
			}
		})
	}
	odd := strings.Repeat("a", channel.MaxSnippetBytes-1) + "é"
	if got := channel.AnswerSnippet([]byte(odd)); got != strings.Repeat("a", channel.MaxSnippetBytes-1)+"…" {
		t.Fatalf("split a character: %q", got)
	}
}

func TestRequestFailure(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-key"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // answer only when the client gives up
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	allowed := channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}})
	guarded := channel.NewHTTPClient(channel.HTTPOptions{})

	do := func(ctx context.Context, c *http.Client, base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/send?key="+secret, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("request to %s succeeded", base)
		}
		return err
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()

	cases := []struct {
		name      string
		err       error
		retryable bool
		reason    string
		is        error
	}{
		{"guard refusal", do(context.Background(), guarded, srv.URL), false, "address refused by the outbound guard", channel.ErrAddressRefused},
		{"cancelled", do(cancelled, allowed, srv.URL), true, "cancelled", context.Canceled},
		{"deadline", do(short, allowed, srv.URL), true, "timeout", context.DeadlineExceeded},
		{"connection refused", do(context.Background(), allowed, closedURL), true, "connection error", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(c.err.Error(), secret) {
				t.Fatalf("precondition: raw error %q should carry the key", c.err)
			}
			f := channel.RequestFailure(c.err, secret)
			if f.Retryable != c.retryable || f.Reason != c.reason {
				t.Fatalf("got retryable=%v reason=%q, want %v %q", f.Retryable, f.Reason, c.retryable, c.reason)
			}
			if strings.Contains(f.Error(), secret) || strings.Contains(f.Error(), "/send") {
				t.Fatalf("failure text leaks the URL: %q", f.Error())
			}
			if c.is != nil && !errors.Is(f, c.is) {
				t.Fatalf("failure %v does not wrap %v", f, c.is)
			}
			var ue *url.Error
			if !errors.As(f, &ue) || ue.URL != domain.RedactURL(srv.URL+"/send") && ue.URL != domain.RedactURL(closedURL+"/send") {
				t.Fatalf("url.Error lost or not redacted: %v", f.Err)
			}
		})
	}
	if channel.RequestFailure(nil) != nil {
		t.Fatal("RequestFailure(nil) != nil")
	}
	if f := channel.RequestFailure(errors.New("boom "+secret), secret); strings.Contains(f.Error(), secret) {
		t.Fatalf("plain error not scrubbed: %q", f.Error())
	}
}
