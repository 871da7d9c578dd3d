package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"herald/adapters/webpush/webpushtest"
	"herald/domain"
)

// pushServiceCert is the certificate every webpushtest.PushService serves
// (httptest's); trustPushServices makes this test process trust it.
var pushServiceCert *x509.Certificate

// trustPushServices adds the push services' certificate to this test
// process's system roots, so that `serve`, run in-process, reaches a local
// push service over HTTPS exactly as it reaches a real one: through the
// system roots, with no test hook in the server. Go reads the system roots
// once, on first use, from SSL_CERT_FILE (on Unix but macOS), so TestMain
// calls this before any test runs; the file it writes keeps what an
// SSL_CERT_FILE already set held. The returned func removes the file.
func trustPushServices() (func(), error) {
	ps := webpushtest.NewPushService("", "")
	pushServiceCert = ps.Certificate()
	ps.Close()
	f, err := os.CreateTemp("", "herald-test-roots-*.pem")
	if err != nil {
		return nil, err
	}
	remove := func() { _ = os.Remove(f.Name()) }
	if prev := os.Getenv("SSL_CERT_FILE"); prev != "" {
		b, err := os.ReadFile(prev)
		if err != nil {
			remove()
			return nil, fmt.Errorf("SSL_CERT_FILE: %w", err)
		}
		_, _ = f.Write(append(b, '\n'))
	}
	err = pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: pushServiceCert.Raw})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Setenv("SSL_CERT_FILE", f.Name())
	}
	if err != nil {
		remove()
		return nil, err
	}
	return remove, nil
}

// TestWebPushEndToEndThroughServe drives web push through the whole server:
// a page fetches the server's VAPID key and registers a browser's
// subscription over the API, a notification sent over the API reaches a
// push service on loopback signed for that key and encrypted for that
// browser, the status and the audit trail show each step, and a
// subscription the push service calls gone is recorded as expired on the
// recipient and not pushed to again.
func TestWebPushEndToEndThroughServe(t *testing.T) {
	if runtime.GOOS == "darwin" {
		t.Skip("skipped on macOS: Go verifies with the platform's roots there, which ignore SSL_CERT_FILE, so serve cannot trust the local push service")
	}
	const subject = "mailto:ops@herald.example"
	dir := t.TempDir()
	args := append(deliveryArgs(dir), "--vapid-subject", subject)
	base, stop := startTestServer(t, args)
	c := client{t: t, base: base, http: http.DefaultClient}

	// The applicationServerKey a page subscribes with is the key the
	// server keeps in its data folder.
	code, m := c.do("GET", "/v1/webpush/vapid-public-key", nil)
	key, _ := m["public_key"].(string)
	if code != http.StatusOK || key == "" {
		t.Fatalf("vapid public key = %d %v", code, m)
	}
	var kept struct{ Public string }
	if b, err := os.ReadFile(filepath.Join(dir, "vapid.json")); err != nil || json.Unmarshal(b, &kept) != nil || kept.Public != key {
		t.Fatalf("the API's key %s is not the data folder's %q (%v)", key, kept.Public, err)
	}

	ps := webpushtest.NewPushService(key, subject)
	defer ps.Close()
	if !ps.Certificate().Equal(pushServiceCert) {
		t.Fatal("the push service's certificate is not the one TestMain made this process trust")
	}
	// subscribe registers a browser of ada's, as a page posts its
	// PushSubscription.toJSON().
	subscribe := func(path string, a webpushtest.Answer) string {
		t.Helper()
		s := ps.Subscribe(path, a)
		code, m := c.do("POST", "/v1/recipients/ada/webpush-subscriptions", map[string]any{
			"endpoint": s.Endpoint, "expirationTime": nil,
			"keys": map[string]any{"p256dh": s.P256dh, "auth": s.Auth},
		})
		if code != http.StatusCreated {
			t.Fatalf("subscribe %s = %d %v", path, code, m)
		}
		return s.Endpoint
	}
	send := func(body string) string {
		t.Helper()
		code, m := c.do("POST", "/v1/notifications", map[string]any{
			"recipient": map[string]any{"id": "ada"}, "channels": []string{"webpush"},
			"content":  map[string]any{"subject": "Your code", "body": body},
			"metadata": map[string]any{"order": "A-17"},
		})
		if code != http.StatusAccepted {
			t.Fatalf("send = %d %v", code, m)
		}
		return m["id"].(string)
	}
	delivered := func(id string) {
		t.Helper()
		eventually(t, id+" delivered by web push", func() error {
			st, ds := c.status(id)
			if st == "delivered" && len(ds) == 1 {
				return nil
			}
			return fmt.Errorf("status %q, deliveries %v", st, ds)
		})
	}
	pushesTo := func(path string) int {
		n := 0
		for _, r := range ps.Requests() {
			if r.Path == path {
				n++
			}
		}
		return n
	}
	activeEndpoints := func() []string {
		t.Helper()
		code, m := c.do("GET", "/v1/recipients/ada", nil)
		if code != http.StatusOK {
			t.Fatalf("recipient = %d %v", code, m)
		}
		var out []string
		for _, s := range m["webpush_subscriptions"].([]any) {
			out = append(out, s.(map[string]any)["endpoint"].(string))
		}
		return out
	}

	// One browser: the push is signed, encrypted for it, and recorded.
	phone := subscribe("/push/phone", webpushtest.Answer{})
	first := send("Code 424242")
	delivered(first)

	reqs := ps.Requests()
	if len(reqs) != 1 {
		t.Fatalf("push service got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Err != nil {
		t.Fatalf("push service refused the push: %v", r.Err)
	}
	if r.Path != "/push/phone" || r.Claims.Aud != ps.URL || r.Claims.Sub != subject {
		t.Fatalf("push to %s with claims %+v, want /push/phone with aud %s and sub %s", r.Path, r.Claims, ps.URL, subject)
	}
	want := webpushtest.Payload{
		Title: "Your code", Body: "Code 424242", NotificationID: first, DeliveryID: "webpush-1",
		IdempotencyKey: first + "/webpush-1", Metadata: map[string]string{"order": "A-17"},
	}
	if p := r.Payload; p.Title != want.Title || p.Body != want.Body || p.NotificationID != want.NotificationID ||
		p.DeliveryID != want.DeliveryID || p.IdempotencyKey != want.IdempotencyKey || p.Metadata["order"] != "A-17" {
		t.Fatalf("decrypted payload %+v, want %+v", p, want)
	}
	if u := r.Header.Get("Urgency"); u != "normal" {
		t.Errorf("Urgency %q, want normal", u)
	}
	_, ds := c.status(first)
	if d := ds[0].(map[string]any); d["channel"] != "webpush" || d["status"] != "delivered" || d["attempts"] != float64(1) {
		t.Fatalf("delivery %v, want webpush delivered after one attempt", d)
	}

	// The audit trail: requested → planned → attempted → succeeded, in
	// that order and once each, the success naming the push message.
	types, data := c.events(first)
	steps := []string{domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeDeliveryAttempted, domain.TypeDeliverySucceeded}
	var seen []string
	for i, typ := range types {
		if slices.Contains(steps, typ) {
			seen = append(seen, typ)
		}
		if typ == domain.TypeDeliverySucceeded && (data[i]["provider_message_id"] != "/message/push/phone" || data[i]["confirmed"] != true) {
			t.Errorf("DeliverySucceeded %v, want confirmed with the push message resource as id", data[i])
		}
		if typ == domain.TypeDeliveryFailed {
			t.Errorf("a failed attempt in the trail: %v", data[i])
		}
	}
	if !slices.Equal(seen, steps) {
		t.Fatalf("audit trail %v, want %v in order, once each", types, steps)
	}

	// A second browser whose push service answers 410 Gone: the send is
	// still delivered (the phone took it), and the laptop's subscription
	// is expired before the delivery is recorded.
	laptop := subscribe("/push/laptop", webpushtest.Answer{Code: http.StatusGone})
	if got := activeEndpoints(); !slices.Equal(got, []string{phone, laptop}) {
		t.Fatalf("subscriptions %v, want the phone and the laptop", got)
	}
	second := send("Code 515151")
	delivered(second)
	if p, l := pushesTo("/push/phone"), pushesTo("/push/laptop"); p != 2 || l != 1 {
		t.Fatalf("pushes: phone %d, laptop %d; want 2 and 1", p, l)
	}
	for _, r := range ps.Requests() {
		if r.Err != nil {
			t.Fatalf("push service refused a push to %s: %v", r.Path, r.Err)
		}
	}
	if got := activeEndpoints(); !slices.Equal(got, []string{phone}) {
		t.Fatalf("subscriptions after the 410 %v, want the phone only", got)
	}

	// The next send no longer uses the expired subscription.
	third := send("Code 616161")
	delivered(third)
	if p, l := pushesTo("/push/phone"), pushesTo("/push/laptop"); p != 3 || l != 1 {
		t.Fatalf("pushes after the expiry: phone %d, laptop %d; want 3 and still 1", p, l)
	}

	// Straight from the log: the recipient's stream records the two
	// subscriptions and the laptop's expiry, by the web push adapter.
	stop()
	events := openEventLog(t, dir)
	recs, err := events.ReadStream(t.Context(), "recipient-ada", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, rec := range recs {
		e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		switch e := e.(type) {
		case domain.WebPushSubscriptionAdded:
			trail = append(trail, "added "+e.Subscription.Endpoint)
		case domain.WebPushSubscriptionExpired:
			trail = append(trail, "expired "+e.Endpoint+" by "+rec.Metadata.Actor)
		}
	}
	wantTrail := []string{"added " + phone, "added " + laptop, "expired " + laptop + " by webpush"}
	if !slices.Equal(trail, wantTrail) {
		t.Fatalf("recipient stream %q, want %q", trail, wantTrail)
	}
}

// The key endpoint wants the read scope, like every other read.
func TestWebPushVAPIDKeyNeedsTheReadScope(t *testing.T) {
	t.Parallel()
	base := startServe(t, t.TempDir()) // app: send only; ops: every scope
	if a := do(t, "GET", base+"/v1/webpush/vapid-public-key", "", ""); a.code != http.StatusUnauthorized {
		t.Fatalf("without a key: %d %s", a.code, a.raw)
	}
	if a := do(t, "GET", base+"/v1/webpush/vapid-public-key", testSendKey, ""); a.code != http.StatusForbidden {
		t.Fatalf("with a send-only key: %d %s", a.code, a.raw)
	}
	a := do(t, "GET", base+"/v1/webpush/vapid-public-key", testAdminKey, "")
	if key, _ := a.body["public_key"].(string); a.code != http.StatusOK || a.ct != "application/json" || len(key) != 87 {
		t.Fatalf("with a read key: %d %s %s, want the 65-byte point in base64url (87 characters)", a.code, a.ct, a.raw)
	}
}
