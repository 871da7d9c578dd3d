package webpushtest_test

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"herald/adapters/webpush"
	"herald/adapters/webpush/webpushtest"
)

// The example of RFC 8292 §2.4: a token signed by a key whose public half
// is published with it.
const (
	rfcToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA"
	rfcKey   = "BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs"
	rfcAud   = "https://push.example.net"
	rfcSub   = "mailto:push@example.com"
	rfcExp   = 1453523768
)

func TestVerifyVAPIDRFC8292Example(t *testing.T) {
	t.Parallel()
	valid := "vapid t=" + rfcToken + ", k=" + rfcKey
	hourBefore := time.Unix(rfcExp-3600, 0)

	c, err := webpushtest.VerifyVAPID(valid, rfcKey, rfcAud, rfcSub, hourBefore)
	if err != nil {
		t.Fatalf("the RFC's token: %v", err)
	}
	if c != (webpushtest.Claims{Aud: rfcAud, Exp: rfcExp, Sub: rfcSub}) {
		t.Fatalf("claims %+v", c)
	}

	otherKey, _, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(valid, "i3CYb7t4", "i3CYb7t5", 1)
	cases := []struct {
		name, authz, key, aud, sub string
		now                        time.Time
		want                       string
	}{
		{"bearer scheme", "Bearer " + rfcToken, rfcKey, rfcAud, rfcSub, hourBefore, "scheme"},
		{"another key expected", valid, otherKey, rfcAud, rfcSub, hourBefore, "want the application server key"},
		{"tampered signature", tampered, rfcKey, rfcAud, rfcSub, hourBefore, "does not verify"},
		{"another push service", valid, rfcKey, "https://push.example.org", rfcSub, hourBefore, "aud"},
		{"another subject", valid, rfcKey, rfcAud, "mailto:ops@example.com", hourBefore, "sub"},
		{"expired", valid, rfcKey, rfcAud, rfcSub, time.Unix(rfcExp, 0), "not after now"},
		{"exp too far ahead", valid, rfcKey, rfcAud, rfcSub, time.Unix(rfcExp, 0).Add(-25 * time.Hour), "more than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := webpushtest.VerifyVAPID(tc.authz, tc.key, tc.aud, tc.sub, tc.now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one about %q", err, tc.want)
			}
		})
	}
}

// TestPushServiceRefusesWhatItCannotCheck: a request the service cannot
// verify is answered 400 and recorded with the reason, so a sender's
// mistake fails the test that uses the service instead of passing as 201.
func TestPushServiceRefusesWhatItCannotCheck(t *testing.T) {
	t.Parallel()
	pub, _, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	ps := webpushtest.NewPushService(pub, "mailto:ops@herald.example")
	defer ps.Close()
	sub := ps.Subscribe("/push/phone", webpushtest.Answer{})
	if err := sub.Validate(); err != nil {
		t.Fatalf("subscription does not validate: %v", err)
	}
	if !strings.HasPrefix(sub.Endpoint, ps.URL+"/push/phone") {
		t.Fatalf("endpoint %s is not on %s", sub.Endpoint, ps.URL)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ps.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	cases := []struct {
		name, method, path, encoding, authz string
		want                                string
	}{
		{"unknown endpoint", "POST", "/push/nobody", "aes128gcm", "", "unknown endpoint"},
		{"GET", "GET", "/push/phone", "aes128gcm", "", "method"},
		{"old encoding", "POST", "/push/phone", "aesgcm", "", "Content-Encoding"},
		{"no token", "POST", "/push/phone", "aes128gcm", "", "scheme"},
		{"token for another key", "POST", "/push/phone", "aes128gcm", "vapid t=" + rfcToken + ", k=" + rfcKey, "application server key"},
	}
	for i, tc := range cases {
		req, _ := http.NewRequest(tc.method, ps.URL+tc.path, strings.NewReader("not a push message"))
		req.Header.Set("Content-Encoding", tc.encoding)
		if tc.authz != "" {
			req.Header.Set("Authorization", tc.authz)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: answered %d, want 400", tc.name, resp.StatusCode)
		}
		got := ps.Requests()
		if len(got) != i+1 {
			t.Fatalf("%s: %d requests recorded, want %d", tc.name, len(got), i+1)
		}
		if r := got[i]; r.Path != tc.path || r.Err == nil || !strings.Contains(r.Err.Error(), tc.want) {
			t.Errorf("%s: recorded %s with error %v, want one about %q", tc.name, r.Path, r.Err, tc.want)
		}
	}
}
