package sms_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"

	"herald/adapters/sms"
	"herald/domain"
)

const publicURL = "https://herald.example.com"

// twilioSignature computes X-Twilio-Signature the way the provider
// documents it, independently of the package: HMAC-SHA1 over the full URL
// followed by each POST parameter's name and value, sorted by name.
func twilioSignature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(k + v)
		}
	}
	mac := hmac.New(sha1.New, []byte(token))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// callback builds the request the provider would post to Herald for a
// status callback URL, as it arrives behind a TLS-terminating proxy.
func callback(t *testing.T, callbackURL string, form url.Values, signature string) *http.Request {
	t.Helper()
	u, err := url.Parse(callbackURL)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, u.RequestURI(), strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if signature != "" {
		r.Header.Set("X-Twilio-Signature", signature)
	}
	return r
}

func statusForm(status, errorCode string) url.Values {
	f := url.Values{
		"AccountSid":    {accountSID},
		"ApiVersion":    {"2010-04-01"},
		"From":          {fromNumber},
		"To":            {"+14155550123"},
		"MessageSid":    {"SM00000000000000000000000000000001"},
		"SmsSid":        {"SM00000000000000000000000000000001"},
		"MessageStatus": {status},
		"SmsStatus":     {status},
	}
	if errorCode != "" {
		f.Set("ErrorCode", errorCode)
	}
	return f
}

const cbURL = publicURL + "/v1/receipts/sms?delivery=0190c3a2-7b1e-7f00-8000-00000000002a%2Fsms-1"

func TestParseStatusCallbackOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		status, errorCode string
		final             bool
		outcome           domain.ReceiptOutcome
		reason            string
	}{
		{status: "delivered", final: true, outcome: domain.ReceiptDelivered},
		{status: "read", final: true, outcome: domain.ReceiptOpened},
		{status: "undelivered", errorCode: "30003", final: true, outcome: domain.ReceiptFailed, reason: "30003 (unreachable destination handset)"},
		{status: "failed", errorCode: "30008", final: true, outcome: domain.ReceiptFailed, reason: "30008"},
		{status: "canceled", final: true, outcome: domain.ReceiptFailed, reason: "canceled"},
		{status: "queued"},
		{status: "sending"},
		{status: "sent"},
		{status: "accepted"},
		{status: "some_future_status"},
	}
	for _, tc := range cases {
		t.Run(tc.status, func(t *testing.T) {
			t.Parallel()
			form := statusForm(tc.status, tc.errorCode)
			r := callback(t, cbURL, form, twilioSignature(authToken, cbURL, form))
			rc, err := sms.ParseStatusCallback(r, authToken, publicURL)
			if err != nil {
				t.Fatalf("ParseStatusCallback: %v", err)
			}
			if rc.NotificationID != "0190c3a2-7b1e-7f00-8000-00000000002a" || rc.DeliveryID != "sms-1" {
				t.Errorf("delivery = %q / %q", rc.NotificationID, rc.DeliveryID)
			}
			if rc.ProviderMessageID != "SM00000000000000000000000000000001" || rc.Status != tc.status {
				t.Errorf("sid %q status %q", rc.ProviderMessageID, rc.Status)
			}
			if rc.Final != tc.final || rc.Outcome != tc.outcome {
				t.Errorf("Final %v Outcome %q, want %v %q", rc.Final, rc.Outcome, tc.final, tc.outcome)
			}
			if !strings.Contains(rc.Reason, tc.reason) || (tc.reason == "" && rc.Reason != "") {
				t.Errorf("Reason = %q, want %q in it", rc.Reason, tc.reason)
			}
			if rc.ErrorCode != tc.errorCode {
				t.Errorf("ErrorCode = %q, want %q", rc.ErrorCode, tc.errorCode)
			}
		})
	}
}

func TestParseStatusCallbackRefuses(t *testing.T) {
	t.Parallel()
	good := statusForm("delivered", "")
	goodSig := twilioSignature(authToken, cbURL, good)
	tampered := statusForm("delivered", "")
	tampered.Set("MessageStatus", "failed")
	cases := []struct {
		name      string
		request   func() *http.Request
		publicURL string
		want      error
	}{
		{name: "tampered form", want: sms.ErrBadSignature,
			request: func() *http.Request { return callback(t, cbURL, tampered, goodSig) }},
		{name: "tampered delivery in the URL", want: sms.ErrBadSignature,
			request: func() *http.Request {
				return callback(t, strings.Replace(cbURL, "sms-1", "sms-2", 1), good, goodSig)
			}},
		{name: "signed with another token", want: sms.ErrBadSignature,
			request: func() *http.Request { return callback(t, cbURL, good, twilioSignature("other-token", cbURL, good)) }},
		{name: "no signature", want: sms.ErrBadSignature,
			request: func() *http.Request { return callback(t, cbURL, good, "") }},
		{name: "signature for another host", want: sms.ErrBadSignature, publicURL: "https://evil.example.com",
			request: func() *http.Request { return callback(t, cbURL, good, goodSig) }},
		{name: "wrong method", want: sms.ErrInvalidCallback,
			request: func() *http.Request {
				r := callback(t, cbURL, good, goodSig)
				r.Method = http.MethodGet
				return r
			}},
		{name: "no delivery parameter", want: sms.ErrInvalidCallback,
			request: func() *http.Request {
				u := publicURL + "/v1/receipts/sms"
				return callback(t, u, good, twilioSignature(authToken, u, good))
			}},
		{name: "no message status", want: sms.ErrInvalidCallback,
			request: func() *http.Request {
				f := url.Values{"MessageSid": {"SM1"}}
				return callback(t, cbURL, f, twilioSignature(authToken, cbURL, f))
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pub := publicURL
			if tc.publicURL != "" {
				pub = tc.publicURL
			}
			_, err := sms.ParseStatusCallback(tc.request(), authToken, pub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), authToken) {
				t.Errorf("error reveals the auth token: %v", err)
			}
		})
	}
}

func TestParseStatusCallbackAcceptsDefaultPortSpellings(t *testing.T) {
	t.Parallel()
	form := statusForm("delivered", "")
	cases := []struct{ signedAs, public string }{
		{signedAs: "https://herald.example.com:443", public: "https://herald.example.com"},
		{signedAs: "https://herald.example.com", public: "https://herald.example.com:443/"},
	}
	for _, tc := range cases {
		full := tc.signedAs + "/v1/receipts/sms?delivery=n-1%2Fsms-1"
		r := callback(t, full, form, twilioSignature(authToken, full, form))
		rc, err := sms.ParseStatusCallback(r, authToken, tc.public)
		if err != nil {
			t.Errorf("signed as %s, public %s: %v", tc.signedAs, tc.public, err)
			continue
		}
		if rc.NotificationID != "n-1" || rc.DeliveryID != "sms-1" {
			t.Errorf("delivery = %q / %q", rc.NotificationID, rc.DeliveryID)
		}
	}
}

// TestStatusCallbackRoundTrip checks that the callback URL the sender hands
// the provider leads back to the delivery it sent.
func TestStatusCallbackRoundTrip(t *testing.T) {
	t.Parallel()
	f := startTwilio(t)
	s := newSender(t, config(f))
	m := message("+14155550123")
	res, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	cb := f.seen()[0].form.Get("StatusCallback")
	form := statusForm("undelivered", "30005")
	form.Set("MessageSid", res.ProviderMessageID)
	rc, err := sms.ParseStatusCallback(callback(t, cb, form, twilioSignature(authToken, cb, form)), authToken, publicURL)
	if err != nil {
		t.Fatalf("ParseStatusCallback(%s): %v", cb, err)
	}
	if rc.NotificationID != m.NotificationID || rc.DeliveryID != m.DeliveryID || rc.ProviderMessageID != res.ProviderMessageID {
		t.Errorf("receipt names %q / %q / %q, want %q / %q / %q",
			rc.NotificationID, rc.DeliveryID, rc.ProviderMessageID, m.NotificationID, m.DeliveryID, res.ProviderMessageID)
	}
	if !rc.Final || rc.Outcome != domain.ReceiptFailed || !strings.Contains(rc.Reason, "30005") {
		t.Errorf("receipt = %+v, want a final failure with error 30005", rc)
	}
}
