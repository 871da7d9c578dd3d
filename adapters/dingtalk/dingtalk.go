package dingtalk

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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
	"herald/domain"
)

var _ channel.Sender = (*Sender)(nil)

const maxAnswerBytes = 64 << 10

// maxTitleRunes bounds the markdown title, which DingTalk shows in the
// conversation list.
const maxTitleRunes = 64

// Error codes of the custom robot's answer that Send treats specially; every
// other non-zero code is permanent (bad token, robot disabled, keyword/IP/sign
// security check failed, unsafe content, group dissolved...).
const (
	// CodeSystemBusy: the platform is busy; transient.
	CodeSystemBusy = -1
	// CodeSendTooFast: more than 20 messages a minute from one robot;
	// DingTalk then refuses the robot's messages for 10 minutes.
	CodeSendTooFast = 130101
	// CodeSendTooFastAlt is reported for the same per-robot flood limit.
	CodeSendTooFastAlt = 130102
	// CodeRateLimited: sending too fast, the message was rate limited.
	CodeRateLimited = 410100
	// CodeWebhookOverLimit: the robot's call quota is used up; it comes
	// back when the quota period renews, so it is retried, slowly.
	CodeWebhookOverLimit = 90030
)

// floodPause is how long DingTalk refuses a robot that exceeded 20 messages
// a minute; retrying earlier only extends the penalty.
const floodPause = 10 * time.Minute

// Config configures a Sender.
type Config struct {
	// Client makes every call. Default: channel.NewHTTPClient with no
	// allow-list.
	Client *http.Client
	// Secrets holds the signing secret ("SEC...") of each robot that has
	// the signature security setting on. A key containing "://" is the
	// robot's webhook URL (compared on scheme, host, path and access_token,
	// so a URL already carrying timestamp/sign still matches); any other key
	// is an access_token. A URL key wins over a token key. Robots with no
	// entry are called unsigned.
	Secrets map[string]string
	// UserAgent is sent with every call. Default "Herald-DingTalk/1".
	UserAgent string
	// Now is the clock for the signature timestamp and Retry-After dates.
	// Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = channel.NewHTTPClient(channel.HTTPOptions{})
	}
	if c.UserAgent == "" {
		c.UserAgent = "Herald-DingTalk/1"
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
	if _, _, err := indexSecrets(c.Secrets); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Sender posts markdown messages to DingTalk custom robots. It is safe for
// concurrent use.
type Sender struct {
	client  *http.Client
	byURL   map[string]string
	byToken map[string]string
	ua      string
	now     func() time.Time
}

// New returns a Sender for cfg, after filling in defaults and validating.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dingtalk config: %w", err)
	}
	byURL, byToken, _ := indexSecrets(cfg.Secrets)
	return &Sender{client: cfg.Client, byURL: byURL, byToken: byToken, ua: cfg.UserAgent, now: cfg.Now}, nil
}

// indexSecrets splits Config.Secrets into URL keys (normalized by robotKey)
// and access_token keys. Its errors name the key's host, never a token.
func indexSecrets(secrets map[string]string) (byURL, byToken map[string]string, err error) {
	byURL, byToken = map[string]string{}, map[string]string{}
	var errs []error
	for k, v := range secrets {
		if !strings.Contains(k, "://") {
			if k == "" || v == "" {
				errs = append(errs, errors.New("secrets: an access_token key or its secret is empty"))
				continue
			}
			byToken[k] = v
			continue
		}
		u, perr := url.Parse(k)
		if perr != nil || u.Host == "" || u.Query().Get("access_token") == "" || v == "" {
			errs = append(errs, fmt.Errorf("secrets: URL key for %s: want a robot URL with an access_token and a non-empty secret", domain.RedactURL(k)))
			continue
		}
		byURL[robotKey(u)] = v
	}
	return byURL, byToken, errors.Join(errs...)
}

// robotKey names a robot by its URL regardless of letter case in scheme and
// host, and of any timestamp/sign already in the query.
func robotKey(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + u.Path + "?access_token=" + u.Query().Get("access_token")
}

type markdownMessage struct {
	MsgType  string   `json:"msgtype"`
	Markdown markdown `json:"markdown"`
}

type markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// answer is the robot API's reply; a missing errcode is not success.
type answer struct {
	ErrCode *int   `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// Send posts m as a markdown message to the robot at m.Address. An answer
// of errcode 0 is a confirmed delivery. The per-robot flood limits
// (130101, 130102, 410100) and the quota code 90030 are retryable and
// Throttled (130101 with a ten-minute RetryAfter, the penalty DingTalk
// documents); -1 (system busy) is retryable; other codes are permanent.
// Non-200 answers, timeouts and connection errors are classified as for any
// HTTP endpoint (channel.StatusFailure, channel.RequestFailure).
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	u, err := url.Parse(m.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return channel.Result{}, channel.Permanent("invalid dingtalk robot address", errors.New("address is not an absolute http(s) URL"))
	}
	q := u.Query()
	token := q.Get("access_token")
	if token == "" {
		return channel.Result{}, channel.Permanent("dingtalk robot address has no access_token", nil)
	}
	secrets := channel.URLSecrets(u)
	q.Del("timestamp")
	q.Del("sign")
	u.RawQuery = q.Encode()
	if secret := s.secretFor(u, token); secret != "" {
		ts := strconv.FormatInt(s.now().UnixMilli(), 10)
		sign := Sign(secret, ts)
		u.RawQuery += "&timestamp=" + ts + "&sign=" + url.QueryEscape(sign)
		secrets = append(secrets, secret, sign)
	}

	title, text := render(m.Subject, m.Body)
	body, err := json.Marshal(markdownMessage{MsgType: "markdown", Markdown: markdown{Title: title, Text: text}})
	if err != nil {
		return channel.Result{}, channel.Permanent("encode message", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return channel.Result{}, channel.Permanent("invalid dingtalk robot address", nil)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", s.ua)

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
		// Something between us and DingTalk answered (a proxy page?): the
		// message may not have arrived; at least once prefers a retry.
		return channel.Result{}, channel.Retryable("dingtalk answer without errcode: "+snippet, nil)
	}
	if *a.ErrCode == 0 {
		return channel.Result{Confirmed: true}, nil
	}
	return channel.Result{}, codeFailure(*a.ErrCode, channel.AnswerSnippet([]byte(a.ErrMsg), secrets...))
}

func (s *Sender) secretFor(u *url.URL, token string) string {
	if secret, ok := s.byURL[robotKey(u)]; ok {
		return secret
	}
	return s.byToken[token]
}

func codeFailure(code int, msg string) *channel.Failure {
	reason := "dingtalk errcode " + strconv.Itoa(code)
	if msg != "" {
		reason += ": " + msg
	}
	f := &channel.Failure{Reason: reason}
	switch code {
	case CodeSendTooFast:
		f.Retryable, f.Throttled, f.RetryAfter = true, true, floodPause
	case CodeSendTooFastAlt, CodeRateLimited, CodeWebhookOverLimit:
		f.Retryable, f.Throttled = true, true
	case CodeSystemBusy:
		f.Retryable = true
	}
	return f
}

// Sign returns the robot signature for a millisecond timestamp, before URL
// escaping: base64(HMAC-SHA256(key=secret, message=timestamp+"\n"+secret)).
func Sign(secret, timestampMillis string) string {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(timestampMillis + "\n" + secret))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// render builds the markdown title and text: the title is the subject (or
// the body's first line), cut for the conversation list; the text starts
// with the subject as a heading.
func render(subject, body string) (title, text string) {
	subject = strings.Join(strings.Fields(subject), " ")
	body = strings.TrimSpace(body)
	title = subject
	if title == "" {
		first, _, _ := strings.Cut(body, "\n")
		title = strings.TrimSpace(first)
	}
	if title == "" {
		title = "Notification"
	}
	if utf8.RuneCountInString(title) > maxTitleRunes {
		title = string([]rune(title)[:maxTitleRunes-1]) + "…"
	}
	switch {
	case subject == "":
		text = body
	case body == "":
		text = "#### " + subject
	default:
		text = "#### " + subject + "\n\n" + body
	}
	return title, text
}
