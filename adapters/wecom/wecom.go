package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"herald/adapters/channel"
)

var _ channel.Sender = (*Sender)(nil)

const maxAnswerBytes = 64 << 10

// MaxContentBytes is the longest markdown content a group robot accepts;
// Send cuts longer content (on a character boundary, ending in "…") rather
// than have the whole message refused.
const MaxContentBytes = 4096

// Error codes of the robot's answer that Send treats as transient; every
// other non-zero code is permanent (invalid key, robot removed, bad
// content...).
const (
	// CodeSystemBusy: WeCom is busy; its documentation advises retrying.
	CodeSystemBusy = -1
	// CodeFrequencyLimit: the API call frequency limit was hit (a group
	// robot takes 20 messages a minute).
	CodeFrequencyLimit = 45009
	// CodeConcurrencyLimit: too many concurrent calls.
	CodeConcurrencyLimit = 45033
)

// frequencyWindow is the window of the robot's 20-messages-a-minute limit:
// the earliest a throttled robot takes messages again.
const frequencyWindow = time.Minute

// Config configures a Sender.
type Config struct {
	// Client makes every call. Default: channel.NewHTTPClient with no
	// allow-list.
	Client *http.Client
	// UserAgent is sent with every call. Default "Herald-WeCom/1".
	UserAgent string
	// Now is the clock for Retry-After dates. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = channel.NewHTTPClient(channel.HTTPOptions{})
	}
	if c.UserAgent == "" {
		c.UserAgent = "Herald-WeCom/1"
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

// Sender posts markdown messages to WeCom group robots. It is safe for
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
		return nil, fmt.Errorf("wecom config: %w", err)
	}
	return &Sender{client: cfg.Client, ua: cfg.UserAgent, now: cfg.Now}, nil
}

type markdownMessage struct {
	MsgType  string   `json:"msgtype"`
	Markdown markdown `json:"markdown"`
}

type markdown struct {
	Content string `json:"content"`
}

type answer struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Send posts m as a markdown message to the robot at m.Address. errcode 0
// is a confirmed delivery; 45009 and 45033 are retryable and Throttled
// (45009 with a one-minute RetryAfter, the robot's rate window); -1 is
// retryable; other codes are permanent. Non-200 answers, timeouts and
// connection errors are classified as for any HTTP endpoint.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	u, err := url.Parse(m.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return channel.Result{}, channel.Permanent("invalid wecom robot address", errors.New("address is not an absolute http(s) URL"))
	}
	if u.Query().Get("key") == "" {
		return channel.Result{}, channel.Permanent("wecom robot address has no key", nil)
	}
	body, err := json.Marshal(markdownMessage{MsgType: "markdown", Markdown: markdown{Content: Content(m.Subject, m.Body)}})
	if err != nil {
		return channel.Result{}, channel.Permanent("encode message", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return channel.Result{}, channel.Permanent("invalid wecom robot address", nil)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", s.ua)

	secrets := channel.URLSecrets(u)
	resp, err := s.client.Do(req)
	if err != nil {
		return channel.Result{}, channel.RequestFailure(err, secrets...)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	snippet := channel.AnswerSnippet(raw, secrets...)
	if f := channel.StatusFailure(resp.StatusCode, resp.Header, snippet, s.now()); f != nil {
		return channel.Result{}, f
	}
	if err != nil {
		return channel.Result{}, channel.RequestFailure(err, secrets...)
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil || a.ErrCode == nil {
		// Not WeCom's answer (a proxy page?): the message may not have
		// arrived, and at least once prefers a retry.
		return channel.Result{}, channel.Retryable("wecom answer without errcode: "+snippet, nil)
	}
	if *a.ErrCode == 0 {
		return channel.Result{Confirmed: true}, nil
	}
	return channel.Result{}, codeFailure(*a.ErrCode, channel.AnswerSnippet([]byte(a.ErrMsg), secrets...))
}

func codeFailure(code int, msg string) *channel.Failure {
	reason := "wecom errcode " + strconv.Itoa(code)
	if msg != "" {
		reason += ": " + msg
	}
	f := &channel.Failure{Reason: reason}
	switch code {
	case CodeFrequencyLimit:
		f.Retryable, f.Throttled, f.RetryAfter = true, true, frequencyWindow
	case CodeConcurrencyLimit:
		f.Retryable, f.Throttled = true, true
	case CodeSystemBusy:
		f.Retryable = true
	}
	return f
}

// Content renders a subject and a body as WeCom markdown: the subject in
// bold on the first line, the body after it, cut to MaxContentBytes.
func Content(subject, body string) string {
	subject = strings.Join(strings.Fields(subject), " ")
	body = strings.TrimSpace(body)
	var s string
	switch {
	case subject == "":
		s = body
	case body == "":
		s = "**" + subject + "**"
	default:
		s = "**" + subject + "**\n" + body
	}
	if len(s) <= MaxContentBytes {
		return s
	}
	const ellipsis = "…"
	cut := MaxContentBytes - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
