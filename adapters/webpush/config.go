package webpush

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"herald/adapters/channel"
)

// Defaults and limits of Config.
const (
	// DefaultTTL is how long a push service keeps a message for a browser
	// that is offline.
	DefaultTTL = 24 * time.Hour
	// MaxTTL is four weeks, the longest push services honour; they cap
	// anything longer themselves, so a larger value is a configuration
	// mistake.
	MaxTTL = 28 * 24 * time.Hour
	// DefaultVAPIDExpiry is the lifetime of a VAPID token: half of what
	// RFC 8292 allows, so that a push service whose clock runs ahead still
	// accepts it.
	DefaultVAPIDExpiry = 12 * time.Hour
	// MaxVAPIDExpiry is RFC 8292's limit on a token's exp claim.
	MaxVAPIDExpiry = 24 * time.Hour
)

// Config configures a Sender. Fill it, then call New, which applies the
// defaults and validates it.
type Config struct {
	// Subscriptions finds a recipient's subscriptions. Required.
	Subscriptions Subscriptions
	// VAPIDPublicKey and VAPIDPrivateKey are the application server's key
	// pair, base64url as GenerateVAPIDKeys returns them. Required; they must
	// belong together. The private key never appears in an error, a
	// Failure, or Config's String.
	VAPIDPublicKey  string
	VAPIDPrivateKey string
	// Subject is the VAPID "sub" claim, the contact a push service operator
	// uses: "mailto:ops@example.com" or an https URL. Required.
	Subject string
	// HTTPClient sends the pushes. Default channel.NewHTTPClient with no
	// allow-list. Whatever is supplied should be SSRF-guarded: endpoints
	// come from browsers, hence from users.
	HTTPClient *http.Client
	// TTL is the TTL header: how long the push service keeps the message for
	// an offline browser, rounded down to seconds. Default DefaultTTL, at
	// most MaxTTL.
	TTL time.Duration
	// VAPIDExpiry is how far ahead of now a token's exp claim lies. Default
	// DefaultVAPIDExpiry, at most MaxVAPIDExpiry.
	VAPIDExpiry time.Duration
	// Topic, when set, gives the Topic header of a message: a push service
	// keeps only the newest undelivered message per topic. It must return
	// "" (no header) or at most 32 characters of the base64url alphabet;
	// anything else fails the delivery permanently. Optional.
	Topic func(channel.Message) string
	// OnExpired is called, from Send's goroutine and before Send returns,
	// for each subscription a push service answered 404 or 410: the browser
	// unsubscribed or the subscription lapsed. The caller removes it and
	// records the event. Optional.
	OnExpired func(ctx context.Context, recipientID string, s Subscription)
	// Now is the clock for VAPID expiry and Retry-After dates. Default
	// time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = channel.NewHTTPClient(channel.HTTPOptions{})
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.VAPIDExpiry == 0 {
		c.VAPIDExpiry = DefaultVAPIDExpiry
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports every problem of c at once (errors.Join). Zero durations
// and a nil HTTPClient or Now are accepted: New fills them in. No error
// contains the private key.
func (c Config) Validate() error {
	var errs []error
	if c.Subscriptions == nil {
		errs = append(errs, errors.New("Subscriptions is required"))
	}
	if c.VAPIDPublicKey == "" || c.VAPIDPrivateKey == "" {
		errs = append(errs, errors.New("VAPIDPublicKey and VAPIDPrivateKey are required"))
	} else if _, err := parseVAPIDKeys(c.VAPIDPublicKey, c.VAPIDPrivateKey); err != nil {
		errs = append(errs, err)
	}
	if err := validateSubject(c.Subject); err != nil {
		errs = append(errs, err)
	}
	if c.TTL < 0 || c.TTL > MaxTTL {
		errs = append(errs, fmt.Errorf("TTL %s: want between 1s and %s", c.TTL, MaxTTL))
	} else if c.TTL > 0 && c.TTL < time.Second {
		errs = append(errs, fmt.Errorf("TTL %s: want at least 1s", c.TTL))
	}
	if c.VAPIDExpiry < 0 || c.VAPIDExpiry > MaxVAPIDExpiry {
		errs = append(errs, fmt.Errorf("VAPIDExpiry %s: want at most %s (RFC 8292)", c.VAPIDExpiry, MaxVAPIDExpiry))
	} else if c.VAPIDExpiry > 0 && c.VAPIDExpiry < time.Minute {
		errs = append(errs, fmt.Errorf("VAPIDExpiry %s: want at least 1m", c.VAPIDExpiry))
	}
	return errors.Join(errs...)
}

// validateSubject accepts what RFC 8292 §2.1 asks for: a mailto: URI with
// an address, or an https URL with a host.
func validateSubject(s string) error {
	switch {
	case s == "":
		return errors.New("Subject is required (mailto: or https: contact)")
	case strings.HasPrefix(s, "mailto:"):
		if _, err := mail.ParseAddress(strings.TrimPrefix(s, "mailto:")); err != nil {
			return fmt.Errorf("Subject %q: not a mailto: address", s)
		}
		return nil
	case strings.HasPrefix(s, "https:"):
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return fmt.Errorf("Subject %q: not an https URL", s)
		}
		return nil
	default:
		return fmt.Errorf("Subject %q: want a mailto: or https: URI", s)
	}
}

// String describes c without its private key, so that logging a Config is
// safe.
func (c Config) String() string {
	priv := "<empty>"
	if c.VAPIDPrivateKey != "" {
		priv = "<redacted>"
	}
	return fmt.Sprintf("webpush.Config{Subject: %q, VAPIDPublicKey: %q, VAPIDPrivateKey: %s, TTL: %s, VAPIDExpiry: %s}",
		c.Subject, c.VAPIDPublicKey, priv, c.TTL, c.VAPIDExpiry)
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return c.String() }
