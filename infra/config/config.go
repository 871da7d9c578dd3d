package config

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"
)

// Scope is a permission an API key carries.
type Scope string

// The scopes a key may have.
const (
	ScopeSend  Scope = "send"
	ScopeRead  Scope = "read"
	ScopeAdmin Scope = "admin"
)

// APIKey is a key the server accepts. Only the SHA-256 of the secret is kept.
type APIKey struct {
	Name   string
	Hash   [sha256.Size]byte
	Scopes []Scope
}

// Has reports whether the key carries scope s.
func (k APIKey) Has(s Scope) bool {
	for _, have := range k.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// ParseAPIKey parses NAME:SECRET:SCOPES, SCOPES being scope names joined by
// '+' (send+read+admin). The secret is hashed at once and not kept.
func ParseAPIKey(spec string) (APIKey, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 3 {
		return APIKey{}, errors.New("want NAME:SECRET:SCOPES")
	}
	name, secret, scopes := parts[0], parts[1], parts[2]
	if name == "" {
		return APIKey{}, errors.New("empty key name")
	}
	if len(secret) < 16 {
		return APIKey{}, fmt.Errorf("key %q: secret shorter than 16 characters", name)
	}
	k := APIKey{Name: name, Hash: sha256.Sum256([]byte(secret))}
	for _, s := range strings.Split(scopes, "+") {
		switch sc := Scope(s); sc {
		case ScopeSend, ScopeRead, ScopeAdmin:
			k.Scopes = append(k.Scopes, sc)
		default:
			return APIKey{}, fmt.Errorf("key %q: unknown scope %q (want send, read, admin)", name, s)
		}
	}
	return k, nil
}

// Serve is the configuration of `herald serve`.
type Serve struct {
	Addr              string        // HERALD_ADDR, --addr
	DataDir           string        // HERALD_DATA, --data
	APIKeys           []APIKey      // HERALD_API_KEYS, --api-key (repeatable)
	WebhookAllowHosts []string      // HERALD_WEBHOOK_ALLOW_HOSTS, --webhook-allow-hosts
	LogLevel          string        // HERALD_LOG_LEVEL, --log-level
	ShutdownTimeout   time.Duration // HERALD_SHUTDOWN_TIMEOUT, --shutdown-timeout

	keySpecs []string
}

func (c *Serve) setDefaults() {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
}

// Validate reports every problem of c at once.
func (c *Serve) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		errs = append(errs, fmt.Errorf("addr %q: %w", c.Addr, err))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.ShutdownTimeout < 0 {
		errs = append(errs, fmt.Errorf("shutdown-timeout %s: must not be negative", c.ShutdownTimeout))
	}
	names := map[string]bool{}
	for _, spec := range c.keySpecs {
		k, err := ParseAPIKey(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("api-key: %w", err))
			continue
		}
		if names[k.Name] {
			errs = append(errs, fmt.Errorf("api-key: name %q given twice", k.Name))
			continue
		}
		names[k.Name] = true
		c.APIKeys = append(c.APIKeys, k)
	}
	c.keySpecs = nil
	for _, h := range c.WebhookAllowHosts {
		if h == "" || strings.ContainsAny(h, "/ ") {
			errs = append(errs, fmt.Errorf("webhook-allow-hosts: %q is not a host name or address", h))
		}
	}
	return errors.Join(errs...)
}

// ParseServe reads the serve settings from args, with getenv supplying the
// HERALD_* defaults that flags override. Flag errors and validation errors
// are returned together; -h gives flag.ErrHelp.
func ParseServe(args []string, getenv func(string) string) (Serve, error) {
	var c Serve
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", getenv("HERALD_ADDR"), "listen address for the API and dashboard (HERALD_ADDR)")
	fs.StringVar(&c.DataDir, "data", getenv("HERALD_DATA"), "folder for the embedded event log and views (HERALD_DATA)")
	fs.StringVar(&c.LogLevel, "log-level", getenv("HERALD_LOG_LEVEL"), "debug, info, warn or error (HERALD_LOG_LEVEL)")
	fs.Func("api-key", "NAME:SECRET:SCOPES, repeatable; SCOPES like send+read+admin (HERALD_API_KEYS, comma-separated)", func(v string) error {
		c.keySpecs = append(c.keySpecs, v)
		return nil
	})
	fs.Func("webhook-allow-hosts", "comma-separated hosts that outbound webhooks may reach even when private or loopback (HERALD_WEBHOOK_ALLOW_HOSTS)", func(v string) error {
		c.WebhookAllowHosts = append(c.WebhookAllowHosts, splitList(v)...)
		return nil
	})
	timeout := getenv("HERALD_SHUTDOWN_TIMEOUT")
	var envErr error
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil {
			envErr = fmt.Errorf("HERALD_SHUTDOWN_TIMEOUT %q: %w", timeout, err)
		}
		c.ShutdownTimeout = d
	}
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "how long in-flight work may take to finish on SIGTERM (HERALD_SHUTDOWN_TIMEOUT)")
	if err := fs.Parse(args); err != nil {
		return Serve{}, err
	}
	if fs.NArg() > 0 {
		return Serve{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if len(c.keySpecs) == 0 {
		c.keySpecs = splitList(getenv("HERALD_API_KEYS"))
	}
	if len(c.WebhookAllowHosts) == 0 {
		c.WebhookAllowHosts = splitList(getenv("HERALD_WEBHOOK_ALLOW_HOSTS"))
	}
	c.setDefaults()
	if err := errors.Join(envErr, c.Validate()); err != nil {
		return Serve{}, err
	}
	return c, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
