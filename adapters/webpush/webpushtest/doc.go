// Package webpushtest provides a local push service and browsers for
// testing Web Push senders end to end, in the manner of net/http/httptest:
// a PushService is an HTTPS server on 127.0.0.1 that checks each request's
// VAPID token (RFC 8292) and, playing the browser a subscription belongs
// to, decrypts the push message (RFC 8291) and records what it found.
//
// The decryption and the token check are written from the RFCs' text with
// bare HMAC-SHA-256, AES-GCM and ECDSA from the standard library. They share
// no code with package webpush, which this package uses only for its
// Subscription type: a mistake in the adapter's encryption cannot be
// mirrored here and pass unnoticed. The package's own test decrypts the
// worked example of RFC 8291 §5.
//
// Every server uses httptest's TLS certificate (Certificate); a client must
// trust it and, when it is SSRF-guarded, allow 127.0.0.1. This package is
// for tests only: it must not be imported by production code.
package webpushtest
