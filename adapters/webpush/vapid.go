package webpush

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// GenerateVAPIDKeys returns a new P-256 key pair for VAPID, base64url
// without padding: public is the 65-octet uncompressed point (the
// applicationServerKey browsers subscribe with), private the 32-octet
// scalar. Keep private secret: anyone holding it can push to every
// subscription made with public.
func GenerateVAPIDKeys() (public, private string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate vapid keys: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate vapid keys: %w", err)
	}
	priv, err := key.Bytes()
	if err != nil {
		return "", "", fmt.Errorf("webpush: generate vapid keys: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(pub), base64.RawURLEncoding.EncodeToString(priv), nil
}

// Errors about the key pair are fixed strings: the decoders' own errors are
// harmless today, but nothing derived from the private key's text may reach
// a log.
var (
	errPublicKey  = errors.New("VAPIDPublicKey: not a base64url uncompressed P-256 point")
	errPrivateKey = errors.New("VAPIDPrivateKey: not a base64url 32-byte P-256 scalar")
	errKeyPair    = errors.New("VAPIDPrivateKey does not belong to VAPIDPublicKey")
)

// parseVAPIDKeys decodes the pair and checks that they belong together, so
// that a typo is caught at start-up rather than as a 403 from every push
// service.
func parseVAPIDKeys(public, private string) (*ecdsa.PrivateKey, error) {
	var errs []error
	pubRaw, err := decodeBase64URL(public)
	var pub *ecdsa.PublicKey
	if err == nil {
		pub, err = ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pubRaw)
	}
	if err != nil {
		errs = append(errs, errPublicKey)
	}
	privRaw, err := decodeBase64URL(private)
	var key *ecdsa.PrivateKey
	if err == nil {
		key, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), privRaw)
	}
	if err != nil {
		errs = append(errs, errPrivateKey)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if !key.PublicKey.Equal(pub) {
		return nil, errKeyPair
	}
	return key, nil
}

// vapidSigner makes the Authorization header of RFC 8292 §3 for one key
// pair. Tokens are cached per audience and reused while more than half of
// their lifetime remains, so a burst to one push service signs once.
type vapidSigner struct {
	key       *ecdsa.PrivateKey
	publicB64 string
	subject   string
	lifetime  time.Duration
	now       func() time.Time

	mu     sync.Mutex
	tokens map[string]vapidToken
}

type vapidToken struct {
	header  string
	expires time.Time
}

// maxCachedAudiences bounds the cache: origins come from subscriptions that
// browsers (or whoever registers them) supply, so they are not trusted to be
// few.
const maxCachedAudiences = 256

func newVAPIDSigner(key *ecdsa.PrivateKey, subject string, lifetime time.Duration, now func() time.Time) (*vapidSigner, error) {
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, errPublicKey
	}
	return &vapidSigner{
		key:       key,
		publicB64: base64.RawURLEncoding.EncodeToString(pub),
		subject:   subject,
		lifetime:  lifetime,
		now:       now,
		tokens:    make(map[string]vapidToken),
	}, nil
}

var jwtHeaderB64 = base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`))

// authorization returns "vapid t=<jwt>, k=<public key>" for a push service
// whose origin is audience.
func (v *vapidSigner) authorization(audience string) (string, error) {
	now := v.now()
	v.mu.Lock()
	defer v.mu.Unlock()
	if t, ok := v.tokens[audience]; ok && t.expires.Sub(now) > v.lifetime/2 {
		return t.header, nil
	}

	expires := now.Add(v.lifetime)
	claims, err := json.Marshal(struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}{audience, expires.Unix(), v.subject})
	if err != nil {
		return "", fmt.Errorf("vapid claims: %w", err)
	}
	signingInput := jwtHeaderB64 + "." + base64.RawURLEncoding.EncodeToString(claims)
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, v.key, digest[:])
	if err != nil {
		return "", errors.New("vapid: signing failed")
	}
	// JWS ES256 wants the fixed-width R || S, not ASN.1 (RFC 7518 §3.4).
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	header := "vapid t=" + signingInput + "." + base64.RawURLEncoding.EncodeToString(sig) + ", k=" + v.publicB64

	if len(v.tokens) >= maxCachedAudiences {
		clear(v.tokens)
	}
	v.tokens[audience] = vapidToken{header: header, expires: expires}
	return header, nil
}
