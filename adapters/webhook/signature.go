package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The headers of the Standard Webhooks scheme. HTTP header names are case
// insensitive; these are the spellings the specification uses.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// DefaultTolerance is how far a webhook-timestamp may be from the
// receiver's clock when Verify is given no tolerance; it is the window the
// specification recommends against replays.
const DefaultTolerance = 5 * time.Minute

// secretPrefix marks a secret serialized as the specification does: the
// HMAC key, base64-encoded, behind "whsec_".
const secretPrefix = "whsec_"

// Errors Verify returns (wrapped); receivers branch on them with errors.Is.
var (
	ErrMissingHeader       = errors.New("webhook: missing signature header")
	ErrTimestamp           = errors.New("webhook: timestamp malformed or outside the tolerance")
	ErrNoMatchingSignature = errors.New("webhook: no matching signature")
	ErrInvalidSecret       = errors.New("webhook: invalid secret")
)

// Verify checks a received webhook the way the Standard Webhooks
// specification describes: the three headers are present, webhook-timestamp
// (unix seconds) is within tolerance of now in either direction
// (DefaultTolerance when tolerance <= 0), and at least one "v1,<base64>"
// entry of the space-separated webhook-signature equals
// HMAC-SHA256(key, id + "." + timestamp + "." + body), compared in constant
// time. secret is either "whsec_<base64 key>" or the raw key. body must be
// the raw request body, before any JSON decoding.
func Verify(secret string, header http.Header, body []byte, tolerance time.Duration, now time.Time) error {
	key, err := decodeSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := header.Get(HeaderID), header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	for name, v := range map[string]string{HeaderID: id, HeaderTimestamp: ts, HeaderSignature: sigs} {
		if v == "" {
			return fmt.Errorf("%w: %s", ErrMissingHeader, name)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not unix seconds", ErrTimestamp, ts)
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > tolerance || skew < -tolerance {
		return fmt.Errorf("%w: %s from now", ErrTimestamp, skew.Round(time.Second))
	}
	want := mac(key, id, ts, body)
	for _, entry := range strings.Fields(sigs) {
		version, value, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue // other schemes (v1a, future versions) are not ours to judge
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatchingSignature
}

// signature returns the webhook-signature value for one message.
func signature(key []byte, id, ts string, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, ts, body))
}

func mac(key []byte, id, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// decodeSecret returns the HMAC key a configured secret stands for.
func decodeSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	rest, ok := strings.CutPrefix(s, secretPrefix)
	if !ok {
		return []byte(s), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) == 0 {
		// The error text of base64 would quote an offset, never the
		// secret; still, say nothing about its content.
		return nil, fmt.Errorf("%w: the part after %q is not standard base64", ErrInvalidSecret, secretPrefix)
	}
	return key, nil
}

// secretBook finds the signing key of an endpoint. Keys of Config.Secrets
// that contain "://" are URL prefixes (scheme, host and a path prefix that
// ends at a "/" boundary); other keys are hosts, "name" or "name:port".
// The most specific match wins: a URL prefix beats a host (it names the
// host too), a longer path prefix beats a shorter one, and "name:port"
// beats "name". With no match the default secret applies, and with no
// default the message goes out unsigned.
type secretBook struct {
	prefixes []prefixSecret // longest path first
	hosts    map[string][]byte
	fallback []byte
}

type prefixSecret struct {
	scheme, host, path string
	key                []byte
}

func newSecretBook(secrets map[string]string, defaultSecret string) (secretBook, error) {
	b := secretBook{hosts: make(map[string][]byte)}
	var errs []error
	for k, v := range secrets {
		key, err := decodeSecret(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret for %q: %w", k, err))
			continue
		}
		if !strings.Contains(k, "://") {
			if k == "" || strings.ContainsAny(k, "/?#@ ") {
				errs = append(errs, fmt.Errorf("secret key %q: want a host, host:port or URL prefix", k))
				continue
			}
			b.hosts[strings.ToLower(k)] = key
			continue
		}
		u, err := url.Parse(k)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			errs = append(errs, fmt.Errorf("secret key %q: want an http(s) URL prefix without query, fragment or user", k))
			continue
		}
		b.prefixes = append(b.prefixes, prefixSecret{
			scheme: u.Scheme, host: strings.ToLower(u.Host),
			path: strings.TrimSuffix(u.Path, "/"), key: key,
		})
	}
	sort.SliceStable(b.prefixes, func(i, j int) bool { return len(b.prefixes[i].path) > len(b.prefixes[j].path) })
	if defaultSecret != "" {
		key, err := decodeSecret(defaultSecret)
		if err != nil {
			errs = append(errs, fmt.Errorf("default secret: %w", err))
		}
		b.fallback = key
	}
	return b, errors.Join(errs...)
}

// lookup returns the key for u, or nil when u is to be sent unsigned.
func (b secretBook) lookup(u *url.URL) []byte {
	host := strings.ToLower(u.Host)
	for _, p := range b.prefixes {
		if p.scheme == strings.ToLower(u.Scheme) && p.host == host &&
			(p.path == "" || u.Path == p.path || strings.HasPrefix(u.Path, p.path+"/")) {
			return p.key
		}
	}
	if key, ok := b.hosts[host]; ok {
		return key
	}
	if key, ok := b.hosts[strings.ToLower(u.Hostname())]; ok {
		return key
	}
	return b.fallback
}
