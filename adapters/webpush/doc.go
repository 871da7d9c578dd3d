// Package webpush is the Web Push channel adapter: it delivers a
// channel.Message to every browser a recipient subscribed with, speaking the
// push protocol of RFC 8030, encrypting with RFC 8291 (aes128gcm) and
// identifying the application server with RFC 8292 (VAPID).
//
// Subscriptions are not part of a request; a Subscriptions lookup finds them
// by recipient id (Message.Address). MemorySubscriptions stands in until
// recipient profiles hold them. A push service answering 404 or 410 means the
// subscription is gone: Config.OnExpired hears of it so the caller can drop
// it and record the event; this package records nothing itself and never
// writes events or views.
//
// # What the browser receives
//
// The service worker's push event carries one JSON object (at most
// MaxPayloadLen bytes, else the delivery fails permanently):
//
//	{"title": "<Message.Subject>", "body": "<Message.Body>",
//	 "notification_id": "...", "delivery_id": "...",
//	 "idempotency_key": "<Message.IdempotencyKey>", "metadata": {...}}
//
// idempotency_key is the same on every attempt of a delivery, so a service
// worker can show a retried push once (for example as the Notification tag).
//
// # Outcomes
//
// Send answers Confirmed as soon as one push service accepted the message
// (2xx, normally 201): Web Push has no delivery receipt, and the push service
// holds the message for the browser until TTL lapses. Otherwise it returns a
// *channel.Failure: Expired when every subscription is gone; retryable,
// Throttled and with RetryAfter for 429; retryable for 5xx, 408, timeouts and
// connection errors; permanent for other 4xx, a push service certificate
// that does not verify (the reason names the problem, x509's words), an
// endpoint the SSRF guard refuses, an invalid subscription, or no
// subscription at all. Failure
// reasons name a push service by its origin only: an endpoint's path is a
// capability to push to that browser.
//
// # Why not webpush-go
//
// github.com/SherClockHolmes/webpush-go v1.4.0 was the library to use (it
// stood in go.mod, unimported, until go mod tidy dropped it), but its source
// shows it does not fit: it ignores Options.VapidExpiration (exp is always
// now+12h), prefixes "mailto:" to any subject not starting with "https:" (so
// "mailto:ops@example.com" becomes "mailto:mailto:ops@example.com"), pads
// every message to 4 KiB, never checks that the VAPID private key is a valid
// scalar or matches the public key, builds keys through the deprecated
// crypto/elliptic arithmetic, and returns the raw response for the caller to
// classify anyway. RFC 8291 is short on top of the standard library of Go
// 1.26 (crypto/ecdh, crypto/hkdf, crypto/aes, crypto/ecdsa), so this package
// implements it and the ES256 token itself, with no extra dependency.
//
// # Security
//
// Every request goes through Config.HTTPClient, by default the SSRF-guarded
// channel.NewHTTPClient: endpoints come from browsers, hence from users, and
// must not reach internal addresses. Endpoints must be https. The VAPID
// private key is checked once in New and appears in no error, Failure or
// Config.String. Payloads are padded to a multiple of 128 bytes so that push
// services learn their length only roughly.
package webpush
