package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"herald/domain"
)

// ErrBadSignature is returned by ParseStatusCallback when X-Twilio-Signature
// is missing or does not match: the request did not come from the provider
// holding the auth token, or was changed on the way.
var ErrBadSignature = errors.New("sms status callback: bad signature")

// ErrInvalidCallback is returned by ParseStatusCallback for a request that
// is signed correctly but is not a usable status callback (wrong method or
// content type, no delivery parameter, no message sid or status).
var ErrInvalidCallback = errors.New("sms status callback: invalid")

// maxCallback bounds the form a status callback may post.
const maxCallback = 64 << 10

// Receipt is what one status callback says about one delivery.
type Receipt struct {
	NotificationID    domain.NotificationID
	DeliveryID        domain.DeliveryID
	ProviderMessageID string // MessageSid
	// Status is the provider's MessageStatus as posted.
	Status string
	// Final is false for intermediate statuses (queued, sending, sent, ...):
	// nothing is decided yet and the caller records nothing.
	Final bool
	// Outcome is set when Final: delivered, opened (read) or failed.
	Outcome domain.ReceiptOutcome
	// ErrorCode is the provider's error code for a failure, "" otherwise.
	ErrorCode string
	// Reason explains a failure, "" otherwise.
	Reason string
}

// ParseStatusCallback reads and verifies one status callback the provider
// posted to r. authToken is the account's auth token; publicURL is Herald's
// origin as the provider reaches it ("https://herald.example.com", with a
// path prefix when a proxy strips one), because behind a proxy r.URL does
// not show what the provider signed: the signed URL is publicURL followed by
// r.URL's path and query. It consumes r.Body.
//
// The signature (X-Twilio-Signature) is the base64 HMAC-SHA1, keyed by the
// auth token, of that URL followed by every POST parameter's name and value,
// sorted by name. Because providers and proxies disagree about default
// ports, the URL is tried as given, and with the default port added or
// removed. A missing or wrong signature gives ErrBadSignature, checked
// before anything in the form is trusted.
func ParseStatusCallback(r *http.Request, authToken string, publicURL string) (Receipt, error) {
	if r.Method != http.MethodPost {
		return Receipt{}, fmt.Errorf("%w: method %s", ErrInvalidCallback, r.Method)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return Receipt{}, fmt.Errorf("%w: content type %q", ErrInvalidCallback, r.Header.Get("Content-Type"))
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxCallback+1))
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: read body: %v", ErrInvalidCallback, err)
	}
	if len(raw) > maxCallback {
		return Receipt{}, fmt.Errorf("%w: body over %d bytes", ErrInvalidCallback, maxCallback)
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return Receipt{}, fmt.Errorf("%w: form: %v", ErrInvalidCallback, err)
	}
	signed := strings.TrimRight(publicURL, "/") + r.URL.RequestURI()
	if !validSignature(authToken, r.Header.Get("X-Twilio-Signature"), signed, form) {
		return Receipt{}, ErrBadSignature
	}

	key := r.URL.Query().Get(deliveryParam)
	i := strings.LastIndexByte(key, '/')
	if i <= 0 || i == len(key)-1 {
		return Receipt{}, fmt.Errorf("%w: query parameter %q = %q, want <notification>/<delivery>", ErrInvalidCallback, deliveryParam, key)
	}
	rc := Receipt{
		NotificationID:    domain.NotificationID(key[:i]),
		DeliveryID:        domain.DeliveryID(key[i+1:]),
		ProviderMessageID: form.Get("MessageSid"),
		Status:            form.Get("MessageStatus"),
	}
	if rc.ProviderMessageID == "" {
		rc.ProviderMessageID = form.Get("SmsSid")
	}
	if rc.Status == "" {
		rc.Status = form.Get("SmsStatus")
	}
	if rc.ProviderMessageID == "" || rc.Status == "" {
		return Receipt{}, fmt.Errorf("%w: MessageSid and MessageStatus are required", ErrInvalidCallback)
	}
	switch rc.Status {
	case "delivered":
		rc.Final, rc.Outcome = true, domain.ReceiptDelivered
	case "read":
		rc.Final, rc.Outcome = true, domain.ReceiptOpened
	case "undelivered", "failed", "canceled":
		rc.Final, rc.Outcome = true, domain.ReceiptFailed
		rc.ErrorCode = form.Get("ErrorCode")
		rc.Reason = failureReason(rc.Status, rc.ErrorCode, form.Get("ErrorMessage"))
	default:
		// accepted, scheduled, queued, sending, sent, receiving, received,
		// partially_delivered, and statuses not invented yet.
	}
	return rc, nil
}

// validSignature compares signature, in constant time, with the signature of
// every spelling of url (see ParseStatusCallback).
func validSignature(authToken, signature, rawURL string, form url.Values) bool {
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil || len(got) == 0 || authToken == "" {
		return false
	}
	ok := false
	for _, u := range urlSpellings(rawURL) {
		// No early exit: the time taken does not depend on which matched.
		if hmac.Equal(got, sign(authToken, u, form)) {
			ok = true
		}
	}
	return ok
}

// sign returns the raw HMAC-SHA1 of url followed by form's names and values
// sorted by name (values of a repeated name in sorted order).
func sign(authToken, rawURL string, form url.Values) []byte {
	names := make([]string, 0, len(form))
	for name := range form {
		names = append(names, name)
	}
	sort.Strings(names)
	mac := hmac.New(sha1.New, []byte(authToken))
	io.WriteString(mac, rawURL)
	for _, name := range names {
		values := append([]string(nil), form[name]...)
		sort.Strings(values)
		for _, v := range values {
			io.WriteString(mac, name)
			io.WriteString(mac, v)
		}
	}
	return mac.Sum(nil)
}

// urlSpellings returns rawURL, and rawURL with its scheme's default port
// added when absent or removed when present.
func urlSpellings(rawURL string) []string {
	out := []string{rawURL}
	u, err := url.Parse(rawURL)
	if err != nil {
		return out
	}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	if def == "" {
		return out
	}
	alt := *u
	switch u.Port() {
	case "":
		alt.Host = u.Host + ":" + def
	case def:
		alt.Host = u.Hostname()
		if strings.Contains(alt.Host, ":") {
			alt.Host = "[" + alt.Host + "]"
		}
	default:
		return out
	}
	return append(out, alt.String())
}

// errorTitles names the provider's common delivery error codes.
var errorTitles = map[string]string{
	"30001": "queue overflow",
	"30002": "account suspended",
	"30003": "unreachable destination handset",
	"30004": "message blocked",
	"30005": "unknown destination handset",
	"30006": "landline or unreachable carrier",
	"30007": "message filtered by the carrier",
	"30008": "unknown error",
	"30034": "sender not registered (A2P 10DLC)",
	"21610": "recipient unsubscribed",
}

func failureReason(status, code, message string) string {
	reason := "sms " + status
	if code != "" {
		reason += ": error " + code
		if title, ok := errorTitles[code]; ok {
			reason += " (" + title + ")"
		}
	}
	if message = oneLine(message); message != "" {
		reason += ": " + message
	}
	return reason
}
