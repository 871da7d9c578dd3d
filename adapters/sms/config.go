package sms

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config configures a Sender. Zero values take the defaults listed on each
// field.
type Config struct {
	// BaseURL is the API's origin. Defaults to "https://api.twilio.com".
	BaseURL string
	// AccountSID and AuthToken are the basic-auth credentials; the
	// AccountSID also names the account in the path. Required.
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164) or alphanumeric sender id.
	// Exactly one of From and MessagingServiceSID is required.
	From                string
	MessagingServiceSID string
	// StatusCallbackURL is where the provider posts delivery receipts:
	// Herald's "/v1/receipts/sms" as reached from the internet, e.g.
	// "https://herald.example.com/v1/receipts/sms". Empty means no
	// receipts are asked for (deliveries then stay "sent").
	StatusCallbackURL string
	// IdempotencyHeader names the header that carries the delivery's
	// idempotency key. Defaults to "Idempotency-Key".
	IdempotencyHeader string
	// Timeout bounds one request, body included; a shorter ctx deadline
	// wins. Defaults to 15 s.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.BaseURL == "" {
		c.BaseURL = "https://api.twilio.com"
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.IdempotencyHeader == "" {
		c.IdempotencyHeader = "Idempotency-Key"
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Second
	}
}

// Validate reports every problem of c at once. It never quotes AuthToken.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		errs = append(errs, fmt.Errorf("base url %q: want an http(s) origin without credentials", c.BaseURL))
	}
	if c.AccountSID == "" || strings.ContainsAny(c.AccountSID, "/?#% \r\n") {
		errs = append(errs, fmt.Errorf("account sid %q: required, one path segment", c.AccountSID))
	}
	if c.AuthToken == "" {
		errs = append(errs, errors.New("auth token: required"))
	}
	if (c.From == "") == (c.MessagingServiceSID == "") {
		errs = append(errs, errors.New("from and messaging service sid: give exactly one"))
	}
	if c.StatusCallbackURL != "" {
		if u, err := url.Parse(c.StatusCallbackURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("status callback url %q: want an absolute http(s) URL", c.StatusCallbackURL))
		}
	}
	if !validHeaderName(c.IdempotencyHeader) {
		errs = append(errs, fmt.Errorf("idempotency header %q: not a header name", c.IdempotencyHeader))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", c.Timeout))
	}
	return errors.Join(errs...)
}

func validHeaderName(name string) bool {
	if name == "" || http.CanonicalHeaderKey(name) == "Authorization" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
