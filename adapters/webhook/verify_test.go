package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"herald/adapters/webhook"
)

// TestVerifyKnownAnswer checks Verify against a vector worked out from the
// specification's formula, not from this package's signing code:
//
//	key       = base64-decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")  (the part after "whsec_")
//	content   = "msg_p5jXN8AQM9LWM0D4loKWxJek" + "." + "1614265330" + "." + `{"test": 2432232314}`
//	signature = "v1," + base64(HMAC-SHA256(key, content))
//	          = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
//
// (computed once with an independent HMAC tool; it is also the example the
// Standard Webhooks project publishes).
func TestVerifyKnownAnswer(t *testing.T) {
	t.Parallel()
	const (
		secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		id     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
		ts     = "1614265330"
		sig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	)
	body := []byte(`{"test": 2432232314}`)
	at := time.Unix(1614265330, 0)
	h := http.Header{}
	h.Set(webhook.HeaderID, id)
	h.Set(webhook.HeaderTimestamp, ts)
	h.Set(webhook.HeaderSignature, sig)
	if err := webhook.Verify(secret, h, body, time.Minute, at.Add(30*time.Second)); err != nil {
		t.Fatalf("known-answer vector rejected: %v", err)
	}
	// The same key given raw verifies too: whsec_ only changes the encoding.
	raw, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err := webhook.Verify(string(raw), h, body, time.Minute, at); err != nil {
		t.Fatalf("raw key rejected: %v", err)
	}
	// One byte of difference anywhere breaks it.
	if err := webhook.Verify(secret, h, []byte(`{"test": 2432232315}`), time.Minute, at); !errors.Is(err, webhook.ErrNoMatchingSignature) {
		t.Fatalf("tampered body: err = %v", err)
	}
}

// independentSignature computes a signature straight from the formula with
// the standard library, sharing no code with the package.
func independentSignature(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "." + string(body)))
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	now := time.Date(2026, 11, 3, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"id":"n1/webhook-1","subject":"Hi"}`)
	id := "n1/webhook-1"
	ts := strconv.FormatInt(now.Unix(), 10)
	good := independentSignature(key, id, ts, body)
	wrong := independentSignature([]byte("another key"), id, ts, body)

	header := func(id, ts, sig string) http.Header {
		h := http.Header{}
		if id != "" {
			h.Set("Webhook-Id", id) // canonical spelling works as well
		}
		if ts != "" {
			h.Set(webhook.HeaderTimestamp, ts)
		}
		if sig != "" {
			h.Set(webhook.HeaderSignature, sig)
		}
		return h
	}
	cases := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", secret, header(id, ts, good), body, now, nil},
		{"raw key", string(key), header(id, ts, good), body, now, nil},
		{"one of several", secret, header(id, ts, "v1,"+base64.StdEncoding.EncodeToString([]byte("nope"))+" v1a,xyz "+good), body, now, nil},
		{"within tolerance, late", secret, header(id, ts, good), body, now.Add(4 * time.Minute), nil},
		{"within tolerance, early", secret, header(id, ts, good), body, now.Add(-4 * time.Minute), nil},
		{"tampered body", secret, header(id, ts, good), append([]byte(nil), append(body, ' ')...), now, webhook.ErrNoMatchingSignature},
		{"other id", secret, header("n1/webhook-2", ts, good), body, now, webhook.ErrNoMatchingSignature},
		{"wrong secret", secret, header(id, ts, wrong), body, now, webhook.ErrNoMatchingSignature},
		{"unknown version only", secret, header(id, ts, "v2"+good[2:]), body, now, webhook.ErrNoMatchingSignature},
		{"not base64", secret, header(id, ts, "v1,!!!"), body, now, webhook.ErrNoMatchingSignature},
		{"too old", secret, header(id, ts, good), body, now.Add(6 * time.Minute), webhook.ErrTimestamp},
		{"from the future", secret, header(id, ts, good), body, now.Add(-6 * time.Minute), webhook.ErrTimestamp},
		{"timestamp not a number", secret, header(id, "2026-11-03T12:00:00Z", good), body, now, webhook.ErrTimestamp},
		{"no id", secret, header("", ts, good), body, now, webhook.ErrMissingHeader},
		{"no timestamp", secret, header(id, "", good), body, now, webhook.ErrMissingHeader},
		{"no signature", secret, header(id, ts, ""), body, now, webhook.ErrMissingHeader},
		{"bad whsec secret", "whsec_%%%", header(id, ts, good), body, now, webhook.ErrInvalidSecret},
		{"empty secret", "", header(id, ts, good), body, now, webhook.ErrInvalidSecret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(c.secret, c.header, c.body, 5*time.Minute, c.now)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
		})
	}
	// A zero tolerance means the default five minutes, not "exact".
	if err := webhook.Verify(secret, header(id, ts, good), body, 0, now.Add(4*time.Minute)); err != nil {
		t.Fatalf("default tolerance: %v", err)
	}
	if err := webhook.Verify(secret, header(id, ts, good), body, 0, now.Add(webhook.DefaultTolerance+time.Second)); !errors.Is(err, webhook.ErrTimestamp) {
		t.Fatalf("default tolerance exceeded: %v", err)
	}
}
