package webpushtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Claims are the claims of a VAPID token (RFC 8292 §2).
type Claims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// MaxVAPIDLifetime is how far after now RFC 8292 §2 lets a token's exp lie.
const MaxVAPIDLifetime = 24 * time.Hour

// VerifyVAPID checks an RFC 8292 Authorization header, "vapid t=<JWT>,
// k=<key>", as a push service does: the scheme; that k is publicKey (the
// applicationServerKey the subscription was made with); the JWT's ES256
// signature over header.claims with k; that aud is audience (the push
// service's origin, "https://host:port"); that exp lies after now and at
// most MaxVAPIDLifetime after it; and that sub is subject. It returns the
// claims it read, also with an error that is about them.
func VerifyVAPID(authorization, publicKey, audience, subject string, now time.Time) (Claims, error) {
	var c Claims
	rest, ok := strings.CutPrefix(authorization, "vapid ")
	if !ok {
		return c, fmt.Errorf("authorization scheme: %q", authorization)
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	if params["k"] != publicKey {
		return c, fmt.Errorf("k=%q, want the application server key %q", params["k"], publicKey)
	}
	rawKey, err := base64.RawURLEncoding.DecodeString(params["k"])
	if err != nil {
		return c, fmt.Errorf("k: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), rawKey)
	if err != nil {
		return c, fmt.Errorf("k: %w", err)
	}
	parts := strings.Split(params["t"], ".")
	if len(parts) != 3 {
		return c, fmt.Errorf("t: %d JWT parts, want 3", len(parts))
	}
	var hdr struct{ Typ, Alg string }
	if err := decodeJSONPart(parts[0], &hdr); err != nil || hdr.Alg != "ES256" {
		return c, fmt.Errorf("JWT header %+v: %v", hdr, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return c, fmt.Errorf("JWT signature: %d bytes, %v", len(sig), err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return c, errors.New("JWT signature does not verify with k")
	}
	if err := decodeJSONPart(parts[1], &c); err != nil {
		return c, fmt.Errorf("JWT claims: %w", err)
	}
	switch t := now.Unix(); {
	case c.Aud != audience:
		return c, fmt.Errorf("aud %q, want %q", c.Aud, audience)
	case c.Exp <= t:
		return c, fmt.Errorf("exp %d is not after now %d", c.Exp, t)
	case c.Exp > t+int64(MaxVAPIDLifetime/time.Second):
		return c, fmt.Errorf("exp %d is more than %s after now %d", c.Exp, MaxVAPIDLifetime, t)
	case c.Sub != subject:
		return c, fmt.Errorf("sub %q, want %q", c.Sub, subject)
	}
	return c, nil
}

func decodeJSONPart(part string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}
