package webhook

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

	"herald/adapters/channel"
)

var _ channel.Sender = (*Sender)(nil)

// maxAnswerBytes bounds how much of an answer is read: enough for an error
// snippet, and the connection is not kept busy by an endless body.
const maxAnswerBytes = 64 << 10

// maxProviderIDBytes bounds the provider message id taken from a header.
const maxProviderIDBytes = 128

// Config configures a Sender.
type Config struct {
	// Client makes every call. Default: channel.NewHTTPClient with no
	// allow-list, so loopback and private receivers are refused.
	Client *http.Client
	// Secrets maps endpoints to signing secrets, each "whsec_<base64>" (the
	// specification's form) or a raw key. A key containing "://" is a URL
	// prefix ("https://hooks.example.com/team-a/" matches that path and
	// below, never "team-ab"); any other key is a host, "name" or
	// "name:port". The most specific match wins: a URL prefix over a host,
	// a longer prefix over a shorter one, "name:port" over "name".
	Secrets map[string]string
	// DefaultSecret signs for endpoints no Secrets key matches. When empty,
	// such endpoints get unsigned calls (webhook-id and webhook-timestamp
	// are still sent).
	DefaultSecret string
	// MessageIDHeader names the answer header whose value becomes
	// Result.ProviderMessageID. Default "X-Message-Id".
	MessageIDHeader string
	// UserAgent is sent with every call. Default "Herald-Webhook/1".
	UserAgent string
	// Now is the clock for webhook-timestamp and Retry-After dates.
	// Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.Client == nil {
		c.Client = channel.NewHTTPClient(channel.HTTPOptions{})
	}
	if c.MessageIDHeader == "" {
		c.MessageIDHeader = "X-Message-Id"
	}
	if c.UserAgent == "" {
		c.UserAgent = "Herald-Webhook/1"
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
	if _, err := newSecretBook(c.Secrets, c.DefaultSecret); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Sender posts signed JSON payloads to webhook endpoints. It is safe for
// concurrent use; it keeps no state between calls.
type Sender struct {
	client   *http.Client
	secrets  secretBook
	idHeader string
	ua       string
	now      func() time.Time
}

// New returns a Sender for cfg, after filling in defaults and validating.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webhook config: %w", err)
	}
	book, _ := newSecretBook(cfg.Secrets, cfg.DefaultSecret) // validated above
	return &Sender{
		client:   cfg.Client,
		secrets:  book,
		idHeader: cfg.MessageIDHeader,
		ua:       cfg.UserAgent,
		now:      cfg.Now,
	}, nil
}

// Payload is the JSON body of every webhook call. Field names are part of
// Herald's public contract; new fields may be added, none is removed.
type Payload struct {
	// ID equals the webhook-id header: the same for every attempt of one
	// delivery, so receivers dedupe on it.
	ID             string            `json:"id"`
	NotificationID string            `json:"notification_id"`
	DeliveryID     string            `json:"delivery_id"`
	Channel        string            `json:"channel"`
	Priority       string            `json:"priority"`
	Category       string            `json:"category"`
	Subject        string            `json:"subject"`
	Body           string            `json:"body"`
	HTML           string            `json:"html"`
	Metadata       map[string]string `json:"metadata"`
	CreatedAt      time.Time         `json:"created_at"`
	// Attempt counts from 1; it changes between attempts while ID does not.
	Attempt int `json:"attempt"`
}

// Send makes one attempt: a POST of the Payload to m.Address, signed with
// the endpoint's secret. A 2xx answer is a confirmed delivery; anything
// else is a *channel.Failure classified by channel.StatusFailure or
// channel.RequestFailure (a guard refusal is permanent).
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	u, err := parseAddress(m.Address)
	if err != nil {
		return channel.Result{}, channel.Permanent("invalid webhook address", err)
	}
	id := m.IdempotencyKey
	if id == "" {
		if m.NotificationID == "" || m.DeliveryID == "" {
			return channel.Result{}, channel.Permanent("message has no idempotency key", nil)
		}
		id = m.NotificationID.DeliveryKey(m.DeliveryID)
	}
	body, err := encode(newPayload(m, id))
	if err != nil {
		return channel.Result{}, channel.Permanent("encode payload", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return channel.Result{}, channel.Permanent("invalid webhook address", nil)
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.ua)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, ts)
	if key := s.secrets.lookup(u); key != nil {
		req.Header.Set(HeaderSignature, signature(key, id, ts, body))
	}

	secrets := channel.URLSecrets(u)
	resp, err := s.client.Do(req)
	if err != nil {
		return channel.Result{}, channel.RequestFailure(err, secrets...)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes)) // the status decides; a short read only shortens the snippet
	if f := channel.StatusFailure(resp.StatusCode, resp.Header, channel.AnswerSnippet(answer, secrets...), s.now()); f != nil {
		return channel.Result{}, f
	}
	return channel.Result{ProviderMessageID: providerID(resp.Header.Get(s.idHeader)), Confirmed: true}, nil
}

func newPayload(m channel.Message, id string) Payload {
	meta := m.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	return Payload{
		ID:             id,
		NotificationID: string(m.NotificationID),
		DeliveryID:     string(m.DeliveryID),
		Channel:        string(m.Channel),
		Priority:       string(m.Priority),
		Category:       m.Category,
		Subject:        m.Subject,
		Body:           m.Body,
		HTML:           m.HTML,
		Metadata:       meta,
		CreatedAt:      m.CreatedAt.UTC(),
		Attempt:        m.Attempt,
	}
}

// encode marshals p without escaping <, > and & (the html field would be
// unreadable), and without the encoder's trailing newline.
func encode(p Payload) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// parseAddress accepts an absolute http or https URL. Its errors never
// quote the address, which may hold credentials.
func parseAddress(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("address is not an absolute http(s) URL")
	}
	return u, nil
}

// providerID keeps a header value only when it is short and printable.
func providerID(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > maxProviderIDBytes {
		return ""
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return ""
		}
	}
	return v
}
