package webpush

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Sizes of the aes128gcm content coding (RFC 8188) as RFC 8291 restricts it
// for push messages: one record, the sender's ECDH public key as keyid.
const (
	authSecretLen = 16
	saltLen       = 16
	p256PointLen  = 65
	tagLen        = 16
	// headerLen is salt, rs (uint32), idlen (one octet) and keyid.
	headerLen = saltLen + 4 + 1 + p256PointLen
	// maxBodyLen is what every push service must accept (RFC 8030 §7.2).
	maxBodyLen = 4096
	// recordSize is the rs the header declares. RFC 8291 §4 wants it larger
	// than the one record (plaintext, delimiter, padding, tag); a record
	// that fits in maxBodyLen always is.
	recordSize = maxBodyLen
	// MaxPayloadLen is the largest JSON payload one push can carry: the
	// 4096-octet body minus the header, the padding delimiter and the tag.
	MaxPayloadLen = maxBodyLen - headerLen - 1 - tagLen
	// padBlock rounds the padded plaintext up so that the push service sees
	// the payload's length only to within padBlock octets.
	padBlock = 128
)

// encrypt seals plaintext for one subscription with a fresh ephemeral key
// and salt (RFC 8291 §3), returning the whole request body: the aes128gcm
// header followed by the single record.
func encrypt(plaintext []byte, sub decodedSubscription) ([]byte, error) {
	if len(plaintext) > MaxPayloadLen {
		return nil, fmt.Errorf("payload of %d bytes exceeds %d", len(plaintext), MaxPayloadLen)
	}
	ephemeral, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	shared, err := ephemeral.ECDH(sub.public)
	if err != nil {
		return nil, fmt.Errorf("ecdh: %w", err)
	}
	uaPublic := sub.public.Bytes()
	asPublic := ephemeral.PublicKey().Bytes()

	// The auth secret salts the ECDH secret into the input keying material;
	// the info binds both public keys, receiver's first.
	keyInfo := make([]byte, 0, len("WebPush: info\x00")+2*p256PointLen)
	keyInfo = append(keyInfo, "WebPush: info\x00"...)
	keyInfo = append(keyInfo, uaPublic...)
	keyInfo = append(keyInfo, asPublic...)
	ikm, err := hkdf.Key(sha256.New, shared, sub.auth, string(keyInfo), 32)
	if err != nil {
		return nil, fmt.Errorf("derive ikm: %w", err)
	}

	salt := make([]byte, saltLen)
	rand.Read(salt)
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, fmt.Errorf("derive prk: %w", err)
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, fmt.Errorf("derive cek: %w", err)
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, fmt.Errorf("derive nonce: %w", err)
	}

	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}

	// The record is the plaintext, the 0x02 delimiter of a last record, and
	// zero padding up to the next padBlock (never past the 4096 limit).
	padded := min((len(plaintext)+1+padBlock-1)/padBlock*padBlock, MaxPayloadLen+1)
	record := make([]byte, padded)
	copy(record, plaintext)
	record[len(plaintext)] = 0x02

	body := make([]byte, 0, headerLen+padded+tagLen)
	body = append(body, salt...)
	body = binary.BigEndian.AppendUint32(body, recordSize)
	body = append(body, p256PointLen)
	body = append(body, asPublic...)
	return gcm.Seal(body, nonce, record, nil), nil
}
