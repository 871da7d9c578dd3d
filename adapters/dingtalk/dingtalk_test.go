package dingtalk_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/dingtalk"
	"herald/domain"
)

const (
	token  = "0123abcdTOKEN4567"
	secret = "SECd1e2f3a4b5c6robotsecret"
)

// robot is a fake DingTalk custom robot speaking the real wire format over
// real HTTP: it checks the token, recomputes the signature when the robot
// has a secret, refuses timestamps more than an hour off its own clock, and
// answers {"errcode":...,"errmsg":...}.
type robot struct {
	*httptest.Server
	secret   string               // "" for a robot without the signature setting
	override func() (int, string) // forces an answer code when set
	got      chan sent
}

type sent struct {
	query url.Values
	msg   map[string]any
}

func newRobot(t *testing.T, secret string, override func() (int, string)) *robot {
	t.Helper()
	r := &robot{secret: secret, override: override, got: make(chan sent, 8)}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (rb *robot) serve(w http.ResponseWriter, r *http.Request) {
	answer := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"errcode":%d,"errmsg":%q}`, code, msg)
	}
	q := r.URL.Query()
	var msg map[string]any
	raw, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/robot/send" || json.Unmarshal(raw, &msg) != nil {
		answer(40035, "invalid request")
		return
	}
	rb.got <- sent{query: q, msg: msg}
	if q.Get("access_token") != token {
		answer(300001, "token is not exist")
		return
	}
	if rb.secret != "" {
		ts := q.Get("timestamp")
		ms, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.UnixMilli(ms)).Abs() > time.Hour {
			answer(310000, "sign not match, timestamp is invalid")
			return
		}
		mac := hmac.New(sha256.New, []byte(rb.secret))
		mac.Write([]byte(ts + "\n" + rb.secret))
		// q.Get has already undone the URL escaping of sign.
		if q.Get("sign") != base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			answer(310000, "sign not match")
			return
		}
	}
	if rb.override != nil {
		answer(rb.override())
		return
	}
	answer(0, "ok")
}

func (rb *robot) address() string { return rb.URL + "/robot/send?access_token=" + token }

func newSender(t *testing.T, cfg dingtalk.Config) *dingtalk.Sender {
	t.Helper()
	if cfg.Client == nil {
		cfg.Client = channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}, Timeout: 5 * time.Second})
	}
	s, err := dingtalk.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func message(address string) channel.Message {
	return channel.Message{
		NotificationID: "n-7", DeliveryID: "dingtalk-1", IdempotencyKey: "n-7/dingtalk-1",
		Channel: domain.ChannelDingTalk, Address: address, Priority: domain.PriorityHigh,
		Subject: "Disk almost full", Body: "db-1: 93% used\n\nplease act", Attempt: 1,
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

func TestSendSignedMarkdown(t *testing.T) {
	t.Parallel()
	rb := newRobot(t, secret, nil)
	cases := []struct {
		name    string
		secrets map[string]string
		address string
	}{
		{"secret by access_token", map[string]string{token: secret}, rb.address()},
		{"secret by robot URL", map[string]string{strings.ToUpper(rb.URL[:4]) + rb.URL[4:] + "/robot/send?access_token=" + token: secret, token: "SECwrong"}, rb.address()},
		{"stale sign params are replaced", map[string]string{token: secret}, rb.address() + "&timestamp=1&sign=forged"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snd := newSender(t, dingtalk.Config{Secrets: c.secrets})
			res, err := snd.Send(context.Background(), message(c.address))
			if err != nil || !res.Confirmed {
				t.Fatalf("Send = %+v, %v; want confirmed", res, err)
			}
			s := <-rb.got
			if len(s.query["timestamp"]) != 1 || len(s.query["sign"]) != 1 {
				t.Fatalf("want exactly one timestamp and sign, got %v", s.query)
			}
			md, _ := s.msg["markdown"].(map[string]any)
			if s.msg["msgtype"] != "markdown" || md["title"] != "Disk almost full" ||
				md["text"] != "#### Disk almost full\n\ndb-1: 93% used\n\nplease act" {
				t.Fatalf("message %v", s.msg)
			}
		})
	}
}

func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	// HMAC-SHA256(key "SECtest", "1700000000000\nSECtest"), base64, worked
	// out with an independent HMAC tool.
	if got := dingtalk.Sign("SECtest", "1700000000000"); got != "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g=" {
		t.Fatalf("Sign = %q", got)
	}
}

func TestSendUnsignedRobot(t *testing.T) {
	t.Parallel()
	rb := newRobot(t, "", nil)
	snd := newSender(t, dingtalk.Config{Secrets: map[string]string{"other-token": secret}})
	m := message(rb.address())
	m.Subject = ""
	if _, err := snd.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	s := <-rb.got
	if s.query.Has("timestamp") || s.query.Has("sign") {
		t.Fatalf("robot without a secret got signature params: %v", s.query)
	}
	md := s.msg["markdown"].(map[string]any)
	if md["title"] != "db-1: 93% used" || md["text"] != "db-1: 93% used\n\nplease act" {
		t.Fatalf("title/text without subject: %v", md)
	}
}

func TestSendRejectedSignature(t *testing.T) {
	t.Parallel()
	rb := newRobot(t, secret, nil)
	cases := []struct {
		name string
		cfg  dingtalk.Config
	}{
		{"wrong secret", dingtalk.Config{Secrets: map[string]string{token: "SECwrong"}}},
		{"clock two hours behind", dingtalk.Config{Secrets: map[string]string{token: secret}, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}},
		{"no secret for a signing robot", dingtalk.Config{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := newSender(t, c.cfg).Send(context.Background(), message(rb.address()))
			f := failure(t, err)
			<-rb.got
			if f.Retryable || !strings.Contains(f.Reason, "310000") {
				t.Fatalf("want permanent 310000, got %+v", f)
			}
		})
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
		{130101, "send too fast, exceed 20 times per minute", true, true, 10 * time.Minute},
		{130102, "send too fast", true, true, 0},
		{410100, "rate limited", true, true, 0},
		{90030, "webhook over limit", true, true, 0},
		{-1, "system busy", true, false, 0},
		{300001, "token is not exist", false, false, 0},
		{400102, "robot stopped", false, false, 0},
		{310000, "keywords not in content", false, false, 0},
		{430101, "content unsafe", false, false, 0},
	}
	for _, c := range cases {
		t.Run(strconv.Itoa(c.code), func(t *testing.T) {
			t.Parallel()
			rb := newRobot(t, "", func() (int, string) { return c.code, c.msg + " " + token })
			_, err := newSender(t, dingtalk.Config{}).Send(context.Background(), message(rb.address()))
			f := failure(t, err)
			if f.Retryable != c.retryable || f.Throttled != c.throttled || f.RetryAfter != c.retryAfter {
				t.Fatalf("failure %+v, want retryable=%v throttled=%v after=%v", f, c.retryable, c.throttled, c.retryAfter)
			}
			if !strings.Contains(f.Reason, strconv.Itoa(c.code)) || !strings.Contains(f.Reason, c.msg) {
				t.Fatalf("reason %q lacks code or errmsg", f.Reason)
			}
			if strings.Contains(err.Error(), token) {
				t.Fatalf("errmsg echoing the token leaked it: %v", err)
			}
		})
	}
}

func TestSendNon200AndGarbage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		status    int
		body      string
		retryable bool
		throttled bool
	}{
		{"gateway error", 502, "<html>bad gateway</html>", true, false},
		{"http 429", 429, "", true, true},
		{"not found", 404, "", false, false},
		{"200 without errcode", 200, `{"status":"fine"}`, true, false},
		{"200 html page", 200, "<html>captive portal</html>", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			_, err := newSender(t, dingtalk.Config{}).Send(context.Background(), message(srv.URL+"/robot/send?access_token="+token))
			f := failure(t, err)
			if f.Retryable != c.retryable || f.Throttled != c.throttled {
				t.Fatalf("failure %+v, want retryable=%v throttled=%v", f, c.retryable, c.throttled)
			}
		})
	}
}

func TestSendRefusesLoopbackWithoutAllowList(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	snd, err := dingtalk.New(dingtalk.Config{Secrets: map[string]string{token: secret}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = snd.Send(context.Background(), message(srv.URL+"/robot/send?access_token="+token))
	f := failure(t, err)
	if f.Retryable || !errors.Is(err, channel.ErrAddressRefused) || hits.Load() != 0 {
		t.Fatalf("want a permanent refusal without contact, got %+v (hits %d)", f, hits.Load())
	}
	if strings.Contains(err.Error(), token) {
		t.Fatalf("error leaks the access_token: %v", err)
	}
}

func TestFailuresNeverCarryCredentials(t *testing.T) {
	t.Parallel()
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream failed for "+r.URL.String(), http.StatusBadGateway)
	}))
	defer echo.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	cases := []struct {
		name, address string
		retryable     bool
	}{
		{"answer echoes the URL", echo.URL + "/robot/send?access_token=" + token, true},
		{"connection refused", closedURL + "/robot/send?access_token=" + token, true},
		{"no token", echo.URL + "/robot/send", false},
		{"unparseable", "https://oapi.dingtalk.com:bad/robot/send?access_token=" + token, false},
	}
	snd := newSender(t, dingtalk.Config{Secrets: map[string]string{token: secret}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := snd.Send(context.Background(), message(c.address))
			f := failure(t, err)
			if f.Retryable != c.retryable {
				t.Fatalf("retryable = %v, want %v: %v", f.Retryable, c.retryable, f)
			}
			for _, s := range []string{token, secret} {
				if strings.Contains(f.Reason, s) || strings.Contains(err.Error(), s) {
					t.Fatalf("%q leaked: %q", s, err)
				}
			}
			// The signature itself is a credential for its hour of validity.
			if i := strings.Index(err.Error(), "sign="); i >= 0 && !strings.HasPrefix(err.Error()[i:], "sign=<redacted>") {
				t.Fatalf("sign leaked: %q", err)
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
	_, err := newSender(t, dingtalk.Config{}).Send(ctx, message(srv.URL+"/robot/send?access_token="+token))
	if f := failure(t, err); !f.Retryable || f.Reason != "timeout" {
		t.Fatalf("want a retryable timeout, got %+v", f)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	_, err := dingtalk.New(dingtalk.Config{Secrets: map[string]string{
		"https://oapi.dingtalk.com/robot/send": secret, // no access_token
		"tok":                                  "",
	}})
	if err == nil || !strings.Contains(err.Error(), "access_token") || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("New error = %v, want both problems reported", err)
	}
	if s, err := dingtalk.New(dingtalk.Config{}); err != nil || s == nil {
		t.Fatalf("zero config: %v", err)
	}
}
