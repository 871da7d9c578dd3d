package slack

import (
	"bytes"
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

var _ channel.Sender = (*Sender)(nil)

const maxAnswerBytes = 64 << 10

// Config configures a Sender.
type Config struct {
	// Client makes every call. Default: channel.NewHTTPClient with no
	// allow-list.
	Client *http.Client
	// UserAgent is sent with every call. Default "Herald-Slack/1".
	UserAgent string
	// Now is the clock for Retry-After dates. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = channel.NewHTTPClient(channel.HTTPOptions{})
	}
	if c.UserAgent == "" {
		c.UserAgent = "Herald-Slack/1"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Client == nil {
		errs = append(errs, errors.New("client is nil"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("clock is nil"))
	}
	return errors.Join(errs...)
}

// Sender posts messages to Slack incoming webhooks. It is safe for
// concurrent use.
type Sender struct {
	client *http.Client
	ua     string
	now    func() time.Time
}

// New returns a Sender for cfg, after filling in defaults and validating.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slack config: %w", err)
	}
	return &Sender{client: cfg.Client, ua: cfg.UserAgent, now: cfg.Now}, nil
}

// payload is the incoming-webhook body.
type payload struct {
	Text   string `json:"text"`
	Mrkdwn bool   `json:"mrkdwn"`
}

// Send posts m to the incoming webhook m.Address. Slack's 200 is a
// confirmed delivery; 400 (invalid_payload), 403 (action_prohibited), 404
// (no_service, the webhook was removed), 410 (channel_is_archived) and any
// other 4xx or 3xx are permanent; 429 is throttled, with Slack's
// Retry-After; 5xx, timeouts and connection errors are retryable. Slack's
// error word is quoted in the Reason.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	u, err := url.Parse(m.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return channel.Result{}, channel.Permanent("invalid slack webhook address", errors.New("address is not an absolute http(s) URL"))
	}
	body, err := json.Marshal(payload{Text: Text(m.Subject, m.Body), Mrkdwn: true})
	if err != nil {
		return channel.Result{}, channel.Permanent("encode payload", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return channel.Result{}, channel.Permanent("invalid slack webhook address", nil)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", s.ua)

	secrets := channel.URLSecrets(u)
	resp, err := s.client.Do(req)
	if err != nil {
		return channel.Result{}, channel.RequestFailure(err, secrets...)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	snippet := channel.AnswerSnippet(answer, secrets...)
	if f := channel.StatusFailure(resp.StatusCode, resp.Header, snippet, s.now()); f != nil {
		return channel.Result{}, f
	}
	return channel.Result{Confirmed: true}, nil
}

// Text renders a subject and a body as Slack mrkdwn: the subject in bold
// on the first line, the body after it. Slack's three control characters
// (&, <, >) are escaped so user text cannot forge mentions or links; a
// subject is kept on one line so the bold markers pair up.
func Text(subject, body string) string {
	subject = strings.Join(strings.Fields(subject), " ")
	body = escape(strings.TrimSpace(body))
	if subject == "" {
		return body
	}
	if body == "" {
		return "*" + escape(subject) + "*"
	}
	return "*" + escape(subject) + "*\n" + body
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return escaper.Replace(s) }
