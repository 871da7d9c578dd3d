package email

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"
)

// TLSMode says how the connection to the relay is protected.
type TLSMode string

// The TLS modes.
const (
	// TLSStartTLS connects in clear and upgrades with STARTTLS before
	// anything else; a relay that does not offer it is refused.
	TLSStartTLS TLSMode = "starttls"
	// TLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	TLSImplicit TLSMode = "implicit"
	// TLSNone sends in clear. Only a loopback relay is accepted, and no
	// credentials: it exists for tests and local mail sinks.
	TLSNone TLSMode = "none"
)

// Config configures a Sender. Zero values take the defaults listed on each
// field.
type Config struct {
	// Host is the relay's host name or IP address. Required.
	Host string
	// Port defaults to 587 for starttls, 465 for implicit and 25 for none.
	Port int
	// TLS defaults to TLSStartTLS.
	TLS TLSMode
	// Username and Password, when set, authenticate with AUTH PLAIN, which
	// is only ever attempted over TLS. Both or neither.
	Username string
	Password string
	// From is the sender's bare address ("alerts@example.com"), used in the
	// envelope and the From header. Required.
	From string
	// FromName is the display name shown with From; may be empty and may be
	// any Unicode text.
	FromName string
	// HeloName is the name this client gives in EHLO. Defaults to
	// "localhost"; set it to the sending host's name in production, some
	// relays score a "localhost" greeting as spam.
	HeloName string
	// TLSConfig is cloned for every connection. Nil means the system roots;
	// ServerName defaults to Host and MinVersion to TLS 1.2. Tests set
	// RootCAs to trust their self-signed certificate.
	TLSConfig *tls.Config
	// Timeout bounds one whole Send: connect, TLS, AUTH, the transaction and
	// QUIT. A shorter ctx deadline wins. Defaults to 30 s.
	Timeout time.Duration
	// MessageIDDomain is the right-hand side of every Message-ID. Defaults
	// to the domain of From.
	MessageIDDomain string
}

func (c *Config) setDefaults() {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.Port == 0 {
		switch c.TLS {
		case TLSImplicit:
			c.Port = 465
		case TLSNone:
			c.Port = 25
		default:
			c.Port = 587
		}
	}
	if c.HeloName == "" {
		c.HeloName = "localhost"
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.MessageIDDomain == "" {
		if i := strings.LastIndexByte(c.From, '@'); i >= 0 {
			c.MessageIDDomain = c.From[i+1:]
		}
	}
}

// Validate reports every problem of c at once. It never quotes Password.
func (c *Config) Validate() error {
	var errs []error
	if c.Host == "" || strings.ContainsAny(c.Host, " /\r\n") {
		errs = append(errs, fmt.Errorf("host %q: want a host name or IP address", c.Host))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: want 1 to 65535", c.Port))
	}
	switch c.TLS {
	case TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !loopbackHost(c.Host) {
			errs = append(errs, fmt.Errorf("tls none: host %q is not loopback; clear text is only for local relays", c.Host))
		}
		if c.Username != "" {
			errs = append(errs, errors.New("tls none: credentials are only sent over TLS"))
		}
	default:
		errs = append(errs, fmt.Errorf("tls %q: want starttls, implicit or none", c.TLS))
	}
	if (c.Username == "") != (c.Password == "") {
		errs = append(errs, errors.New("username and password: give both or neither"))
	}
	if strings.ContainsAny(c.Username, "\x00\r\n") {
		errs = append(errs, errors.New("username: must not contain NUL, CR or LF"))
	}
	if a, err := mail.ParseAddress(c.From); err != nil || a.Name != "" || a.Address != c.From {
		errs = append(errs, fmt.Errorf("from %q: want a bare address like alerts@example.com", c.From))
	}
	if strings.ContainsAny(c.FromName, "\r\n") {
		errs = append(errs, errors.New("from name: must not contain CR or LF"))
	}
	if c.HeloName == "" || strings.ContainsAny(c.HeloName, " \t\r\n") {
		errs = append(errs, fmt.Errorf("helo name %q: want a host name", c.HeloName))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s: must not be negative", c.Timeout))
	}
	if !validDomain(c.MessageIDDomain) {
		errs = append(errs, fmt.Errorf("message id domain %q: want a domain like example.com", c.MessageIDDomain))
	}
	return errors.Join(errs...)
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// validDomain accepts dot-separated labels of letters, digits and hyphens:
// what may follow the "@" of a Message-ID without quoting.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
