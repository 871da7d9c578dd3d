package webpush_test

import (
	"crypto/ecdh"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/adapters/webpush"
	"herald/adapters/webpush/webpushtest"
)

func TestGenerateVAPIDKeys(t *testing.T) {
	t.Parallel()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	rawPub, err := base64.RawURLEncoding.DecodeString(pub)
	if err != nil || len(rawPub) != 65 || rawPub[0] != 4 {
		t.Fatalf("public key %q: %d bytes, %v; want a 65-byte uncompressed point", pub, len(rawPub), err)
	}
	rawPriv, err := base64.RawURLEncoding.DecodeString(priv)
	if err != nil || len(rawPriv) != 32 {
		t.Fatalf("private key: %d bytes, %v; want 32", len(rawPriv), err)
	}
	// The pair belongs together: the private scalar yields the public point.
	k, err := ecdh.P256().NewPrivateKey(rawPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.PublicKey().Bytes(); string(got) != string(rawPub) {
		t.Fatal("public key is not the private key's point")
	}
	pub2, _, err := webpush.GenerateVAPIDKeys()
	if err != nil || pub2 == pub {
		t.Fatalf("second pair %v: same public key %v", err, pub2 == pub)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, otherPriv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	valid := func() webpush.Config {
		return webpush.Config{
			Subscriptions:   &webpush.MemorySubscriptions{},
			VAPIDPublicKey:  pub,
			VAPIDPrivateKey: priv,
			Subject:         "https://herald.example/contact",
		}
	}
	cases := []struct {
		name string
		edit func(*webpush.Config)
		want []string // every fragment must be in the error; none means valid
	}{
		{name: "valid https subject"},
		{name: "valid mailto subject", edit: func(c *webpush.Config) { c.Subject = "mailto:ops@herald.example" }},
		{name: "padded keys", edit: func(c *webpush.Config) {
			c.VAPIDPublicKey += strings.Repeat("=", (4-len(pub)%4)%4)
			c.VAPIDPrivateKey += strings.Repeat("=", (4-len(priv)%4)%4)
		}},
		{name: "empty", edit: func(c *webpush.Config) { *c = webpush.Config{} },
			want: []string{"Subscriptions is required", "VAPIDPublicKey and VAPIDPrivateKey are required", "Subject is required"}},
		{name: "mismatched pair", edit: func(c *webpush.Config) { c.VAPIDPrivateKey = otherPriv },
			want: []string{"does not belong"}},
		{name: "private key not a scalar", edit: func(c *webpush.Config) {
			c.VAPIDPrivateKey = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 32)))
		}, want: []string{"VAPIDPrivateKey: not"}},
		{name: "public key garbage", edit: func(c *webpush.Config) { c.VAPIDPublicKey = "!!" + otherPub[2:] },
			want: []string{"VAPIDPublicKey: not"}},
		{name: "bare email subject", edit: func(c *webpush.Config) { c.Subject = "ops@herald.example" },
			want: []string{"mailto: or https:"}},
		{name: "bad mailto", edit: func(c *webpush.Config) { c.Subject = "mailto:nobody" },
			want: []string{"not a mailto: address"}},
		{name: "vapid expiry beyond 24h", edit: func(c *webpush.Config) { c.VAPIDExpiry = 25 * time.Hour },
			want: []string{"VAPIDExpiry", "RFC 8292"}},
		{name: "negative ttl", edit: func(c *webpush.Config) { c.TTL = -time.Second }, want: []string{"TTL"}},
		{name: "ttl beyond four weeks", edit: func(c *webpush.Config) { c.TTL = 29 * 24 * time.Hour }, want: []string{"TTL"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			s, err := webpush.New(cfg)
			if len(tc.want) == 0 {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v; want a Sender", s, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted an invalid config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			for _, secret := range []string{priv, otherPriv, cfg.VAPIDPrivateKey} {
				if secret != "" && strings.Contains(err.Error(), secret) {
					t.Fatalf("error reveals a private key: %v", err)
				}
			}
		})
	}
}

func TestConfigStringRedactsPrivateKey(t *testing.T) {
	t.Parallel()
	pub, priv, err := webpush.GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	cfg := webpush.Config{VAPIDPublicKey: pub, VAPIDPrivateKey: priv, Subject: "mailto:ops@herald.example"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, cfg)
		if strings.Contains(out, priv) {
			t.Fatalf("%s of Config reveals the private key: %s", verb, out)
		}
		if !strings.Contains(out, pub) || !strings.Contains(out, "redacted") {
			t.Fatalf("%s of Config = %s, want the public key and a redaction mark", verb, out)
		}
	}
}

func TestMemorySubscriptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var m webpush.MemorySubscriptions
	phone := webpushtest.NewBrowser().Subscription("https://push.example/a")
	laptop := webpushtest.NewBrowser().Subscription("https://push.example/b")

	for _, s := range []webpush.Subscription{phone, laptop} {
		if err := m.Add("user-42", s); err != nil {
			t.Fatalf("Add: %v", err)
		}
	}
	refreshed := webpushtest.NewBrowser().Subscription(phone.Endpoint)
	if err := m.Add("user-42", refreshed); err != nil {
		t.Fatalf("Add refreshed: %v", err)
	}
	got, err := m.Subscriptions(ctx, "user-42")
	if err != nil || len(got) != 2 || got[0] != refreshed || got[1] != laptop {
		t.Fatalf("Subscriptions = %+v, %v; want the refreshed phone then the laptop", got, err)
	}
	got[0] = webpush.Subscription{}
	if again, _ := m.Subscriptions(ctx, "user-42"); again[0] != refreshed {
		t.Fatal("Subscriptions returned the store's own slice")
	}
	if !m.Remove("user-42", laptop.Endpoint) || m.Remove("user-42", laptop.Endpoint) {
		t.Fatal("Remove: want true once, then false")
	}
	if none, err := m.Subscriptions(ctx, "user-7"); err != nil || len(none) != 0 {
		t.Fatalf("unknown recipient: %+v, %v", none, err)
	}

	invalid := []webpush.Subscription{
		{Endpoint: "http://push.example/a", P256dh: phone.P256dh, Auth: phone.Auth},
		{Endpoint: "https://push.example/a", P256dh: "AAAA", Auth: phone.Auth},
		{Endpoint: "https://push.example/a", P256dh: phone.P256dh, Auth: "c2hvcnQ"},
		{Endpoint: "/relative", P256dh: phone.P256dh, Auth: phone.Auth},
	}
	for _, s := range invalid {
		err := m.Add("user-42", s)
		if err == nil {
			t.Errorf("Add accepted %+v", s)
		} else if strings.Contains(err.Error(), phone.Auth) {
			t.Errorf("error reveals the auth secret: %v", err)
		}
	}
	if err := m.Add("", phone); err == nil {
		t.Error("Add accepted an empty recipient id")
	}

	// Concurrent use is safe (run under -race).
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s := webpushtest.NewBrowser().Subscription(fmt.Sprintf("https://push.example/c%d", i))
			if err := m.Add("user-9", s); err != nil {
				t.Error(err)
			}
			_, _ = m.Subscriptions(ctx, "user-9")
		})
	}
	wg.Wait()
	if all, _ := m.Subscriptions(ctx, "user-9"); len(all) != 8 {
		t.Fatalf("after concurrent adds: %d subscriptions, want 8", len(all))
	}
}
