package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"herald/adapters/channel"
)

// deliveryParam is the StatusCallback query parameter that carries the
// delivery's idempotency key.
const deliveryParam = "delivery"

// maxAnswer bounds how much of the provider's answer is read.
const maxAnswer = 1 << 20

// Sender sends SMS through a Twilio-compatible API. It is safe for
// concurrent use.
type Sender struct {
	cfg      Config
	endpoint string
	client   *http.Client
}

var _ channel.Sender = (*Sender)(nil)

// New returns a Sender for cfg, after filling its defaults and validating it.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sms config: %w", err)
	}
	base, _ := url.Parse(cfg.BaseURL) // Validate parsed it
	return &Sender{
		cfg:      cfg,
		endpoint: cfg.BaseURL + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json",
		client: channel.NewHTTPClient(channel.HTTPOptions{
			Timeout:    cfg.Timeout,
			AllowHosts: []string{base.Hostname()},
		}),
	}, nil
}

// ValidE164 reports whether number is an E.164 phone number: "+", then 2 to
// 15 digits, the first not 0.
func ValidE164(number string) bool {
	if len(number) < 3 || len(number) > 16 || number[0] != '+' || number[1] == '0' {
		return false
	}
	for i := 1; i < len(number); i++ {
		if number[i] < '0' || number[i] > '9' {
			return false
		}
	}
	return true
}

// Send posts m to the provider. On success the Result carries the provider's
// message sid and Confirmed false; on failure the error is a
// *channel.Failure classified as described in the package documentation.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	if !ValidE164(m.Address) {
		return channel.Result{}, channel.Permanent(fmt.Sprintf("sms: %q is not an E.164 phone number", m.Address), nil)
	}
	text := smsText(m.Subject, m.Body)
	if text == "" {
		return channel.Result{}, channel.Permanent("sms: message has no text", nil)
	}
	form := url.Values{"To": {m.Address}, "Body": {text}}
	if s.cfg.MessagingServiceSID != "" {
		form.Set("MessagingServiceSid", s.cfg.MessagingServiceSID)
	} else {
		form.Set("From", s.cfg.From)
	}
	if s.cfg.StatusCallbackURL != "" && m.IdempotencyKey != "" {
		form.Set("StatusCallback", callbackURL(s.cfg.StatusCallbackURL, m.IdempotencyKey))
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return channel.Result{}, channel.Permanent("sms: build request", s.scrubErr(err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	if m.IdempotencyKey != "" {
		req.Header.Set(s.cfg.IdempotencyHeader, m.IdempotencyKey)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return channel.Result{}, s.transportFailure(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil && resp.StatusCode/100 != 2 {
		return channel.Result{}, s.transportFailure(ctx, err)
	}
	if resp.StatusCode/100 == 2 {
		// The provider took the message. An answer without a readable sid
		// is still a send: retrying would text the recipient twice, and the
		// receipt names the delivery through the callback URL anyway.
		var answer struct {
			SID string `json:"sid"`
		}
		_ = json.Unmarshal(body, &answer)
		return channel.Result{ProviderMessageID: answer.SID}, nil
	}
	return channel.Result{}, s.statusFailure(resp, body)
}

func smsText(subject, body string) string {
	subject, body = strings.TrimSpace(subject), strings.TrimSpace(body)
	switch {
	case subject == "":
		return body
	case body == "":
		return subject
	}
	return subject + "\n" + body
}

// callbackURL adds the delivery key to the configured callback URL, keeping
// any query it already has.
func callbackURL(base, key string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // Validate parsed it
	}
	q := u.Query()
	q.Set(deliveryParam, key)
	u.RawQuery = q.Encode()
	return u.String()
}

// apiError is Twilio's JSON error body.
type apiError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func (s *Sender) statusFailure(resp *http.Response, body []byte) *channel.Failure {
	var ae apiError
	reason := fmt.Sprintf("sms: provider answered %d", resp.StatusCode)
	if json.Unmarshal(body, &ae) == nil && (ae.Code != 0 || ae.Message != "") {
		reason += fmt.Sprintf(" (error %d: %s)", ae.Code, oneLine(ae.Message))
	}
	reason = s.scrub(reason)
	err := fmt.Errorf("%s %s: %s", resp.Request.Method, redactURL(resp.Request.URL), resp.Status)
	code := resp.StatusCode
	switch {
	case code == http.StatusTooManyRequests:
		return &channel.Failure{Retryable: true, Throttled: true, RetryAfter: channel.RetryAfter(resp.Header.Get("Retry-After"), time.Now()), Reason: reason, Err: err}
	case code >= 500 || code == http.StatusRequestTimeout:
		return &channel.Failure{Retryable: true, RetryAfter: channel.RetryAfter(resp.Header.Get("Retry-After"), time.Now()), Reason: reason, Err: err}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return channel.Permanent(reason+": credentials rejected", err)
	case code/100 == 3:
		return channel.Permanent(reason+": redirects are not followed, check the base URL", err)
	default:
		return channel.Permanent(reason, err)
	}
}

func (s *Sender) transportFailure(ctx context.Context, err error) *channel.Failure {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.Canceled) {
			return &channel.Failure{Retryable: true, Reason: "sms: cancelled", Err: ctxErr}
		}
		return &channel.Failure{Retryable: true, Reason: "sms: timed out", Err: ctxErr}
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Timeout() {
		return &channel.Failure{Retryable: true, Reason: "sms: timed out", Err: errors.Join(context.DeadlineExceeded, s.scrubErr(err))}
	}
	return channel.Retryable("sms: connection failed", s.scrubErr(err))
}

func (s *Sender) scrub(text string) string {
	return strings.ReplaceAll(text, s.cfg.AuthToken, "[redacted]")
}

// scrubErr returns err itself when its text holds no secret, so errors.Is
// and errors.As keep working, and a plain error with the scrubbed text
// otherwise.
func (s *Sender) scrubErr(err error) error {
	text := err.Error()
	if clean := s.scrub(text); clean != text {
		return errors.New(clean)
	}
	return err
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
