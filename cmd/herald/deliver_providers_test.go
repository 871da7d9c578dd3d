package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// mailbox is an SMTP server in the test process that keeps what it got.
type mailbox struct {
	mu   sync.Mutex
	msgs []string
}

type mailSession struct{ box *mailbox }

func (s mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, string(b))
	s.box.mu.Unlock()
	return err
}
func (s mailSession) Reset()        {}
func (s mailSession) Logout() error { return nil }

func startMailbox(t *testing.T) (*mailbox, string) {
	box := &mailbox{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return mailSession{box}, nil }))
	srv.Domain = "mx.test"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return box, ln.Addr().String()
}

// fakeTwilio speaks the Messages resource of a Twilio-compatible API.
type fakeTwilio struct {
	*httptest.Server
	mu        sync.Mutex
	callbacks []string
	bodies    []string
}

func startFakeTwilio(t *testing.T, sid, token string) *fakeTwilio {
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if r.URL.Path != "/2010-04-01/Accounts/"+sid+"/Messages.json" || user != sid || pass != token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = r.ParseForm()
		f.mu.Lock()
		f.callbacks = append(f.callbacks, r.PostForm.Get("StatusCallback"))
		f.bodies = append(f.bodies, r.PostForm.Get("To")+" "+r.PostForm.Get("Body"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"SM0123456789abcdef","status":"queued"}`)
	}))
	t.Cleanup(f.Close)
	return f
}

// twilioSignature signs a callback as the provider does: HMAC-SHA1 over
// the URL followed by the sorted parameters, keyed by the auth token.
func twilioSignature(token, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(form.Get(k))
	}
	m := hmac.New(sha1.New, []byte(token))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func TestDeliveryEndToEndEmailAndSMSWithReceipts(t *testing.T) {
	const sid, token = "AC0123", "twilio-secret-token"
	box, mx := startMailbox(t)
	twilio := startFakeTwilio(t, sid, token)
	mxHost, mxPort, _ := net.SplitHostPort(mx)

	// The public URL must be known before start: take a free port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	public := "http://" + addr
	args := deliveryArgs(t.TempDir())
	args = append(args, "--addr", addr,
		"--smtp-host", mxHost, "--smtp-port", mxPort, "--smtp-tls", "none", "--smtp-from", "herald@example.com",
		"--sms-base-url", twilio.URL, "--sms-account-sid", sid, "--sms-from", "+15550001111", "--public-url", public)
	env := map[string]string{"HERALD_SMS_AUTH_TOKEN": token}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, args, io.Discard, io.Discard, func(k string) string { return env[k] }, started)
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	defer func() { cancel(); <-done }()

	c := client{t: t, base: public, http: http.DefaultClient}
	code, m := c.do("POST", "/v1/notifications", map[string]any{
		"recipient": map[string]any{"id": "user-9", "email": "ada@example.com", "phone": "+15551234567"},
		"channels":  []string{"email", "sms"},
		"content":   map[string]any{"subject": "Your code", "body": "Code 424242", "html": "<p>Code <b>424242</b></p>"},
	})
	if code != http.StatusAccepted {
		t.Fatalf("send = %d %v", code, m)
	}
	id := m["id"].(string)
	// Both providers took it: "sent", not yet "delivered".
	waitUntil(t, 15*time.Second, "email and SMS sent", func() bool {
		_, ds := c.status(id)
		n := 0
		for _, d := range ds {
			if d.(map[string]any)["status"] == "sent" {
				n++
			}
		}
		return n == 2
	})
	box.mu.Lock()
	if len(box.msgs) != 1 || !strings.Contains(box.msgs[0], "Message-ID: <"+id+"/email-1@") ||
		!strings.Contains(box.msgs[0], "multipart/alternative") {
		t.Fatalf("mailbox got %d messages: %.400q", len(box.msgs), box.msgs)
	}
	box.mu.Unlock()
	twilio.mu.Lock()
	if len(twilio.bodies) != 1 || !strings.Contains(twilio.bodies[0], "+15551234567") || !strings.Contains(twilio.bodies[0], "424242") {
		t.Fatalf("SMS provider got %q", twilio.bodies)
	}
	callback := twilio.callbacks[0]
	twilio.mu.Unlock()
	if !strings.HasPrefix(callback, public+"/v1/receipts/sms?") {
		t.Fatalf("status callback URL = %q", callback)
	}

	// The mail system confirms delivery (a JSON receipt with a key).
	if code, m := c.do("POST", "/v1/receipts/email", map[string]any{
		"notification_id": id, "delivery_id": "email-1", "outcome": "delivered",
	}); code != http.StatusOK {
		t.Fatalf("email receipt = %d %v", code, m)
	}
	// The SMS provider calls back, signed, without an API key.
	form := url.Values{"MessageSid": {"SM0123456789abcdef"}, "MessageStatus": {"delivered"}, "AccountSid": {sid}}
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", callback, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(twilioSignature("wrong-token", callback, form)); code != http.StatusUnauthorized {
		t.Fatalf("forged callback answered %d, want 401", code)
	}
	if code := post(twilioSignature(token, callback, form)); code != http.StatusOK {
		t.Fatalf("signed callback answered %d", code)
	}
	waitUntil(t, 10*time.Second, "both confirmed delivered", func() bool {
		st, _ := c.status(id)
		return st == "delivered"
	})
	code, m = c.do("GET", "/v1/notifications/"+id+"/events", nil)
	if code != http.StatusOK {
		t.Fatalf("events = %d", code)
	}
	var receipts []string
	for _, e := range m["events"].([]any) {
		e := e.(map[string]any)
		if e["type"] == "DeliveryReceiptRecorded" {
			receipts = append(receipts, e["actor"].(string))
		}
	}
	if strings.Join(receipts, ",") != "app,sms-callback" && strings.Join(receipts, ",") != "sms-callback,app" {
		t.Fatalf("receipt events by %v, want one by the API key and one by the signed callback", receipts)
	}
}
