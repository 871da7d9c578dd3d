package webpush

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// Subscription is one browser's push subscription, as the Push API's
// PushSubscription.toJSON() hands it over: the push service endpoint and the
// two keys of its "keys" member, base64url encoded.
type Subscription struct {
	// Endpoint is the push resource URL. Its path is a capability (anyone
	// who knows it can push to the browser), so the adapter never puts it in
	// a Failure; reasons name only the endpoint's origin.
	Endpoint string
	// P256dh is the browser's ECDH public key, an uncompressed P-256 point.
	P256dh string
	// Auth is the browser's 16-byte authentication secret.
	Auth string
}

// Validate reports what makes s unusable: an endpoint that is not an
// absolute https URL, or keys that do not decode to a P-256 point and a
// 16-byte secret. Its errors never contain the keys.
func (s Subscription) Validate() error {
	_, err := s.decode()
	return err
}

// decodedSubscription is a Subscription ready for encryption.
type decodedSubscription struct {
	endpoint *url.URL
	public   *ecdh.PublicKey
	auth     []byte
}

func (s Subscription) decode() (decodedSubscription, error) {
	var d decodedSubscription
	var errs []error
	u, err := url.Parse(s.Endpoint)
	switch {
	case err != nil || u.Host == "":
		// url.Parse's error quotes the whole URL, capability path included.
		errs = append(errs, errors.New("endpoint: not an absolute URL"))
	case u.Scheme != "https":
		// RFC 8030 requires HTTPS; over plain HTTP the VAPID token could be
		// replayed by anyone on the path.
		errs = append(errs, fmt.Errorf("endpoint: scheme %q, want https", u.Scheme))
	default:
		d.endpoint = u
	}
	if raw, err := decodeBase64URL(s.P256dh); err != nil {
		errs = append(errs, errors.New("p256dh: not base64url"))
	} else if d.public, err = ecdh.P256().NewPublicKey(raw); err != nil {
		errs = append(errs, errors.New("p256dh: not an uncompressed P-256 point"))
	}
	if raw, err := decodeBase64URL(s.Auth); err != nil {
		errs = append(errs, errors.New("auth: not base64url"))
	} else if len(raw) != authSecretLen {
		errs = append(errs, fmt.Errorf("auth: %d bytes, want %d", len(raw), authSecretLen))
	} else {
		d.auth = raw
	}
	if len(errs) > 0 {
		return decodedSubscription{}, fmt.Errorf("invalid subscription: %w", errors.Join(errs...))
	}
	return d, nil
}

// decodeBase64URL accepts base64url with or without padding, which is what
// browsers produce, and also the standard alphabet, which some client
// libraries send after re-encoding the keys.
func decodeBase64URL(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// Subscriptions finds the push subscriptions of a recipient. Implementations
// must be safe for concurrent use; an error is treated as transient (the
// delivery is retried).
type Subscriptions interface {
	Subscriptions(ctx context.Context, recipientID string) ([]Subscription, error)
}

// MemorySubscriptions is a Subscriptions kept in memory, for the composition
// root until recipient profiles hold subscriptions. It is safe for
// concurrent use, its zero value is empty and ready, and it forgets
// everything when the process exits.
type MemorySubscriptions struct {
	mu   sync.RWMutex
	byID map[string][]Subscription
}

var _ Subscriptions = (*MemorySubscriptions)(nil)

// Add stores s for recipientID, replacing a subscription with the same
// endpoint (a browser that refreshed its keys). It refuses a subscription
// that does not validate.
func (m *MemorySubscriptions) Add(recipientID string, s Subscription) error {
	if recipientID == "" {
		return errors.New("webpush: add subscription: empty recipient id")
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("webpush: add subscription: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = make(map[string][]Subscription)
	}
	subs := m.byID[recipientID]
	if i := slices.IndexFunc(subs, func(o Subscription) bool { return o.Endpoint == s.Endpoint }); i >= 0 {
		subs[i] = s
		return nil
	}
	m.byID[recipientID] = append(subs, s)
	return nil
}

// Remove deletes recipientID's subscription with the given endpoint and
// reports whether there was one. Wire it into Config.OnExpired so that a
// gone subscription is not tried again.
func (m *MemorySubscriptions) Remove(recipientID, endpoint string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	subs := m.byID[recipientID]
	i := slices.IndexFunc(subs, func(o Subscription) bool { return o.Endpoint == endpoint })
	if i < 0 {
		return false
	}
	subs = slices.Delete(subs, i, i+1)
	if len(subs) == 0 {
		delete(m.byID, recipientID)
	} else {
		m.byID[recipientID] = subs
	}
	return true
}

// Subscriptions returns a copy of recipientID's subscriptions in the order
// they were first added; none is not an error.
func (m *MemorySubscriptions) Subscriptions(_ context.Context, recipientID string) ([]Subscription, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.byID[recipientID]), nil
}
