package email_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const (
	testUser     = "herald"
	testPassword = "s3cret-Pa55word"
)

// certificate is a self-signed certificate for 127.0.0.1 and localhost,
// made once per test binary, and a pool that trusts it.
var certificate = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "herald test relay"},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
})

func trustedTLS() *tls.Config {
	_, pool := certificate()
	return &tls.Config{RootCAs: pool}
}

// relayMode is how the test relay offers TLS.
type relayMode int

const (
	relayStartTLS relayMode = iota // STARTTLS offered, AUTH only after it
	relayImplicit                  // TLS from the first byte
	relayPlain                     // no TLS at all, no AUTH
)

// received is one message the relay accepted.
type received struct {
	from string
	to   []string
	data []byte
	tls  bool   // the session ran over TLS
	user string // who authenticated, "" for nobody
	helo string
}

// relay is a real SMTP server (go-smtp) on an ephemeral loopback port. It
// requires AUTH PLAIN (testUser/testPassword) whenever it runs TLS, and
// answers RCPT according to the recipient's local part:
//
//	greylist@  451 4.7.1      full@  452 4.2.2
//	nobody@    550 5.1.1      busy@  421 4.3.2 at DATA
type relay struct {
	addr string
	port int

	mu       sync.Mutex
	messages []received
	mails    int // MAIL commands seen, accepted or not
}

func startRelay(t *testing.T, mode relayMode) *relay {
	t.Helper()
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{relay: r, tls: isTLS, requireAuth: mode != relayPlain, helo: c.Hostname()}, nil
	}))
	srv.Domain = "relay.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	cert, _ := certificate()
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	switch mode {
	case relayStartTLS:
		srv.TLSConfig = serverTLS
	case relayImplicit:
		ln = tls.NewListener(ln, serverTLS)
	}
	r.addr = ln.Addr().String()
	r.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *relay) received() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.messages...)
}

func (r *relay) mailCommands() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mails
}

type session struct {
	relay       *relay
	tls         bool
	requireAuth bool
	helo        string
	user        string
	from        string
	to          []string
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != testUser || password != testPassword {
			// A careless relay that echoes what it got: the sender must
			// scrub it.
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
				Message: "authentication failed for " + username + " with " + password}
		}
		s.user = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.relay.mu.Lock()
	s.relay.mails++
	s.relay.mu.Unlock()
	if s.requireAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	switch local, _, _ := strings.Cut(to, "@"); local {
	case "greylist":
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "greylisted, try again later"}
	case "full":
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "mailbox full"}
	case "nobody":
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user here"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(s.to) == 1 && strings.HasPrefix(s.to[0], "busy@") {
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "system busy, closing"}
	}
	s.relay.mu.Lock()
	defer s.relay.mu.Unlock()
	s.relay.messages = append(s.relay.messages, received{
		from: s.from, to: append([]string(nil), s.to...), data: data,
		tls: s.tls, user: s.user, helo: s.helo,
	})
	return nil
}

func (s *session) Reset() { s.from, s.to = "", nil }

func (s *session) Logout() error { return nil }
