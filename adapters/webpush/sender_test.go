package webpush_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/webpush"
	"herald/adapters/webpush/webpushtest"
	"herald/domain"
)

const subject = "mailto:ops@herald.example"

// fixture is a Sender wired to a local push service.
type fixture struct {
	ps        *webpushtest.PushService
	subs      *webpush.MemorySubscriptions
	private   string
	expiredMu sync.Mutex
	expired   []expiredCall
}

type expiredCall struct {
	recipient string
	sub       webpush.Subscription
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	ps := webpushtest.NewPushService(pub, subject)
	t.Cleanup(ps.Close)
	return &fixture{ps: ps, subs: &webpush.MemorySubscriptions{}, private: priv}
}

// allowListedClient is the guarded client with 127.0.0.1 allowed and the
// push service's certificate trusted.
func (f *fixture) allowListedClient() *http.Client {
	c := channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}})
	roots := x509.NewCertPool()
	roots.AddCert(f.ps.Certificate())
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: roots}
	return c
}

// sender builds a Sender; edit may change the config first.
func (f *fixture) sender(t *testing.T, edit func(*webpush.Config)) *webpush.Sender {
	t.Helper()
	cfg := webpush.Config{
		Subscriptions:   f.subs,
		VAPIDPublicKey:  f.ps.PublicKey,
		VAPIDPrivateKey: f.private,
		Subject:         subject,
		HTTPClient:      f.allowListedClient(),
		OnExpired: func(_ context.Context, recipient string, s webpush.Subscription) {
			f.expiredMu.Lock()
			defer f.expiredMu.Unlock()
			f.expired = append(f.expired, expiredCall{recipient, s})
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := webpush.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func (f *fixture) subscribe(t *testing.T, recipient, path string, a webpushtest.Answer) webpush.Subscription {
	t.Helper()
	s := f.ps.Subscribe(path, a)
	if err := f.subs.Add(recipient, s); err != nil {
		t.Fatalf("Add: %v", err)
	}
	return s
}

func (f *fixture) expiredCalls() []expiredCall {
	f.expiredMu.Lock()
	defer f.expiredMu.Unlock()
	return append([]expiredCall(nil), f.expired...)
}

func message(recipient string) channel.Message {
	return channel.Message{
		NotificationID: "n-1",
		DeliveryID:     "webpush-1",
		IdempotencyKey: "n-1/webpush-1",
		Channel:        domain.ChannelWebPush,
		Address:        recipient,
		Priority:       domain.PriorityNormal,
		Subject:        "Your code",
		Body:           "Code 123456",
		Metadata:       map[string]string{"order": "A-17"},
		Attempt:        1,
	}
}

// failure asserts that err is a *channel.Failure and that nothing in it
// reveals the VAPID private key or an endpoint's capability path.
func (f *fixture) failure(t *testing.T, err error, paths ...string) *channel.Failure {
	t.Helper()
	var fl *channel.Failure
	if !errors.As(err, &fl) {
		t.Fatalf("error %v (%T) is not a *channel.Failure", err, err)
	}
	text := err.Error() + " " + fl.Reason
	if strings.Contains(text, f.private) {
		t.Fatalf("failure reveals the VAPID private key: %s", text)
	}
	for _, p := range paths {
		if strings.Contains(text, p) {
			t.Fatalf("failure reveals the endpoint path %s: %s", p, text)
		}
	}
	return fl
}

func TestSendDeliversEncryptedSignedPush(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		priority    domain.Priority
		wantUrgency string
		edit        func(*webpush.Config)
		wantTTL     string
		wantTopic   string
		wantExpiry  time.Duration
	}{
		{name: "high", priority: domain.PriorityHigh, wantUrgency: "high", wantTTL: "86400", wantExpiry: webpush.DefaultVAPIDExpiry},
		{name: "normal", priority: domain.PriorityNormal, wantUrgency: "normal", wantTTL: "86400", wantExpiry: webpush.DefaultVAPIDExpiry},
		{name: "low", priority: domain.PriorityLow, wantUrgency: "low", wantTTL: "86400", wantExpiry: webpush.DefaultVAPIDExpiry},
		{
			name: "ttl topic expiry", priority: domain.PriorityNormal, wantUrgency: "normal",
			edit: func(c *webpush.Config) {
				c.TTL = 90 * time.Minute
				c.VAPIDExpiry = time.Hour
				c.Topic = func(m channel.Message) string { return "order-" + m.Metadata["order"] }
			},
			wantTTL: "5400", wantTopic: "order-A-17", wantExpiry: time.Hour,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.subscribe(t, "user-42", "/push/phone", webpushtest.Answer{})
			s := f.sender(t, tc.edit)
			m := message("user-42")
			m.Priority = tc.priority

			before := time.Now()
			res, err := s.Send(t.Context(), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if !res.Confirmed || res.ProviderMessageID != "/message/push/phone" {
				t.Fatalf("result %+v, want confirmed with the Location as id", res)
			}
			reqs := f.ps.Requests()
			if len(reqs) != 1 {
				t.Fatalf("push service got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Err != nil {
				t.Fatalf("push service: %v", r.Err)
			}
			want := webpushtest.Payload{
				Title: "Your code", Body: "Code 123456", NotificationID: "n-1", DeliveryID: "webpush-1",
				IdempotencyKey: "n-1/webpush-1", Metadata: map[string]string{"order": "A-17"},
			}
			if r.Payload.Title != want.Title || r.Payload.Body != want.Body ||
				r.Payload.NotificationID != want.NotificationID || r.Payload.DeliveryID != want.DeliveryID ||
				r.Payload.IdempotencyKey != want.IdempotencyKey || r.Payload.Metadata["order"] != "A-17" {
				t.Fatalf("decrypted payload %+v, want %+v", r.Payload, want)
			}
			if got := r.Header.Get("Urgency"); got != tc.wantUrgency {
				t.Errorf("Urgency %q, want %q", got, tc.wantUrgency)
			}
			if got := r.Header.Get("TTL"); got != tc.wantTTL {
				t.Errorf("TTL %q, want %q", got, tc.wantTTL)
			}
			if got := r.Header.Get("Topic"); got != tc.wantTopic {
				t.Errorf("Topic %q, want %q", got, tc.wantTopic)
			}
			wantExp := before.Add(tc.wantExpiry).Unix()
			if r.Claims.Exp < wantExp-1 || r.Claims.Exp > time.Now().Add(tc.wantExpiry).Unix()+1 {
				t.Errorf("exp %d, want about %d (now + %s)", r.Claims.Exp, wantExp, tc.wantExpiry)
			}
		})
	}
}

func TestSendPushesToEverySubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.subscribe(t, "user-42", "/push/phone", webpushtest.Answer{})
	f.subscribe(t, "user-42", "/push/laptop", webpushtest.Answer{Code: http.StatusAccepted})
	f.subscribe(t, "user-7", "/push/other", webpushtest.Answer{})
	s := f.sender(t, nil)

	res, err := s.Send(t.Context(), message("user-42"))
	if err != nil || !res.Confirmed {
		t.Fatalf("Send = %+v, %v; want confirmed", res, err)
	}
	seen := map[string]bool{}
	for _, r := range f.ps.Requests() {
		if r.Err != nil {
			t.Fatalf("push service, %s: %v", r.Path, r.Err)
		}
		if r.Payload.IdempotencyKey != "n-1/webpush-1" {
			t.Errorf("%s: idempotency key %q", r.Path, r.Payload.IdempotencyKey)
		}
		seen[r.Path] = true
	}
	if len(seen) != 2 || !seen["/push/phone"] || !seen["/push/laptop"] {
		t.Fatalf("pushed to %v, want exactly the two browsers of user-42", seen)
	}
}

func TestSendExpiredSubscriptions(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusGone, http.StatusNotFound} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			gone := f.subscribe(t, "user-42", "/push/gone", webpushtest.Answer{Code: code})
			s := f.sender(t, nil)

			_, err := s.Send(t.Context(), message("user-42"))
			fl := f.failure(t, err, "/push/gone")
			if !fl.Expired || fl.Retryable {
				t.Fatalf("failure %+v, want permanent and Expired", fl)
			}
			calls := f.expiredCalls()
			if len(calls) != 1 || calls[0].recipient != "user-42" || calls[0].sub != gone {
				t.Fatalf("OnExpired calls %+v, want one for user-42's gone subscription", calls)
			}
		})
	}

	t.Run("one of two", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		gone := f.subscribe(t, "user-42", "/push/gone", webpushtest.Answer{Code: http.StatusGone})
		f.subscribe(t, "user-42", "/push/alive", webpushtest.Answer{})
		s := f.sender(t, func(c *webpush.Config) {
			c.OnExpired = func(_ context.Context, recipient string, sub webpush.Subscription) {
				f.subs.Remove(recipient, sub.Endpoint)
				f.expiredMu.Lock()
				defer f.expiredMu.Unlock()
				f.expired = append(f.expired, expiredCall{recipient, sub})
			}
		})

		res, err := s.Send(t.Context(), message("user-42"))
		if err != nil || !res.Confirmed {
			t.Fatalf("Send = %+v, %v; want confirmed by the live subscription", res, err)
		}
		if calls := f.expiredCalls(); len(calls) != 1 || calls[0].sub != gone {
			t.Fatalf("OnExpired calls %+v, want the gone subscription only", calls)
		}
		left, _ := f.subs.Subscriptions(t.Context(), "user-42")
		if len(left) != 1 || !strings.HasSuffix(left[0].Endpoint, "/push/alive") {
			t.Fatalf("subscriptions left %+v, want the live one", left)
		}
	})

	t.Run("all of two", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		f.subscribe(t, "user-42", "/push/a", webpushtest.Answer{Code: http.StatusGone})
		f.subscribe(t, "user-42", "/push/b", webpushtest.Answer{Code: http.StatusNotFound})
		s := f.sender(t, nil)

		_, err := s.Send(t.Context(), message("user-42"))
		fl := f.failure(t, err, "/push/a", "/push/b")
		if !fl.Expired || fl.Retryable {
			t.Fatalf("failure %+v, want permanent and Expired", fl)
		}
		if calls := f.expiredCalls(); len(calls) != 2 {
			t.Fatalf("OnExpired called %d times, want 2", len(calls))
		}
	})
}

func TestSendClassifiesPushServiceAnswers(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		answers        []webpushtest.Answer
		wantRetryable  bool
		wantThrottled  bool
		wantRetryAfter time.Duration
	}{
		{name: "429 with Retry-After", answers: []webpushtest.Answer{{Code: 429, Header: http.Header{"Retry-After": {"120"}}}},
			wantRetryable: true, wantThrottled: true, wantRetryAfter: 120 * time.Second},
		{name: "503 with Retry-After", answers: []webpushtest.Answer{{Code: 503, Header: http.Header{"Retry-After": {"30"}}}},
			wantRetryable: true, wantRetryAfter: 30 * time.Second},
		{name: "503 asking for a week is capped", answers: []webpushtest.Answer{{Code: 503, Header: http.Header{"Retry-After": {"604800"}}}},
			wantRetryable: true, wantRetryAfter: channel.MaxRetryAfter},
		{name: "500", answers: []webpushtest.Answer{{Code: 500}}, wantRetryable: true},
		{name: "400", answers: []webpushtest.Answer{{Code: 400}}},
		{name: "403 vapid refused", answers: []webpushtest.Answer{{Code: 403}}},
		{name: "413", answers: []webpushtest.Answer{{Code: 413}}},
		{name: "400 and 429", answers: []webpushtest.Answer{{Code: 400}, {Code: 429, Header: http.Header{"Retry-After": {"7"}}}},
			wantRetryable: true, wantThrottled: true, wantRetryAfter: 7 * time.Second},
		{name: "410 and 500", answers: []webpushtest.Answer{{Code: 410}, {Code: 500}}, wantRetryable: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var paths []string
			for i, a := range tc.answers {
				p := "/push/secret-capability-" + string(rune('a'+i))
				f.subscribe(t, "user-42", p, a)
				paths = append(paths, p)
			}
			s := f.sender(t, nil)

			_, err := s.Send(t.Context(), message("user-42"))
			fl := f.failure(t, err, paths...)
			if fl.Retryable != tc.wantRetryable || fl.Throttled != tc.wantThrottled ||
				fl.RetryAfter != tc.wantRetryAfter || fl.Expired {
				t.Fatalf("failure %+v, want retryable=%v throttled=%v retryAfter=%s, not expired",
					fl, tc.wantRetryable, tc.wantThrottled, tc.wantRetryAfter)
			}
			if !strings.Contains(fl.Reason, f.ps.URL) {
				t.Errorf("reason %q does not name the push service origin %s", fl.Reason, f.ps.URL)
			}
			for _, r := range f.ps.Requests() {
				if r.Err != nil {
					t.Fatalf("push service, %s: %v", r.Path, r.Err)
				}
			}
		})
	}
}

func TestSendRefusesEndpointNotAllowListed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.subscribe(t, "user-42", "/push/internal", webpushtest.Answer{})
	// The default client: channel.NewHTTPClient with no allow-list.
	s := f.sender(t, func(c *webpush.Config) { c.HTTPClient = nil })

	_, err := s.Send(t.Context(), message("user-42"))
	fl := f.failure(t, err, "/push/internal")
	if fl.Retryable || fl.Expired {
		t.Fatalf("failure %+v, want permanent", fl)
	}
	if !errors.Is(err, channel.ErrAddressRefused) {
		t.Fatalf("error %v does not wrap channel.ErrAddressRefused", err)
	}
	if n := len(f.ps.Requests()); n != 0 {
		t.Fatalf("push service on 127.0.0.1 got %d requests through the guard", n)
	}
}

func TestSendTimeoutIsRetryable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.subscribe(t, "user-42", "/push/slow", webpushtest.Answer{Block: true})
	s := f.sender(t, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := s.Send(ctx, message("user-42"))
	fl := f.failure(t, err, "/push/slow")
	if !fl.Retryable || fl.Expired {
		t.Fatalf("failure %+v, want retryable", fl)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

type failingLookup struct{}

func (failingLookup) Subscriptions(context.Context, string) ([]webpush.Subscription, error) {
	return nil, errors.New("profile store down")
}

func TestSendWithoutUsableSubscription(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.subscribe(t, "user-42", "/push/phone", webpushtest.Answer{})
	cases := []struct {
		name          string
		edit          func(*webpush.Config)
		message       func() channel.Message
		wantRetryable bool
		wantReason    string
	}{
		{name: "no subscription", message: func() channel.Message { return message("user-7") },
			wantReason: "no web push subscription"},
		{name: "no recipient", message: func() channel.Message { return message("") },
			wantReason: "no recipient id"},
		{name: "lookup fails", edit: func(c *webpush.Config) { c.Subscriptions = failingLookup{} },
			message: func() channel.Message { return message("user-42") }, wantRetryable: true,
			wantReason: "subscription lookup failed"},
		{name: "payload too large", message: func() channel.Message {
			m := message("user-42")
			m.Body = strings.Repeat("x", webpush.MaxPayloadLen)
			return m
		}, wantReason: "exceeds"},
		{name: "invalid topic", edit: func(c *webpush.Config) {
			c.Topic = func(channel.Message) string { return "not a valid topic!" }
		}, message: func() channel.Message { return message("user-42") }, wantReason: "topic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := f.sender(t, tc.edit)
			_, err := s.Send(t.Context(), tc.message())
			fl := f.failure(t, err)
			if fl.Retryable != tc.wantRetryable || !strings.Contains(fl.Reason, tc.wantReason) {
				t.Fatalf("failure %+v, want retryable=%v and a reason with %q", fl, tc.wantRetryable, tc.wantReason)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(f.ps.Requests()); n != 0 {
			t.Errorf("push service got %d requests, want none", n)
		}
	})
}

func TestSendMessageNearTheSizeLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.subscribe(t, "user-42", "/push/phone", webpushtest.Answer{})
	s := f.sender(t, nil)
	m := message("user-42")
	m.Metadata = nil
	// Fill the body so that the JSON is exactly MaxPayloadLen bytes.
	m.Body = ""
	base := len(`{"title":"Your code","body":"","notification_id":"n-1","delivery_id":"webpush-1","idempotency_key":"n-1/webpush-1"}`)
	m.Body = strings.Repeat("y", webpush.MaxPayloadLen-base)

	res, err := s.Send(t.Context(), m)
	if err != nil || !res.Confirmed {
		t.Fatalf("Send = %+v, %v; want confirmed", res, err)
	}
	r := f.ps.Requests()[0]
	if r.Err != nil {
		t.Fatalf("push service: %v", r.Err)
	}
	if r.Payload.Body != m.Body {
		t.Fatalf("decrypted body of %d bytes, want %d", len(r.Payload.Body), len(m.Body))
	}
}

// A push service whose certificate does not verify fails the delivery for
// good, with a reason naming the certificate problem: no retry schedule
// makes an untrusted or misnamed certificate valid, and "unreachable" would
// send an operator looking at the network. Connection errors stay
// retryable.
func TestSendClassifiesTransportFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		tls           func(f *fixture) *tls.Config
		closed        bool // the endpoint's port has nothing listening
		wantRetryable bool
		wantReason    []string
		wantCause     func(error) bool
	}{
		{
			name:       "certificate of an unknown authority",
			tls:        func(*fixture) *tls.Config { return &tls.Config{RootCAs: x509.NewCertPool()} },
			wantReason: []string{"TLS certificate", "x509: certificate signed by unknown authority"},
			wantCause: func(err error) bool {
				var e x509.UnknownAuthorityError
				return errors.As(err, &e)
			},
		},
		{
			name: "certificate for another host",
			tls: func(f *fixture) *tls.Config {
				roots := x509.NewCertPool()
				roots.AddCert(f.ps.Certificate())
				return &tls.Config{RootCAs: roots, ServerName: "push.herald.example"}
			},
			wantReason: []string{"TLS certificate", "not push.herald.example"},
			wantCause: func(err error) bool {
				var e x509.HostnameError
				return errors.As(err, &e)
			},
		},
		{
			name:          "connection refused",
			closed:        true,
			wantRetryable: true,
			wantReason:    []string{"unreachable"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			const path = "/push/secret-capability"
			sub := f.ps.Subscribe(path, webpushtest.Answer{})
			origin := f.ps.URL
			if tc.closed {
				l, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				origin = "https://" + l.Addr().String()
				l.Close()
				sub.Endpoint = origin + path
			}
			if err := f.subs.Add("user-42", sub); err != nil {
				t.Fatal(err)
			}
			s := f.sender(t, func(c *webpush.Config) {
				if tc.tls != nil {
					c.HTTPClient.Transport.(*http.Transport).TLSClientConfig = tc.tls(f)
				}
			})

			_, err := s.Send(t.Context(), message("user-42"))
			fl := f.failure(t, err, path)
			if fl.Retryable != tc.wantRetryable || fl.Expired {
				t.Fatalf("failure %+v, want retryable=%v, not expired", fl, tc.wantRetryable)
			}
			for _, w := range append(tc.wantReason, origin) {
				if !strings.Contains(fl.Reason, w) {
					t.Errorf("reason %q does not say %q", fl.Reason, w)
				}
			}
			if tc.wantCause != nil && !tc.wantCause(err) {
				t.Errorf("error %v does not wrap the certificate error", err)
			}
			if n := len(f.ps.Requests()); n != 0 {
				t.Errorf("push service got %d requests", n)
			}
		})
	}
}
