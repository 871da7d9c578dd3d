package sms_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/sms"
	"herald/domain"
)

const (
	accountSID = "AC0123456789abcdef0123456789abcdef"
	authToken  = "tok-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
	fromNumber = "+15005550006"
	serviceSID = "MG0123456789abcdef0123456789abcdef"
)

// fakeTwilio speaks the Messages API's wire format over real HTTP. It
// refuses requests that Twilio would refuse (path, method, basic auth,
// content type, missing fields) and answers by the To number:
//
//	+15005550001  400 code 21211 (invalid 'To' number)
//	+15005550009  400 code 21614 (not a mobile number)
//	+15005550429  429 code 20429, Retry-After: 7
//	+15005550503  503 code 20500
//	+15005550504  503 code 20500, Retry-After: ten years in seconds
//	+15005550777  waits until the client gives up
//	anything else 201 with a queued message
type fakeTwilio struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
}

type seen struct {
	form        url.Values
	idempotency string
	userAgent   string
}

func startTwilio(t *testing.T) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTwilio) seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.requests...)
}

func twilioError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"code":      code,
		"message":   message,
		"more_info": fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code),
		"status":    status,
	})
}

func (f *fakeTwilio) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+accountSID+"/Messages.json" {
		twilioError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != accountSID || pass != authToken {
		// Echoes the token it got, as a careless provider might: the
		// sender must scrub it.
		twilioError(w, http.StatusUnauthorized, 20003, "Authenticate: token "+pass+" is not valid")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		twilioError(w, http.StatusBadRequest, 20001, "unexpected content type "+ct)
		return
	}
	if err := r.ParseForm(); err != nil {
		twilioError(w, http.StatusBadRequest, 20001, err.Error())
		return
	}
	form := r.PostForm
	f.mu.Lock()
	f.requests = append(f.requests, seen{form: form, idempotency: r.Header.Get("Idempotency-Key"), userAgent: r.UserAgent()})
	f.mu.Unlock()
	to := form.Get("To")
	switch {
	case to == "":
		twilioError(w, http.StatusBadRequest, 21604, "A 'To' phone number is required.")
		return
	case form.Get("Body") == "":
		twilioError(w, http.StatusBadRequest, 21602, "Message body is required.")
		return
	case form.Get("From") == "" && form.Get("MessagingServiceSid") == "":
		twilioError(w, http.StatusBadRequest, 21603, "A 'From' phone number is required.")
		return
	}
	switch to {
	case "+15005550001":
		twilioError(w, http.StatusBadRequest, 21211, "The 'To' number "+to+" is not a valid phone number.")
		return
	case "+15005550009":
		twilioError(w, http.StatusBadRequest, 21614, "'To' number is not a valid mobile number")
		return
	case "+15005550429":
		w.Header().Set("Retry-After", "7")
		twilioError(w, http.StatusTooManyRequests, 20429, "Too Many Requests")
		return
	case "+15005550503":
		twilioError(w, http.StatusServiceUnavailable, 20500, "Service unavailable")
		return
	case "+15005550504":
		w.Header().Set("Retry-After", "315360000")
		twilioError(w, http.StatusServiceUnavailable, 20500, "Service unavailable")
		return
	case "+15005550777":
		<-r.Context().Done()
		return
	}
	sid := fmt.Sprintf("SM%032x", len(f.seen()))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"account_sid":           accountSID,
		"api_version":           "2010-04-01",
		"body":                  form.Get("Body"),
		"date_created":          "Mon, 23 Nov 2026 14:59:02 +0000",
		"date_sent":             nil,
		"date_updated":          "Mon, 23 Nov 2026 14:59:02 +0000",
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  form.Get("From"),
		"messaging_service_sid": nilIfEmpty(form.Get("MessagingServiceSid")),
		"num_media":             "0",
		"num_segments":          "1",
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   sid,
		"status":                "queued",
		"subresource_uris":      map[string]string{"media": "/2010-04-01/Accounts/" + accountSID + "/Messages/" + sid + "/Media.json"},
		"to":                    to,
		"uri":                   "/2010-04-01/Accounts/" + accountSID + "/Messages/" + sid + ".json",
	})
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func config(f *fakeTwilio) sms.Config {
	return sms.Config{
		BaseURL:           f.URL,
		AccountSID:        accountSID,
		AuthToken:         authToken,
		From:              fromNumber,
		StatusCallbackURL: "https://herald.example.com/v1/receipts/sms",
		Timeout:           10 * time.Second,
	}
}

func newSender(t *testing.T, cfg sms.Config) *sms.Sender {
	t.Helper()
	s, err := sms.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func message(to string) channel.Message {
	n, d := domain.NotificationID("0190c3a2-7b1e-7f00-8000-00000000002a"), domain.NewDeliveryID(domain.ChannelSMS, 1)
	return channel.Message{
		NotificationID: n,
		DeliveryID:     d,
		IdempotencyKey: n.DeliveryKey(d),
		Channel:        domain.ChannelSMS,
		Address:        to,
		Subject:        "Your code",
		Body:           "Code 123456 — valid 5 min",
		HTML:           "<p>never sent by SMS</p>",
		Attempt:        1,
	}
}

func TestSendSpeaksTwilio(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		change   func(*sms.Config)
		wantFrom string
		wantMG   string
	}{
		{name: "from number", change: func(*sms.Config) {}, wantFrom: fromNumber},
		{name: "messaging service", change: func(c *sms.Config) { c.From, c.MessagingServiceSID = "", serviceSID }, wantMG: serviceSID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startTwilio(t)
			cfg := config(f)
			tc.change(&cfg)
			s := newSender(t, cfg)
			m := message("+14155550123")

			res, err := s.Send(context.Background(), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if res.ProviderMessageID != fmt.Sprintf("SM%032x", 1) {
				t.Errorf("ProviderMessageID = %q, want the answer's sid", res.ProviderMessageID)
			}
			if res.Confirmed {
				t.Error("Confirmed = true; SMS is only confirmed by a receipt")
			}
			reqs := f.seen()
			if len(reqs) != 1 {
				t.Fatalf("provider saw %d requests, want 1", len(reqs))
			}
			form := reqs[0].form
			if got := form.Get("To"); got != "+14155550123" {
				t.Errorf("To = %q", got)
			}
			if got := form.Get("From"); got != tc.wantFrom {
				t.Errorf("From = %q, want %q", got, tc.wantFrom)
			}
			if got := form.Get("MessagingServiceSid"); got != tc.wantMG {
				t.Errorf("MessagingServiceSid = %q, want %q", got, tc.wantMG)
			}
			if got, want := form.Get("Body"), "Your code\nCode 123456 — valid 5 min"; got != want {
				t.Errorf("Body = %q, want %q", got, want)
			}
			if reqs[0].idempotency != m.IdempotencyKey {
				t.Errorf("Idempotency-Key = %q, want %q", reqs[0].idempotency, m.IdempotencyKey)
			}
			cb, err := url.Parse(form.Get("StatusCallback"))
			if err != nil {
				t.Fatalf("StatusCallback %q: %v", form.Get("StatusCallback"), err)
			}
			if cb.Scheme != "https" || cb.Host != "herald.example.com" || cb.Path != "/v1/receipts/sms" {
				t.Errorf("StatusCallback = %q, want Herald's receipts endpoint", cb)
			}
			if got := cb.Query().Get("delivery"); got != m.IdempotencyKey {
				t.Errorf("StatusCallback delivery = %q, want %q", got, m.IdempotencyKey)
			}
		})
	}
}

func TestSendFailuresAreClassified(t *testing.T) {
	t.Parallel()
	f := startTwilio(t)
	cases := []struct {
		name       string
		to         string
		token      string // overrides the auth token
		retryable  bool
		throttled  bool
		retryAfter time.Duration
		reason     string
		noRequest  bool
	}{
		{name: "not E.164", to: "4155550123", reason: "E.164", noRequest: true},
		{name: "E.164 with a leading zero", to: "+04155550123", reason: "E.164", noRequest: true},
		{name: "E.164 too long", to: "+1234567890123456", reason: "E.164", noRequest: true},
		{name: "invalid number 21211", to: "+15005550001", reason: "21211"},
		{name: "not a mobile 21614", to: "+15005550009", reason: "21614"},
		{name: "throttled 429", to: "+15005550429", retryable: true, throttled: true, retryAfter: 7 * time.Second, reason: "429"},
		{name: "provider down 503", to: "+15005550503", retryable: true, reason: "503"},
		{name: "503 asking for ten years is capped", to: "+15005550504", retryable: true, retryAfter: channel.MaxRetryAfter, reason: "503"},
		{name: "wrong token 401", to: "+14155550123", token: "wrong-token-that-must-not-leak", reason: "401"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(f)
			if tc.token != "" {
				cfg.AuthToken = tc.token
			}
			s := newSender(t, cfg)
			before := len(f.seen())
			_, err := s.Send(context.Background(), message(tc.to))
			fl := failure(t, err)
			if fl.Retryable != tc.retryable || fl.Throttled != tc.throttled || fl.RetryAfter != tc.retryAfter {
				t.Errorf("failure = retryable %v throttled %v retry-after %s, want %v %v %s (reason %q)",
					fl.Retryable, fl.Throttled, fl.RetryAfter, tc.retryable, tc.throttled, tc.retryAfter, fl.Reason)
			}
			if !strings.Contains(fl.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to mention %q", fl.Reason, tc.reason)
			}
			if tc.noRequest && len(f.seen()) != before {
				t.Error("a request reached the provider; the number should have been refused first")
			}
			for _, secret := range []string{authToken, "wrong-token-that-must-not-leak"} {
				if strings.Contains(fl.Reason, secret) || strings.Contains(err.Error(), secret) {
					t.Errorf("failure reveals a token: reason %q, error %q", fl.Reason, err)
				}
			}
		})
	}
}

func TestSendRespectsDeadlines(t *testing.T) {
	t.Parallel()
	f := startTwilio(t)
	cases := []struct {
		name       string
		timeout    time.Duration
		ctxTimeout time.Duration
	}{
		{name: "ctx deadline", timeout: time.Minute, ctxTimeout: 200 * time.Millisecond},
		{name: "config timeout", timeout: 200 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config(f)
			cfg.Timeout = tc.timeout
			s := newSender(t, cfg)
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			_, err := s.Send(ctx, message("+15005550777"))
			fl := failure(t, err)
			if !fl.Retryable || !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("failure = %v (retryable %v), want a retryable timeout", err, fl.Retryable)
			}
		})
	}
}

func failure(t *testing.T, err error) *channel.Failure {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want a failure")
	}
	var f *channel.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %T %v is not a *channel.Failure", err, err)
	}
	return f
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() sms.Config {
		return sms.Config{AccountSID: accountSID, AuthToken: authToken, From: fromNumber}
	}
	cases := []struct {
		name   string
		change func(*sms.Config)
		errs   []string
	}{
		{name: "defaults are valid", change: func(*sms.Config) {}},
		{name: "no credentials", change: func(c *sms.Config) { c.AccountSID, c.AuthToken = "", "" }, errs: []string{"account sid", "auth token"}},
		{name: "both senders", change: func(c *sms.Config) { c.MessagingServiceSID = serviceSID }, errs: []string{"exactly one"}},
		{name: "no sender", change: func(c *sms.Config) { c.From = "" }, errs: []string{"exactly one"}},
		{name: "relative callback", change: func(c *sms.Config) { c.StatusCallbackURL = "/v1/receipts/sms" }, errs: []string{"status callback url"}},
		{name: "credentials in base url", change: func(c *sms.Config) { c.BaseURL = "https://u:p@api.example.com" }, errs: []string{"base url"}},
		{name: "bad header and timeout", change: func(c *sms.Config) { c.IdempotencyHeader, c.Timeout = "Bad Header", -time.Second },
			errs: []string{"idempotency header", "timeout"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.change(&cfg)
			_, err := sms.New(cfg)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted the config")
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if cfg.AuthToken != "" && strings.Contains(err.Error(), cfg.AuthToken) {
				t.Errorf("error reveals the auth token: %v", err)
			}
		})
	}
}
