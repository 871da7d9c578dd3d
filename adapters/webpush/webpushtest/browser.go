package webpushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"herald/adapters/webpush"
)

// Browser is the user agent side of a push subscription: the P-256 key pair
// and the 16-byte authentication secret it subscribes with. It is safe for
// concurrent use (it never changes).
type Browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

// NewBrowser returns a browser with fresh keys. It panics if the system's
// randomness fails, as httptest.NewServer panics when it cannot listen.
func NewBrowser() *Browser {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic("webpushtest: generate browser key: " + err.Error())
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &Browser{key: key, auth: auth}
}

// Subscription returns what the Push API would hand over for a subscription
// at endpoint: the endpoint and the browser's public key and auth secret,
// base64url without padding.
func (b *Browser) Subscription(endpoint string) webpush.Subscription {
	return webpush.Subscription{
		Endpoint: endpoint,
		P256dh:   base64.RawURLEncoding.EncodeToString(b.key.PublicKey().Bytes()),
		Auth:     base64.RawURLEncoding.EncodeToString(b.auth),
	}
}

// Decrypt is the user agent's side of RFC 8291: it reads the aes128gcm
// header of body (salt, rs, idlen, and the application server's ephemeral
// public key as keyid), derives the content encryption key and nonce,
// opens the single record and strips its padding. It refuses a body over
// the 4096 octets a push service must accept, a keyid that is not a P-256
// point, a record not smaller than rs, and padding without the 0x02
// delimiter of a last record.
func (b *Browser) Decrypt(body []byte) ([]byte, error) {
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

func hmacSHA256(key []byte, data ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}
