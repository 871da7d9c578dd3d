package config_test

import (
	"crypto/sha256"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"herald/infra/config"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseServeDefaultsEnvAndFlags(t *testing.T) {
	t.Parallel()
	c, err := config.ParseServe(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DataDir != "./data" || c.LogLevel != "info" || c.ShutdownTimeout != 15*time.Second {
		t.Fatalf("defaults: %+v", c)
	}

	env := envOf(map[string]string{
		"HERALD_ADDR":                "0.0.0.0:9000",
		"HERALD_DATA":                "/var/lib/herald",
		"HERALD_API_KEYS":            "ops:0123456789abcdef:send+read+admin, app:fedcba9876543210:send",
		"HERALD_WEBHOOK_ALLOW_HOSTS": "127.0.0.1, sink.local",
		"HERALD_SHUTDOWN_TIMEOUT":    "3s",
	})
	c, err = config.ParseServe(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "0.0.0.0:9000" || c.DataDir != "/var/lib/herald" || c.ShutdownTimeout != 3*time.Second {
		t.Fatalf("from env: %+v", c)
	}
	if len(c.APIKeys) != 2 || c.APIKeys[0].Name != "ops" || !c.APIKeys[0].Has(config.ScopeAdmin) || c.APIKeys[1].Has(config.ScopeRead) {
		t.Fatalf("keys from env: %+v", c.APIKeys)
	}
	if c.APIKeys[0].Hash != sha256.Sum256([]byte("0123456789abcdef")) {
		t.Fatal("key hash is not the SHA-256 of the secret")
	}
	if strings.Join(c.WebhookAllowHosts, "|") != "127.0.0.1|sink.local" {
		t.Fatalf("allow hosts: %q", c.WebhookAllowHosts)
	}

	// Flags win over the environment; a repeated --api-key replaces
	// HERALD_API_KEYS as a whole.
	c, err = config.ParseServe([]string{"--addr", "127.0.0.1:0", "--api-key", "ci:abcdefabcdefabcdef:read", "--shutdown-timeout", "1s"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:0" || len(c.APIKeys) != 1 || c.APIKeys[0].Name != "ci" || c.ShutdownTimeout != time.Second {
		t.Fatalf("flags over env: %+v", c)
	}
}

func TestParseServeReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := config.ParseServe([]string{"--addr", "nope", "--log-level", "loud",
		"--api-key", "a:0123456789abcdef:send", "--api-key", "a:0123456789abcdef:read",
		"--api-key", "b:x:send", "--webhook-allow-hosts", "http://x/"}, envOf(nil))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`addr "nope"`, `log-level "loud"`, `name "a" given twice`, `key "b": secret shorter`, `"http://x/" is not a host`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	_, err = config.ParseServe(nil, envOf(map[string]string{"HERALD_SHUTDOWN_TIMEOUT": "soon"}))
	if err == nil || !strings.Contains(err.Error(), "HERALD_SHUTDOWN_TIMEOUT") {
		t.Fatalf("bad env duration: %v", err)
	}
	if _, err := config.ParseServe([]string{"-h"}, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}

func TestParseAPIKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		spec, err string
	}{
		{"ops:0123456789abcdef:send+read+admin", ""},
		{"ops:0123456789abcdef", "NAME:SECRET:SCOPES"},
		{":0123456789abcdef:send", "empty key name"},
		{"ops:0123456789abcdef:write", `unknown scope "write"`},
		{"ops:0123456789abcdef:", `unknown scope ""`},
	}
	for _, c := range cases {
		k, err := config.ParseAPIKey(c.spec)
		if c.err == "" {
			if err != nil || len(k.Scopes) != 3 {
				t.Errorf("%q: %v %+v", c.spec, err, k)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%q: got %v, want %q", c.spec, err, c.err)
		}
	}
}

func TestParseServeDelivery(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"HERALD_SMTP_HOST": "smtp.example.com", "HERALD_SMTP_FROM": "ops@example.com",
		"HERALD_SMTP_PASSWORD": "pw", "HERALD_DELIVER": "true",
	}
	c, err := config.ParseServe([]string{"--deliver=false", "--smtp-port", "2525"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	d := c.Delivery
	if !d.Disabled || d.SMTPHost != "smtp.example.com" || d.SMTPPort != 2525 || d.SMTPPassword != "pw" || d.SMTPTLS != "starttls" || d.Concurrency != 0 {
		t.Fatalf("delivery config = %+v", d)
	}

	if d.EndpointConcurrency != 0 {
		t.Errorf("endpoint concurrency %d by default, want 0 (the dispatcher's default)", d.EndpointConcurrency)
	}
	c, err = config.ParseServe(nil, func(k string) string { return map[string]string{"HERALD_DELIVERY_ENDPOINT_CONCURRENCY": "12"}[k] })
	if err != nil || c.Delivery.EndpointConcurrency != 12 {
		t.Fatalf("HERALD_DELIVERY_ENDPOINT_CONCURRENCY=12: %+v, %v", c.Delivery, err)
	}

	_, err = config.ParseServe([]string{"--smtp-host", "h", "--smtp-tls", "ssl", "--delivery-concurrency", "0", "--delivery-endpoint-concurrency", "-1", "--sms-account-sid", "AC1", "--public-url", "ftp://x"},
		func(k string) string { return map[string]string{"HERALD_DELIVERY_CONCURRENCY": "x"}[k] })
	if err == nil {
		t.Fatal("bad delivery settings accepted")
	}
	for _, want := range []string{"smtp-from", `smtp-tls "ssl"`, "sms-account-sid", `public-url "ftp://x"`, "HERALD_DELIVERY_CONCURRENCY", "delivery-endpoint-concurrency -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
