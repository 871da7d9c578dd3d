package wecom_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"herald/adapters/channel"
	"herald/adapters/wecom"
	"herald/domain"
)

const key = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"

// newRobot is a fake WeCom group robot speaking the real wire format over
// real HTTP: it checks the key and the message shape and answers
// {"errcode":...,"errmsg":...}; code, when set, forces the answer.
func newRobot(t *testing.T, code func() (int, string), got chan<- map[string]any) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer := func(code int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"errcode":%d,"errmsg":%q}`, code, msg)
		}
		var msg map[string]any
		raw, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/cgi-bin/webhook/send" || json.Unmarshal(raw, &msg) != nil {
			answer(40058, "invalid Request Parameter")
			return
		}
		if got != nil {
			got <- msg
		}
		if r.URL.Query().Get("key") != key {
			answer(93000, "invalid webhook url")
			return
		}
		if code != nil {
			answer(code())
			return
		}
		answer(0, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func address(srv *httptest.Server) string { return srv.URL + "/cgi-bin/webhook/send?key=" + key }

func newSender(t *testing.T) *wecom.Sender {
	t.Helper()
	s, err := wecom.New(wecom.Config{Client: channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}, Timeout: 5 * time.Second})})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message(address string) channel.Message {
	return channel.Message{
		NotificationID: "n-9", DeliveryID: "wecom-1", IdempotencyKey: "n-9/wecom-1",
		Channel: domain.ChannelWeCom, Address: address, Priority: domain.PriorityLow,
		Subject: "周报已生成", Body: "本周共发送 1,024 条通知", Attempt: 1,
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

func TestSendMarkdown(t *testing.T) {
	t.Parallel()
	got := make(chan map[string]any, 1)
	srv := newRobot(t, nil, got)
	res, err := newSender(t).Send(context.Background(), message(address(srv)))
	if err != nil || !res.Confirmed {
		t.Fatalf("Send = %+v, %v; want confirmed", res, err)
	}
	msg := <-got
	md, _ := msg["markdown"].(map[string]any)
	if msg["msgtype"] != "markdown" || md["content"] != "**周报已生成**\n本周共发送 1,024 条通知" || len(md) != 1 {
		t.Fatalf("message %v", msg)
	}
}

func TestContent(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("字", 2000) // 6000 bytes
	cases := []struct{ subject, body, want string }{
		{"S", "B", "**S**\nB"},
		{"", "B", "B"},
		{" multi\nline ", "", "**multi line**"},
	}
	for _, c := range cases {
		if got := wecom.Content(c.subject, c.body); got != c.want {
			t.Errorf("Content(%q, %q) = %q, want %q", c.subject, c.body, got, c.want)
		}
	}
	got := wecom.Content("", long)
	if len(got) > wecom.MaxContentBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Fatalf("long content: %d bytes, valid=%v", len(got), utf8.ValidString(got))
	}
}

func TestSendClassifiesErrcodes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		code       int
		msg        string
		retryable  bool
		throttled  bool
		retryAfter time.Duration
	}{
		{45009, "api freq out of limit", true, true, time.Minute},
		{45033, "api concurrent out of limit", true, true, 0},
		{-1, "system busy", true, false, 0},
		{93000, "invalid webhook url", false, false, 0},
		{40058, "invalid Request Parameter", false, false, 0},
		{93004, "robot disabled", false, false, 0},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.code), func(t *testing.T) {
			t.Parallel()
			srv := newRobot(t, func() (int, string) { return c.code, c.msg + ", hint: key=" + key }, nil)
			_, err := newSender(t).Send(context.Background(), message(address(srv)))
			f := failure(t, err)
			if f.Retryable != c.retryable || f.Throttled != c.throttled || f.RetryAfter != c.retryAfter {
				t.Fatalf("failure %+v, want retryable=%v throttled=%v after=%v", f, c.retryable, c.throttled, c.retryAfter)
			}
			if !strings.Contains(f.Reason, strconv.Itoa(c.code)) || !strings.Contains(f.Reason, c.msg) {
				t.Fatalf("reason %q lacks code or errmsg", f.Reason)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("errmsg echoing the key leaked it: %v", err)
			}
		})
	}
	// A wrong key is WeCom's 93000, permanent.
	srv := newRobot(t, nil, nil)
	_, err := newSender(t).Send(context.Background(), message(srv.URL+"/cgi-bin/webhook/send?key=other"))
	if f := failure(t, err); f.Retryable || !strings.Contains(f.Reason, "93000") {
		t.Fatalf("wrong key: %+v", f)
	}
}

func TestSendNon200AndGarbage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		header     string
		body       string
		retryable  bool
		throttled  bool
		retryAfter time.Duration
	}{
		{"service unavailable with Retry-After", 503, "7", "", true, true, 7 * time.Second},
		{"server error", 500, "", "oops", true, false, 0},
		{"forbidden", 403, "", "", false, false, 0},
		{"200 without errcode", 200, "", `{}`, true, false, 0},
		{"200 not json", 200, "", "hello", true, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			_, err := newSender(t).Send(context.Background(), message(address(srv)))
			f := failure(t, err)
			if f.Retryable != c.retryable || f.Throttled != c.throttled || f.RetryAfter != c.retryAfter {
				t.Fatalf("failure %+v, want retryable=%v throttled=%v after=%v", f, c.retryable, c.throttled, c.retryAfter)
			}
		})
	}
}

func TestSendRefusesLoopbackWithoutAllowList(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	snd, err := wecom.New(wecom.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = snd.Send(context.Background(), message(address(srv)))
	f := failure(t, err)
	if f.Retryable || !errors.Is(err, channel.ErrAddressRefused) || hits.Load() != 0 {
		t.Fatalf("want a permanent refusal without contact, got %+v (hits %d)", f, hits.Load())
	}
	if strings.Contains(err.Error(), key) {
		t.Fatalf("error leaks the key: %v", err)
	}
}

func TestFailuresNeverCarryTheKey(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway for "+r.URL.String(), http.StatusBadGateway)
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	cases := []struct {
		name, address string
		retryable     bool
	}{
		{"answer echoes the URL", address(echo), true},
		{"connection refused", closedURL + "/cgi-bin/webhook/send?key=" + key, true},
		{"no key", echo.URL + "/cgi-bin/webhook/send", false},
		{"unparseable", "https://qyapi.weixin.qq.com:x/cgi-bin/webhook/send?key=" + key, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newSender(t).Send(context.Background(), message(c.address))
			f := failure(t, err)
			if f.Retryable != c.retryable {
				t.Fatalf("retryable = %v, want %v: %v", f.Retryable, c.retryable, f)
			}
			if strings.Contains(f.Reason, key) || strings.Contains(err.Error(), key) {
				t.Fatalf("key leaked: %q", err)
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
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := newSender(t).Send(ctx, message(address(srv)))
	if f := failure(t, err); !f.Retryable || f.Reason != "timeout" || strings.Contains(err.Error(), key) {
		t.Fatalf("want a retryable timeout without the key, got %+v", f)
	}
}
