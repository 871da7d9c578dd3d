package webpush

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"herald/adapters/channel"
	"herald/domain"
)

// Sender delivers messages as Web Push notifications to every subscription
// of the recipient. It is safe for concurrent use.
type Sender struct {
	subs      Subscriptions
	client    *http.Client
	vapid     *vapidSigner
	ttl       string
	topic     func(channel.Message) string
	onExpired func(ctx context.Context, recipientID string, s Subscription)
	now       func() time.Time
}

var _ channel.Sender = (*Sender)(nil)

// New returns a Sender for cfg after applying its defaults and validating
// it; the error names every bad field and never contains the private key.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("webpush: config: %w", err)
	}
	key, err := parseVAPIDKeys(cfg.VAPIDPublicKey, cfg.VAPIDPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("webpush: config: %w", err)
	}
	signer, err := newVAPIDSigner(key, cfg.Subject, cfg.VAPIDExpiry, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("webpush: config: %w", err)
	}
	return &Sender{
		subs:      cfg.Subscriptions,
		client:    cfg.HTTPClient,
		vapid:     signer,
		ttl:       strconv.FormatInt(int64(cfg.TTL/time.Second), 10),
		topic:     cfg.Topic,
		onExpired: cfg.OnExpired,
		now:       cfg.Now,
	}, nil
}

// payload is the JSON the service worker receives (event.data.json()).
type payload struct {
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	NotificationID string            `json:"notification_id"`
	DeliveryID     string            `json:"delivery_id"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

// maxParallelPushes bounds the concurrent requests of one Send; a recipient
// rarely has more than a few browsers.
const maxParallelPushes = 4

// Send pushes m to every subscription of the recipient named by m.Address
// (m.Recipient when Address is empty), concurrently, and waits for all of
// them. It succeeds, Confirmed, when at least one push service accepted the
// message; the others' failures are then dropped, since a retry would
// duplicate the notification on the browsers that have it. Otherwise it
// returns a *channel.Failure: permanent and Expired when every subscription
// is gone (404/410), retryable when any push service failed transiently
// (429, 5xx, timeout, connection error), permanent otherwise (a push
// service certificate that does not verify among them). OnExpired has
// been called for every gone subscription by the time Send returns.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	recipient := m.Address
	if recipient == "" {
		recipient = m.Recipient
	}
	if recipient == "" {
		return channel.Result{}, channel.Permanent("webpush: message has no recipient id", nil)
	}
	subs, err := s.subs.Subscriptions(ctx, recipient)
	if err != nil {
		return channel.Result{}, channel.Retryable("webpush: subscription lookup failed", err)
	}
	if len(subs) == 0 {
		return channel.Result{}, channel.Permanent("no web push subscription", nil)
	}

	body, err := json.Marshal(payload{
		Title:          m.Subject,
		Body:           m.Body,
		NotificationID: string(m.NotificationID),
		DeliveryID:     string(m.DeliveryID),
		IdempotencyKey: m.IdempotencyKey,
		Metadata:       m.Metadata,
	})
	if err != nil {
		return channel.Result{}, channel.Permanent("webpush: encode payload", err)
	}
	if len(body) > MaxPayloadLen {
		return channel.Result{}, channel.Permanent(fmt.Sprintf(
			"webpush: payload of %d bytes exceeds the %d a push message can carry", len(body), MaxPayloadLen), nil)
	}
	h := http.Header{}
	h.Set("TTL", s.ttl)
	h.Set("Urgency", urgency(m.Priority))
	if s.topic != nil {
		if t := s.topic(m); t != "" {
			if !validTopic(t) {
				return channel.Result{}, channel.Permanent(fmt.Sprintf(
					"webpush: topic %q: want at most 32 base64url characters", t), nil)
			}
			h.Set("Topic", t)
		}
	}

	outcomes := make([]outcome, len(subs))
	sem := make(chan struct{}, maxParallelPushes)
	var wg sync.WaitGroup
	for i, sub := range subs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			outcomes[i] = s.push(ctx, sub, body, h)
		})
	}
	wg.Wait()

	if s.onExpired != nil {
		for i, o := range outcomes {
			if o.expired {
				s.onExpired(ctx, recipient, subs[i])
			}
		}
	}
	return summarize(outcomes)
}

// urgency maps the delivery lane onto RFC 8030 §5.3's Urgency; "very-low"
// is left unused because nothing in Herald is lower than low.
func urgency(p domain.Priority) string {
	switch p {
	case domain.PriorityHigh:
		return "high"
	case domain.PriorityLow:
		return "low"
	default:
		return "normal"
	}
}

// validTopic applies RFC 8030 §5.4: at most 32 characters of the URL and
// filename safe base64 alphabet.
func validTopic(t string) bool {
	if len(t) > 32 {
		return false
	}
	for _, c := range t {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// outcome is what one subscription's push came to.
type outcome struct {
	accepted bool
	location string // the push message resource, RFC 8030 §5
	expired  bool
	failure  *channel.Failure // nil when accepted
}

// push encrypts body for sub and posts it to sub's push service.
func (s *Sender) push(ctx context.Context, sub Subscription, body []byte, h http.Header) outcome {
	dec, err := sub.decode()
	if err != nil {
		return outcome{failure: channel.Permanent("webpush: unusable subscription", err)}
	}
	origin := dec.endpoint.Scheme + "://" + dec.endpoint.Host
	sealed, err := encrypt(body, dec)
	if err != nil {
		return outcome{failure: channel.Permanent("webpush: encrypt payload", err)}
	}
	auth, err := s.vapid.authorization(origin)
	if err != nil {
		return outcome{failure: channel.Permanent("webpush: sign vapid token", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, dec.endpoint.String(), bytes.NewReader(sealed))
	if err != nil {
		return outcome{failure: channel.Permanent("webpush: build request for "+origin, errors.New("invalid endpoint"))}
	}
	req.Header = h.Clone()
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Authorization", auth)

	resp, err := s.client.Do(req)
	if err != nil {
		return outcome{failure: transportFailure(origin, err)}
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; push services answer
	// with short bodies, and nothing of them is needed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 16<<10))

	code := resp.StatusCode
	answered := fmt.Sprintf("push service %s answered %d %s", origin, code, http.StatusText(code))
	switch {
	case code >= 200 && code < 300:
		return outcome{accepted: true, location: resp.Header.Get("Location")}
	case code == http.StatusNotFound || code == http.StatusGone:
		f := channel.Permanent("web push subscription expired: "+answered, nil)
		f.Expired = true
		return outcome{expired: true, failure: f}
	case code == http.StatusTooManyRequests:
		f := channel.Retryable(answered, nil)
		f.Throttled = true
		f.RetryAfter = channel.RetryAfter(resp.Header.Get("Retry-After"), s.now())
		return outcome{failure: f}
	case code >= 500 || code == http.StatusRequestTimeout:
		f := channel.Retryable(answered, nil)
		f.RetryAfter = channel.RetryAfter(resp.Header.Get("Retry-After"), s.now())
		return outcome{failure: f}
	case code == http.StatusRequestEntityTooLarge:
		return outcome{failure: channel.Permanent("payload too large: "+answered, nil)}
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		// The usual cause: the subscription was made with another
		// applicationServerKey, or the VAPID token was refused.
		return outcome{failure: channel.Permanent("vapid credentials refused: "+answered, nil)}
	default:
		return outcome{failure: channel.Permanent(answered, nil)}
	}
}

// transportFailure classifies an error of http.Client.Do. The *url.Error it
// returns quotes the endpoint, whose path is a capability; it is replaced by
// the origin.
//
// A push service certificate that does not verify (unknown authority,
// expired, issued for another name) fails the delivery for good, with the
// certificate problem as the reason: browsers' push services (FCM, Mozilla,
// Apple, WNS) serve publicly trusted certificates, so a failed verification
// means a broken trust store, an intercepting proxy or an impostor, none of
// which a retry schedule outlasts, and retrying would only bury the cause
// under "unreachable". Once the operator has mended it, the notification
// can be resent. Other TLS failures (a handshake cut short, a reset) and
// connection errors stay retryable.
func transportFailure(origin string, err error) *channel.Failure {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: origin, Err: ue.Err}
	}
	switch cert := certificateProblem(err); {
	case errors.Is(err, channel.ErrAddressRefused):
		return channel.Permanent("webpush: endpoint "+origin+" refused by the outbound guard", err)
	case cert != nil:
		return channel.Permanent("webpush: TLS certificate of push service "+origin+" does not verify: "+cert.Error(), err)
	case errors.Is(err, context.Canceled):
		return channel.Retryable("webpush: push to "+origin+" cancelled", err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return channel.Retryable("webpush: timeout pushing to "+origin, err)
	default:
		return channel.Retryable("webpush: push service "+origin+" unreachable", err)
	}
}

// certificateProblem returns the certificate verification error within
// err (x509's own, which names the problem), or nil when there is none.
func certificateProblem(err error) error {
	var (
		verify    *tls.CertificateVerificationError
		authority x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
	)
	switch {
	case errors.As(err, &verify):
		if verify.Err != nil {
			return verify.Err
		}
		return verify
	case errors.As(err, &authority):
		return authority
	case errors.As(err, &invalid):
		return invalid
	case errors.As(err, &hostname):
		return hostname
	}
	return nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// summarize folds the per-subscription outcomes into Send's answer.
func summarize(outcomes []outcome) (channel.Result, error) {
	for _, o := range outcomes {
		if o.accepted {
			// Confirmed: a push service holding the message will deliver it
			// to the browser unless the TTL lapses first; Web Push offers no
			// later receipt to wait for.
			return channel.Result{ProviderMessageID: o.location, Confirmed: true}, nil
		}
	}
	if len(outcomes) == 1 {
		return channel.Result{}, outcomes[0].failure
	}
	var (
		errs      []error
		expired   int
		retryable *channel.Failure
		permanent *channel.Failure
		throttled bool
		wait      time.Duration
	)
	for _, o := range outcomes {
		f := o.failure
		errs = append(errs, f)
		switch {
		case o.expired:
			expired++
		case f.Retryable:
			if retryable == nil {
				retryable = f
			}
			throttled = throttled || f.Throttled
			wait = max(wait, f.RetryAfter)
		case permanent == nil:
			permanent = f
		}
	}
	n := len(outcomes)
	if expired == n {
		f := channel.Permanent(fmt.Sprintf("every web push subscription expired (%d)", n), errors.Join(errs...))
		f.Expired = true
		return channel.Result{}, f
	}
	first := permanent
	if retryable != nil {
		// One transient failure is enough to try again: the subscriptions
		// that failed for good will fail the same way, harmlessly.
		first = retryable
	}
	return channel.Result{}, &channel.Failure{
		Retryable:  retryable != nil,
		RetryAfter: wait,
		Throttled:  throttled,
		Reason:     fmt.Sprintf("%s (none of %d subscriptions accepted)", first.Reason, n),
		Err:        errors.Join(errs...),
	}
}
