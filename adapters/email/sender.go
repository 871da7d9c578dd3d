package email

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"herald/adapters/channel"
)

// Sender delivers email through one SMTP relay. It is safe for concurrent
// use: every Send has its own connection.
type Sender struct {
	cfg  Config
	from *mail.Address
	tls  *tls.Config
	now  func() time.Time
	// secrets are scrubbed from every reason and error text.
	secrets []string
}

var _ channel.Sender = (*Sender)(nil)

var (
	errNoStartTLS  = errors.New("relay does not offer STARTTLS; refusing to send in clear")
	errNoAuthPlain = errors.New("relay does not offer AUTH PLAIN")
)

// New returns a Sender for cfg, after filling its defaults and validating it.
func New(cfg Config) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("email config: %w", err)
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = strings.Trim(cfg.Host, "[]")
	}
	if tc.MinVersion == 0 {
		tc.MinVersion = tls.VersionTLS12
	}
	s := &Sender{
		cfg:  cfg,
		from: &mail.Address{Name: cfg.FromName, Address: cfg.From},
		tls:  tc,
		now:  time.Now,
	}
	if cfg.Password != "" {
		plain := "\x00" + cfg.Username + "\x00" + cfg.Password
		s.secrets = []string{
			base64.StdEncoding.EncodeToString([]byte(plain)),
			cfg.Password,
		}
	}
	return s, nil
}

// Send submits m to the relay for m.Address. On success the Result carries
// the message's Message-ID and Confirmed false; on failure the error is a
// *channel.Failure classified as described in the package documentation.
// A failure after the relay accepted the message (during QUIT) is ignored:
// the message is sent, and a retry would duplicate it.
func (s *Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	to, err := mail.ParseAddress(m.Address)
	if err != nil {
		return channel.Result{}, channel.Permanent("invalid email address", err)
	}
	if m.IdempotencyKey == "" {
		return channel.Result{}, channel.Permanent("message has no idempotency key", nil)
	}
	msgID := MessageID(m.IdempotencyKey, s.cfg.MessageIDDomain)
	data, err := compose(m, s.from, to, msgID, s.now())
	if err != nil {
		return channel.Result{}, channel.Permanent("compose message", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.submit(ctx, to.Address, data); err != nil {
		return channel.Result{}, s.classify(ctx, err)
	}
	return channel.Result{ProviderMessageID: msgID}, nil
}

// stageError names the SMTP step that failed, for the failure's reason.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func at(stage string, err error) error {
	if err == nil {
		return nil
	}
	return &stageError{stage: stage, err: err}
}

// submit runs one SMTP session. Every step is bounded by ctx: its deadline
// is the connection's, and cancelling it closes the connection.
func (s *Sender) submit(ctx context.Context, rcpt string, data []byte) error {
	conn, err := s.dial(ctx)
	if err != nil {
		return at("connect", err)
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(d); err != nil {
			return at("connect", err)
		}
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c, err := smtp.NewClient(conn, strings.Trim(s.cfg.Host, "[]"))
	if err != nil {
		return at("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(s.cfg.HeloName); err != nil {
		return at("EHLO", err)
	}
	if s.cfg.TLS == TLSStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return at("STARTTLS", errNoStartTLS)
		}
		if err := c.StartTLS(s.tls); err != nil {
			return at("STARTTLS", err)
		}
	}
	if s.cfg.Username != "" {
		if ok, mechs := c.Extension("AUTH"); !ok || !hasWord(mechs, "PLAIN") {
			return at("AUTH", errNoAuthPlain)
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, strings.Trim(s.cfg.Host, "[]"))); err != nil {
			return at("AUTH", err)
		}
	}
	if err := c.Mail(s.cfg.From); err != nil {
		return at("MAIL", err)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return at("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return at("DATA", err)
	}
	if _, err := w.Write(data); err != nil {
		return at("DATA", err)
	}
	if err := w.Close(); err != nil {
		return at("DATA", err)
	}
	// Accepted: the outcome of QUIT changes nothing.
	_ = c.Quit()
	return nil
}

func (s *Sender) dial(ctx context.Context) (net.Conn, error) {
	addr := net.JoinHostPort(strings.Trim(s.cfg.Host, "[]"), strconv.Itoa(s.cfg.Port))
	nd := &net.Dialer{}
	if s.cfg.TLS == TLSImplicit {
		td := &tls.Dialer{NetDialer: nd, Config: s.tls}
		return td.DialContext(ctx, "tcp", addr)
	}
	return nd.DialContext(ctx, "tcp", addr)
}

func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if strings.EqualFold(w, word) {
			return true
		}
	}
	return false
}

// classify turns a session error into a Failure whose reason and error text
// are free of credentials.
func (s *Sender) classify(ctx context.Context, err error) *channel.Failure {
	stage := "smtp"
	var se *stageError
	if errors.As(err, &se) {
		stage = se.stage
	}
	ctxErr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && ctxErr == nil && !time.Now().Before(d) {
		// The connection's deadline is ctx's, and may fire a moment
		// before ctx itself reports it.
		ctxErr = context.DeadlineExceeded
	}
	if ctxErr != nil {
		reason := "smtp " + stage + ": timed out"
		if errors.Is(ctxErr, context.Canceled) {
			reason = "smtp " + stage + ": cancelled"
		}
		return &channel.Failure{Retryable: true, Reason: reason, Err: ctxErr}
	}

	var reply *textproto.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var f *channel.Failure
	switch {
	case errors.As(err, &reply):
		msg := s.scrub(oneLine(reply.Msg))
		scrubbed := &textproto.Error{Code: reply.Code, Msg: s.scrub(reply.Msg)}
		reason := fmt.Sprintf("smtp %s: %d %s", stage, reply.Code, msg)
		if stage == "AUTH" && reply.Code/100 == 5 {
			reason = fmt.Sprintf("smtp AUTH: credentials rejected: %d %s", reply.Code, msg)
		}
		if reply.Code/100 == 5 {
			f = channel.Permanent(reason, scrubbed)
		} else {
			// 4xx, and anything unexpected where another code was due:
			// the relay may answer better next time.
			f = channel.Retryable(reason, scrubbed)
		}
	case errors.Is(err, errNoStartTLS):
		f = channel.Permanent("smtp "+stage+": "+errNoStartTLS.Error(), nil)
	case errors.Is(err, errNoAuthPlain):
		f = channel.Permanent("smtp "+stage+": "+errNoAuthPlain.Error(), nil)
	case errors.As(err, &certErr), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &invalidCert):
		f = channel.Permanent("smtp "+stage+": relay certificate not trusted", s.scrubErr(err))
	default:
		f = channel.Retryable("smtp "+stage+": connection failed", s.scrubErr(err))
	}
	return f
}

func (s *Sender) scrub(text string) string {
	for _, secret := range s.secrets {
		text = strings.ReplaceAll(text, secret, "[redacted]")
	}
	return text
}

// scrubErr returns err itself when its text holds no secret, so errors.Is
// and errors.As keep working, and a plain error with the scrubbed text
// otherwise.
func (s *Sender) scrubErr(err error) error {
	text := err.Error()
	if clean := s.scrub(text); clean != text {
		return errors.New(clean)
	}
	return err
}
