package webpush_test

// A local push service for the tests: it plays both the push service (checks
// the VAPID token) and the browser (decrypts the push message with the
// subscription's private key and auth secret). The decryption follows the
// text of RFC 8291 §3.3-3.4 and RFC 8188 §2 with bare HMAC-SHA-256, so that
// it shares no code with the adapter's encryption.

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/webpush"
)

// browser is the user agent side of a subscription.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) browser {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return browser{key: key, auth: auth}
}

func (b browser) subscription(endpoint string) webpush.Subscription {
	return webpush.Subscription{
		Endpoint: endpoint,
		P256dh:   base64.RawURLEncoding.EncodeToString(b.key.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(b.auth),
	}
}

// pushPayload is the JSON a service worker gets, as doc.go documents it.
type pushPayload struct {
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	NotificationID string            `json:"notification_id"`
	DeliveryID     string            `json:"delivery_id"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata"`
}

// received is one request as the push service saw it.
type received struct {
	path    string
	header  http.Header
	claims  vapidClaims
	payload pushPayload
	err     error // why verification or decryption failed
}

type vapidClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// answer is how the push service replies to a request for one path.
type answer struct {
	code   int
	header map[string]string
	block  bool // hold the request until the client gives up
}

// pushService is an HTTPS push service on 127.0.0.1.
type pushService struct {
	srv         *httptest.Server
	vapidPublic string // the k= the service expects
	subject     string

	mu       sync.Mutex
	browsers map[string]browser // by endpoint path
	answers  map[string]answer  // by endpoint path; default 201
	got      []received
}

func newPushService(t *testing.T, vapidPublic, subject string) *pushService {
	t.Helper()
	ps := &pushService{
		vapidPublic: vapidPublic,
		subject:     subject,
		browsers:    map[string]browser{},
		answers:     map[string]answer{},
	}
	ps.srv = httptest.NewUnstartedServer(http.HandlerFunc(ps.serve))
	// Connections the client abandons (timeouts, cancelled sends) are
	// expected; keep their handshake noise out of the test output.
	ps.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	ps.srv.StartTLS()
	t.Cleanup(ps.srv.Close)
	return ps
}

// subscribe registers a new browser at path and returns its subscription.
func (ps *pushService) subscribe(t *testing.T, path string, a answer) webpush.Subscription {
	t.Helper()
	b := newBrowser(t)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.browsers[path] = b
	if a.code != 0 || a.block {
		ps.answers[path] = a
	}
	return b.subscription(ps.srv.URL + path)
}

func (ps *pushService) requests() []received {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]received(nil), ps.got...)
}

func (ps *pushService) serve(w http.ResponseWriter, r *http.Request) {
	ps.mu.Lock()
	b, known := ps.browsers[r.URL.Path]
	a, ok := ps.answers[r.URL.Path]
	ps.mu.Unlock()
	if !ok {
		a = answer{code: http.StatusCreated, header: map[string]string{"Location": "/message/" + strings.TrimPrefix(r.URL.Path, "/")}}
	}

	rec := received{path: r.URL.Path, header: r.Header.Clone()}
	body, err := io.ReadAll(r.Body)
	switch {
	case err != nil:
		rec.err = err
	case !known:
		rec.err = fmt.Errorf("unknown endpoint %s", r.URL.Path)
	case r.Method != http.MethodPost:
		rec.err = fmt.Errorf("method %s", r.Method)
	case r.Header.Get("Content-Encoding") != "aes128gcm":
		rec.err = fmt.Errorf("Content-Encoding %q", r.Header.Get("Content-Encoding"))
	default:
		rec.claims, rec.err = verifyVAPID(r.Header.Get("Authorization"), ps.vapidPublic, ps.srv.URL, ps.subject)
		if rec.err == nil {
			var plain []byte
			if plain, rec.err = decryptPushMessage(body, b); rec.err == nil {
				rec.err = json.Unmarshal(plain, &rec.payload)
			}
		}
	}
	ps.mu.Lock()
	ps.got = append(ps.got, rec)
	ps.mu.Unlock()

	if rec.err != nil {
		http.Error(w, rec.err.Error(), http.StatusBadRequest)
		return
	}
	if a.block {
		<-r.Context().Done()
		return
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.code)
}

// verifyVAPID checks an RFC 8292 Authorization header: the scheme, that k is
// the expected key, the ES256 signature over header.claims made with k, and
// the aud, exp and sub claims.
func verifyVAPID(authz, wantKey, wantAud, wantSub string) (vapidClaims, error) {
	var c vapidClaims
	rest, ok := strings.CutPrefix(authz, "vapid ")
	if !ok {
		return c, fmt.Errorf("authorization scheme: %q", authz)
	}
	params := map[string]string{}
	for _, p := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		params[k] = v
	}
	if params["k"] != wantKey {
		return c, fmt.Errorf("k=%q, want the configured public key", params["k"])
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
		return c, fmt.Errorf("t: %d JWT parts", len(parts))
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
	now := time.Now().Unix()
	switch {
	case c.Aud != wantAud:
		return c, fmt.Errorf("aud %q, want %q", c.Aud, wantAud)
	case c.Exp <= now:
		return c, fmt.Errorf("exp %d is not after now %d", c.Exp, now)
	case c.Exp > now+24*60*60:
		return c, fmt.Errorf("exp %d is more than 24 h after now %d", c.Exp, now)
	case c.Sub != wantSub:
		return c, fmt.Errorf("sub %q, want %q", c.Sub, wantSub)
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

func hmacSHA256(key []byte, data ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// decryptPushMessage is the user agent's side of RFC 8291: read the
// aes128gcm header (salt, rs, idlen, keyid = the sender's public key),
// derive the keys, open the single record and strip its padding.
func decryptPushMessage(body []byte, b browser) ([]byte, error) {
	if len(body) > 4096 {
		return nil, fmt.Errorf("body of %d bytes exceeds 4096", len(body))
	}
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt := body[:16]
	rs := binary.BigEndian.Uint32(body[16:20])
	idlen := int(body[20])
	if idlen != 65 || len(body) < 21+idlen {
		return nil, fmt.Errorf("keyid of %d bytes, want 65", idlen)
	}
	asPublicBytes := body[21 : 21+idlen]
	record := body[21+idlen:]
	if uint32(len(record)) >= rs {
		return nil, fmt.Errorf("record of %d bytes is not smaller than rs %d", len(record), rs)
	}
	asPublic, err := ecdh.P256().NewPublicKey(asPublicBytes)
	if err != nil {
		return nil, fmt.Errorf("keyid: %w", err)
	}
	ecdhSecret, err := b.key.ECDH(asPublic)
	if err != nil {
		return nil, err
	}
	uaPublic := b.key.PublicKey().Bytes()

	// PRK_key = HMAC(auth_secret, ecdh_secret)
	// IKM = HMAC(PRK_key, "WebPush: info" || 0x00 || ua_public || as_public || 0x01)
	prkKey := hmacSHA256(b.auth, ecdhSecret)
	ikm := hmacSHA256(prkKey, []byte("WebPush: info\x00"), uaPublic, asPublicBytes, []byte{1})
	// PRK = HMAC(salt, IKM); CEK and NONCE are the first 16 and 12 octets
	// of HMAC(PRK, info || 0x01).
	prk := hmacSHA256(salt, ikm)
	cek := hmacSHA256(prk, []byte("Content-Encoding: aes128gcm\x00\x01"))[:16]
	nonce := hmacSHA256(prk, []byte("Content-Encoding: nonce\x00\x01"))[:12]

	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, record, nil)
	if err != nil {
		return nil, fmt.Errorf("open record: %w", err)
	}
	// Padding is zeros after a 0x02 delimiter (the last record's).
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 0x02 {
		return nil, errors.New("padding delimiter is not 0x02")
	}
	return plain[:end], nil
}

// allowListedClient is the guarded client with 127.0.0.1 allowed and the
// test server's certificate trusted.
func (ps *pushService) allowListedClient() *http.Client {
	c := channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{"127.0.0.1"}})
	trustServer(c, ps.srv)
	return c
}

func trustServer(c *http.Client, srv *httptest.Server) {
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
}
