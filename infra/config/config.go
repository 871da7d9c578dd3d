package config

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
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
	// EventStore and Views choose the engines: "sqlite:PATH" (default,
	// under DataDir) or "esdb://host:2113?tls=false"; "sqlite:PATH" or
	// "cassandra://host1,host2/keyspace".
	EventStore string // HERALD_EVENTSTORE, --eventstore
	Views      string // HERALD_VIEWS, --views
	// Migrate creates or updates the view store's schema at start
	// (Cassandra; SQLite always does).
	Migrate  bool // HERALD_MIGRATE, --migrate
	Delivery Delivery

	keySpecs []string
}

// Delivery configures the dispatcher and the providers' credentials. A
// channel whose provider is not configured keeps its deliveries planned
// (they wait, durably) until a process that has it runs. Credentials are
// only ever held here and in the adapters: never in events, logs or
// answers.
type Delivery struct {
	Disabled    bool // HERALD_DELIVER=false, --deliver=false: this process does not deliver
	Concurrency int  // HERALD_DELIVERY_CONCURRENCY, --delivery-concurrency: attempts at once per channel (0: each channel's default)
	// HERALD_DELIVERY_ENDPOINT_CONCURRENCY, --delivery-endpoint-concurrency:
	// attempts at once to one webhook endpoint, chat robot or push
	// subscription (0: an eighth of its channel's)
	EndpointConcurrency int
	WebhookSecret       string // HERALD_WEBHOOK_SECRET, --webhook-secret: signs outbound webhooks
	SMTPHost            string // HERALD_SMTP_HOST, --smtp-host: enables email
	SMTPPort            int    // HERALD_SMTP_PORT, --smtp-port
	SMTPTLS             string // HERALD_SMTP_TLS, --smtp-tls: starttls, implicit or none
	SMTPUser            string // HERALD_SMTP_USER, --smtp-user
	SMTPPassword        string // HERALD_SMTP_PASSWORD (environment only: flags show in ps)
	SMTPFrom            string // HERALD_SMTP_FROM, --smtp-from
	SMSBaseURL          string // HERALD_SMS_BASE_URL, --sms-base-url: a Twilio-compatible API
	SMSAccountSID       string // HERALD_SMS_ACCOUNT_SID, --sms-account-sid: enables SMS
	SMSAuthToken        string // HERALD_SMS_AUTH_TOKEN (environment only)
	SMSFrom             string // HERALD_SMS_FROM, --sms-from
	PublicURL           string // HERALD_PUBLIC_URL, --public-url: this server as providers reach it (receipt callbacks)
	VAPIDSubject        string // HERALD_VAPID_SUBJECT, --vapid-subject: mailto: or https: contact for web push
	// Retries of retryable failures: exponential backoff from RetryInitial
	// up to RetryMax per wait, RetryAttempts attempts in all.
	RetryInitial  time.Duration // HERALD_RETRY_INITIAL, --retry-initial (default 1s)
	RetryMax      time.Duration // HERALD_RETRY_MAX, --retry-max (default 1h)
	RetryAttempts int           // HERALD_RETRY_ATTEMPTS, --retry-attempts (default 40; throttled attempts do not count)
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
	if c.EventStore == "" {
		c.EventStore = "sqlite:" + filepath.Join(c.DataDir, "events.db")
	}
	if c.Views == "" {
		c.Views = "sqlite:" + filepath.Join(c.DataDir, "views.db")
	}
	if c.Delivery.SMTPTLS == "" {
		c.Delivery.SMTPTLS = "starttls"
	}
	if c.Delivery.RetryInitial == 0 {
		c.Delivery.RetryInitial = time.Second
	}
	if c.Delivery.RetryMax == 0 {
		c.Delivery.RetryMax = time.Hour
	}
	if c.Delivery.RetryAttempts == 0 {
		c.Delivery.RetryAttempts = 40
	}
	if c.Delivery.VAPIDSubject == "" {
		c.Delivery.VAPIDSubject = "mailto:herald@localhost"
	}
}

func (d Delivery) validate() []error {
	var errs []error
	if d.Concurrency < 0 || d.Concurrency > 4096 {
		errs = append(errs, fmt.Errorf("delivery-concurrency %d: want 1..4096, or 0 for each channel's default", d.Concurrency))
	}
	if d.EndpointConcurrency < 0 || d.EndpointConcurrency > 4096 {
		errs = append(errs, fmt.Errorf("delivery-endpoint-concurrency %d: want 1..4096, or 0 for an eighth of the channel's", d.EndpointConcurrency))
	}
	switch d.SMTPTLS {
	case "starttls", "implicit", "none":
	default:
		errs = append(errs, fmt.Errorf("smtp-tls %q: want starttls, implicit or none", d.SMTPTLS))
	}
	if d.RetryInitial < 0 || d.RetryMax < d.RetryInitial || d.RetryAttempts < 0 {
		errs = append(errs, fmt.Errorf("retry-initial %s, retry-max %s, retry-attempts %d: want 0 < initial <= max and attempts >= 1", d.RetryInitial, d.RetryMax, d.RetryAttempts))
	}
	if d.SMTPPort < 0 || d.SMTPPort > 65535 {
		errs = append(errs, fmt.Errorf("smtp-port %d: want 1..65535", d.SMTPPort))
	}
	if d.SMTPHost != "" && d.SMTPFrom == "" {
		errs = append(errs, errors.New("smtp-from: required when smtp-host is set"))
	}
	if d.SMSAccountSID != "" && (d.SMSAuthToken == "" || d.SMSFrom == "") {
		errs = append(errs, errors.New("sms-account-sid: needs HERALD_SMS_AUTH_TOKEN and sms-from"))
	}
	for name, u := range map[string]string{"sms-base-url": d.SMSBaseURL, "public-url": d.PublicURL} {
		if u == "" {
			continue
		}
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			errs = append(errs, fmt.Errorf("%s %q: want an http(s) URL", name, u))
		}
	}
	return errs
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
	errs = append(errs, c.Delivery.validate()...)
	if p, ok := strings.CutPrefix(c.EventStore, "sqlite:"); (!ok || p == "") && !strings.HasPrefix(c.EventStore, "esdb://") && !strings.HasPrefix(c.EventStore, "esdb+discover://") {
		errs = append(errs, fmt.Errorf("eventstore %q: want sqlite:PATH or esdb://host:port?tls=false", c.EventStore))
	}
	if p, ok := strings.CutPrefix(c.Views, "sqlite:"); !ok || p == "" {
		if _, _, err := ParseCassandraURL(c.Views); err != nil {
			errs = append(errs, fmt.Errorf("views %q: want sqlite:PATH or cassandra://host1,host2/keyspace", c.Views))
		}
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
	fs.StringVar(&c.EventStore, "eventstore", getenv("HERALD_EVENTSTORE"), "event log: sqlite:PATH or esdb://host:2113?tls=false (HERALD_EVENTSTORE; default sqlite:DATA/events.db)")
	fs.StringVar(&c.Views, "views", getenv("HERALD_VIEWS"), "view store: sqlite:PATH or cassandra://host1,host2/keyspace (HERALD_VIEWS; default sqlite:DATA/views.db)")
	fs.BoolVar(&c.Migrate, "migrate", getenv("HERALD_MIGRATE") == "true", "create or update the view store's schema at start (HERALD_MIGRATE)")
	finishDelivery, err := deliveryFlags(fs, &c.Delivery, getenv)
	envErr = errors.Join(envErr, err)
	if err := fs.Parse(args); err != nil {
		return Serve{}, err
	}
	finishDelivery()
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

// deliveryFlags declares the delivery flags, defaulted from the
// environment; secrets are read from the environment only. finish must be
// called after parsing.
func deliveryFlags(fs *flag.FlagSet, d *Delivery, getenv func(string) string) (finish func(), err error) {
	var errs []error
	envInt := func(name string) int {
		v := getenv(name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: not a number", name, v))
		}
		return n
	}
	envDuration := func(name string) time.Duration {
		v := getenv(name)
		if v == "" {
			return 0
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, v, err))
		}
		return d
	}
	deliver := true
	if v := getenv("HERALD_DELIVER"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HERALD_DELIVER %q: want true or false", v))
		}
		deliver = b
	}
	fs.Func("deliver", "run the dispatcher in this process (HERALD_DELIVER, default true)", func(v string) error {
		b, err := strconv.ParseBool(v)
		deliver = b
		return err
	})
	fs.IntVar(&d.Concurrency, "delivery-concurrency", envInt("HERALD_DELIVERY_CONCURRENCY"), "attempts at once per channel (HERALD_DELIVERY_CONCURRENCY; default 256 for webhook and in-app, 64 for the channels that send through one provider)")
	fs.IntVar(&d.EndpointConcurrency, "delivery-endpoint-concurrency", envInt("HERALD_DELIVERY_ENDPOINT_CONCURRENCY"), "attempts at once to one webhook endpoint, Slack/DingTalk/WeCom robot or push subscription, so that one that hangs holds only that many (HERALD_DELIVERY_ENDPOINT_CONCURRENCY; default an eighth of the channel's concurrency)")
	fs.StringVar(&d.WebhookSecret, "webhook-secret", getenv("HERALD_WEBHOOK_SECRET"), "Standard Webhooks signing secret, whsec_... (HERALD_WEBHOOK_SECRET)")
	fs.StringVar(&d.SMTPHost, "smtp-host", getenv("HERALD_SMTP_HOST"), "SMTP relay host; enables email (HERALD_SMTP_HOST)")
	fs.IntVar(&d.SMTPPort, "smtp-port", envInt("HERALD_SMTP_PORT"), "SMTP relay port (HERALD_SMTP_PORT)")
	fs.StringVar(&d.SMTPTLS, "smtp-tls", getenv("HERALD_SMTP_TLS"), "starttls, implicit or none (HERALD_SMTP_TLS)")
	fs.StringVar(&d.SMTPUser, "smtp-user", getenv("HERALD_SMTP_USER"), "SMTP user; the password comes from HERALD_SMTP_PASSWORD (HERALD_SMTP_USER)")
	fs.StringVar(&d.SMTPFrom, "smtp-from", getenv("HERALD_SMTP_FROM"), "sender address (HERALD_SMTP_FROM)")
	fs.StringVar(&d.SMSBaseURL, "sms-base-url", getenv("HERALD_SMS_BASE_URL"), "Twilio-compatible API origin (HERALD_SMS_BASE_URL)")
	fs.StringVar(&d.SMSAccountSID, "sms-account-sid", getenv("HERALD_SMS_ACCOUNT_SID"), "SMS account; the token comes from HERALD_SMS_AUTH_TOKEN; enables SMS (HERALD_SMS_ACCOUNT_SID)")
	fs.StringVar(&d.SMSFrom, "sms-from", getenv("HERALD_SMS_FROM"), "sending number or sender id (HERALD_SMS_FROM)")
	fs.StringVar(&d.PublicURL, "public-url", getenv("HERALD_PUBLIC_URL"), "this server's URL as providers reach it, for receipts (HERALD_PUBLIC_URL)")
	fs.StringVar(&d.VAPIDSubject, "vapid-subject", getenv("HERALD_VAPID_SUBJECT"), "web push contact, mailto: or https: (HERALD_VAPID_SUBJECT)")
	fs.DurationVar(&d.RetryInitial, "retry-initial", envDuration("HERALD_RETRY_INITIAL"), "first retry delay (HERALD_RETRY_INITIAL, default 1s)")
	fs.DurationVar(&d.RetryMax, "retry-max", envDuration("HERALD_RETRY_MAX"), "longest retry delay (HERALD_RETRY_MAX, default 1h)")
	fs.IntVar(&d.RetryAttempts, "retry-attempts", envInt("HERALD_RETRY_ATTEMPTS"), "attempts per delivery, the first included, those the provider throttled not counted (HERALD_RETRY_ATTEMPTS, default 40)")
	d.SMTPPassword = getenv("HERALD_SMTP_PASSWORD")
	d.SMSAuthToken = getenv("HERALD_SMS_AUTH_TOKEN")
	return func() { d.Disabled = !deliver }, errors.Join(errs...)
}

// ParseCassandraURL reads "cassandra://host1[:port],host2/keyspace".
func ParseCassandraURL(s string) (hosts []string, keyspace string, err error) {
	rest, ok := strings.CutPrefix(s, "cassandra://")
	if !ok {
		return nil, "", errors.New("not a cassandra:// URL")
	}
	hostPart, keyspace, ok := strings.Cut(rest, "/")
	hosts = splitList(hostPart)
	if !ok || keyspace == "" || len(hosts) == 0 {
		return nil, "", errors.New("want cassandra://host1,host2/keyspace")
	}
	return hosts, keyspace, nil
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
