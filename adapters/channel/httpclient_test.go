package channel_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"herald/adapters/channel"
)

func TestPublicAddr(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"8.8.8.8":          true,
		"2606:4700::1111":  true,
		"127.0.0.1":        false,
		"::1":              false,
		"10.1.2.3":         false,
		"172.16.0.9":       false,
		"192.168.1.1":      false,
		"169.254.169.254":  false, // cloud metadata
		"fd00:ec2::254":    false, // AWS IPv6 metadata
		"fe80::1":          false,
		"100.64.0.1":       false,
		"0.0.0.0":          false,
		"::ffff:127.0.0.1": false, // IPv4-mapped loopback
		"224.0.0.1":        false,
		"64:ff9b::a00:1":   false,
		"::":               false,
		"255.255.255.255":  false,
	}
	for s, want := range cases {
		if got := channel.PublicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestHTTPClientGuardAndRedirects(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	guarded := channel.NewHTTPClient(channel.HTTPOptions{})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	if resp, err := guarded.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("guarded client reached %s: %s", srv.URL, resp.Status)
	} else if !errors.Is(err, channel.ErrAddressRefused) {
		t.Fatalf("guarded client error = %v, want ErrAddressRefused", err)
	}

	allowed := channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: []string{u.Hostname()}})
	resp, err := allowed.Get(srv.URL + "/redirect")
	if err != nil {
		t.Fatalf("allow-listed host: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect followed or lost: status %d, want 302", resp.StatusCode)
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	if channel.Classify(nil) != nil {
		t.Fatal("Classify(nil) != nil")
	}
	p := channel.Permanent("bad address", nil)
	if got := channel.Classify(wrap(p)); got != p || got.Retryable {
		t.Fatalf("Classify lost the wrapped permanent failure: %+v", got)
	}
	if got := channel.Classify(context.DeadlineExceeded); !got.Retryable || got.Reason != "timeout" {
		t.Fatalf("deadline classified as %+v", got)
	}
	if got := channel.Classify(errors.New("boom")); !got.Retryable {
		t.Fatalf("unknown error classified permanent: %+v", got)
	}
}

func wrap(err error) error { return errors.Join(errors.New("context"), err) }
