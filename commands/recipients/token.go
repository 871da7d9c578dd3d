package recipients

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"herald/domain"
)

// Errors of unsubscribe token checks.
var (
	// ErrInvalidToken means the unsubscribe token is malformed or its
	// signature does not match: it was not made by this server's secret.
	ErrInvalidToken = errors.New("invalid unsubscribe token")
	// ErrTokenExpired means the token was genuine but its expiry passed.
	ErrTokenExpired = errors.New("unsubscribe token expired")
	// ErrUnsubscribeDisabled means the service has no unsubscribe secret.
	ErrUnsubscribeDisabled = errors.New("unsubscribe links are not configured")
)

// tokenVersion starts every signed payload, so a future layout can be told
// apart and old links refused or read deliberately.
const tokenVersion = "u1"

// UnsubscribeClaim is what a valid unsubscribe token says.
type UnsubscribeClaim struct {
	Recipient domain.RecipientID
	// Channel empty means every channel.
	Channel domain.Channel
	// Category empty means every category.
	Category  string
	ExpiresAt time.Time
}

// signToken returns "<payload>.<mac>", both base64url without padding. The
// payload is the newline-joined version, recipient, channel, category and
// expiry (Unix seconds); none of them can hold a newline, so the join is
// unambiguous. The MAC is HMAC-SHA256 over the payload's bytes.
func signToken(secret []byte, c UnsubscribeClaim) string {
	payload := strings.Join([]string{
		tokenVersion, string(c.Recipient), string(c.Channel), c.Category, strconv.FormatInt(c.ExpiresAt.Unix(), 10),
	}, "\n")
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// verifyToken checks the signature first (in constant time) and only then
// reads the payload, so nothing unsigned is ever trusted.
func verifyToken(secret []byte, token string, now time.Time) (UnsubscribeClaim, error) {
	if len(secret) == 0 {
		return UnsubscribeClaim{}, ErrUnsubscribeDisabled
	}
	p64, m64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return UnsubscribeClaim{}, ErrInvalidToken
	}
	payload, errP := base64.RawURLEncoding.DecodeString(p64)
	got, errM := base64.RawURLEncoding.DecodeString(m64)
	if errP != nil || errM != nil {
		return UnsubscribeClaim{}, ErrInvalidToken
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(payload)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return UnsubscribeClaim{}, ErrInvalidToken
	}
	parts := strings.Split(string(payload), "\n")
	if len(parts) != 5 || parts[0] != tokenVersion {
		return UnsubscribeClaim{}, ErrInvalidToken
	}
	exp, err := strconv.ParseInt(parts[4], 10, 64)
	if err != nil {
		return UnsubscribeClaim{}, ErrInvalidToken
	}
	c := UnsubscribeClaim{
		Recipient: domain.RecipientID(parts[1]), Channel: domain.Channel(parts[2]), Category: parts[3],
		ExpiresAt: time.Unix(exp, 0).UTC(),
	}
	if !now.Before(c.ExpiresAt) {
		return c, ErrTokenExpired
	}
	return c, nil
}
