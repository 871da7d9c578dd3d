package email_test

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"herald/adapters/channel"
	"herald/adapters/email"
	"herald/domain"
)

func newSender(t *testing.T, cfg email.Config) *email.Sender {
	t.Helper()
	s, err := email.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func authConfig(r *relay, mode email.TLSMode) email.Config {
	return email.Config{
		Host:      "127.0.0.1",
		Port:      r.port,
		TLS:       mode,
		Username:  testUser,
		Password:  testPassword,
		From:      "alerts@herald.test",
		FromName:  "Herald Ålerts",
		HeloName:  "sender.herald.test",
		TLSConfig: trustedTLS(),
		Timeout:   10 * time.Second,
	}
}

func message(n domain.NotificationID, d domain.DeliveryID, to string) channel.Message {
	return channel.Message{
		NotificationID: n,
		DeliveryID:     d,
		IdempotencyKey: n.DeliveryKey(d),
		Channel:        domain.ChannelEmail,
		Address:        to,
		Subject:        "Ihr Code: 123456 — gültig für 5 Minuten, bitte nicht weitergeben, niemals",
		Body:           "Grüße, Zoë!\nIhr Code lautet 123456 — 日本語のテキスト.\n",
		HTML:           "<p>Grüße, <b>Zoë</b>! Code <code>123456</code> — 日本語</p>",
		Attempt:        1,
	}
}

// parsed is a received message taken apart the way a mail reader would.
type parsed struct {
	header  mail.Header
	subject string
	from    *mail.Address
	// parts maps media type to decoded text.
	parts     map[string]string
	mediaType string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("ReadMessage: %v\n%s", err, data)
	}
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("decode subject %q: %v", msg.Header.Get("Subject"), err)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 {
		t.Fatalf("From %q: %v", msg.Header.Get("From"), err)
	}
	p := parsed{header: msg.Header, subject: subject, from: from[0], parts: map[string]string{}}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	p.mediaType = mediaType
	if !strings.HasPrefix(mediaType, "multipart/") {
		p.parts[mediaType] = decodePart(t, params, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("next part: %v", err)
		}
		pt, pparams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatalf("part Content-Type: %v", err)
		}
		p.parts[pt] = decodePart(t, pparams, part.Header.Get("Content-Transfer-Encoding"), part)
	}
	return p
}

func decodePart(t *testing.T, params map[string]string, cte string, r io.Reader) string {
	t.Helper()
	if !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("charset = %q, want utf-8", params["charset"])
	}
	if !strings.EqualFold(cte, "quoted-printable") {
		t.Errorf("Content-Transfer-Encoding = %q, want quoted-printable", cte)
	}
	b, err := io.ReadAll(quotedprintable.NewReader(r))
	if err != nil {
		t.Fatalf("decode quoted-printable: %v", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func TestSendOverStartTLSBuildsMIMEAndStableMessageID(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayStartTLS)
	s := newSender(t, authConfig(r, email.TLSStartTLS))
	ctx := context.Background()

	first := message("n-1", "email-1", "ada@example.com")
	retry := first
	retry.Attempt = 2
	resend := message("n-1", "email-2", "ada@example.com")

	before := time.Now().Add(-time.Second)
	var results []channel.Result
	for _, m := range []channel.Message{first, retry, resend} {
		res, err := s.Send(ctx, m)
		if err != nil {
			t.Fatalf("Send(%s attempt %d): %v", m.DeliveryID, m.Attempt, err)
		}
		if res.Confirmed {
			t.Errorf("Send(%s): Confirmed = true; email is only confirmed by a receipt", m.DeliveryID)
		}
		results = append(results, res)
	}

	got := r.received()
	if len(got) != 3 {
		t.Fatalf("relay received %d messages, want 3", len(got))
	}
	const wantID = "<n-1/email-1@herald.test>"
	for i, want := range []string{wantID, wantID, "<n-1/email-2@herald.test>"} {
		p := parse(t, got[i].data)
		if id := p.header.Get("Message-ID"); id != want {
			t.Errorf("message %d: Message-ID = %q, want %q", i, id, want)
		}
		if results[i].ProviderMessageID != want {
			t.Errorf("message %d: ProviderMessageID = %q, want %q", i, results[i].ProviderMessageID, want)
		}
	}

	m := got[0]
	if !m.tls {
		t.Error("session did not run over TLS: STARTTLS was not negotiated")
	}
	if m.user != testUser {
		t.Errorf("authenticated user = %q, want %q", m.user, testUser)
	}
	if m.helo != "sender.herald.test" {
		t.Errorf("EHLO name = %q, want sender.herald.test", m.helo)
	}
	if m.from != "alerts@herald.test" || len(m.to) != 1 || m.to[0] != "ada@example.com" {
		t.Errorf("envelope = %q -> %q, want alerts@herald.test -> [ada@example.com]", m.from, m.to)
	}

	p := parse(t, m.data)
	if p.subject != first.Subject {
		t.Errorf("Subject = %q, want %q", p.subject, first.Subject)
	}
	if p.from.Name != "Herald Ålerts" || p.from.Address != "alerts@herald.test" {
		t.Errorf("From = %+v", p.from)
	}
	if to := p.header.Get("To"); !strings.Contains(to, "ada@example.com") {
		t.Errorf("To = %q", to)
	}
	if v := p.header.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	date, err := p.header.Date()
	if err != nil || date.Before(before) || date.After(time.Now().Add(time.Second)) {
		t.Errorf("Date = %v (%v), want about now", date, err)
	}
	if v := p.header.Get("X-Herald-Notification"); v != "n-1" {
		t.Errorf("X-Herald-Notification = %q", v)
	}
	if v := p.header.Get("X-Herald-Delivery"); v != "email-1" {
		t.Errorf("X-Herald-Delivery = %q", v)
	}
	if p.mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, want multipart/alternative", p.mediaType)
	}
	if p.parts["text/plain"] != first.Body {
		t.Errorf("text part = %q, want %q", p.parts["text/plain"], first.Body)
	}
	if p.parts["text/html"] != first.HTML {
		t.Errorf("html part = %q, want %q", p.parts["text/html"], first.HTML)
	}
	for i, line := range strings.Split(string(m.data), "\r\n") {
		if len(line) > 998 {
			t.Errorf("line %d is %d octets long", i, len(line))
		}
		for _, c := range []byte(line) {
			if c > 127 {
				t.Fatalf("line %d has a non-ASCII octet: %q", i, line)
			}
		}
	}
}

func TestSendBodyShapes(t *testing.T) {
	t.Parallel()
	// TLS "none" against a loopback relay without AUTH, which is what the
	// mode exists for.
	r := startRelay(t, relayPlain)
	s := newSender(t, email.Config{Host: "127.0.0.1", Port: r.port, TLS: email.TLSNone, From: "alerts@herald.test"})
	cases := []struct {
		name, body, html string
		wantType         string
		wantParts        map[string]string
	}{
		{
			name: "text only", body: "Straße\nZeile zwei",
			wantType:  "text/plain",
			wantParts: map[string]string{"text/plain": "Straße\nZeile zwei"},
		},
		{
			name: "html only", html: "<p>café</p>",
			wantType:  "text/html",
			wantParts: map[string]string{"text/html": "<p>café</p>"},
		},
		{
			name: "both", body: "naïve", html: "<i>naïve</i>",
			wantType:  "multipart/alternative",
			wantParts: map[string]string{"text/plain": "naïve", "text/html": "<i>naïve</i>"},
		},
		{
			name: "long line of text", body: strings.Repeat("ü", 500),
			wantType:  "text/plain",
			wantParts: map[string]string{"text/plain": strings.Repeat("ü", 500)},
		},
	}
	for i, tc := range cases {
		m := message("n-shapes", domain.NewDeliveryID(domain.ChannelEmail, i+1), "bob@example.com")
		m.Subject, m.Body, m.HTML = "plain ascii subject", tc.body, tc.html
		if _, err := s.Send(context.Background(), m); err != nil {
			t.Fatalf("%s: Send: %v", tc.name, err)
		}
		got := r.received()
		if len(got) != i+1 {
			t.Fatalf("%s: relay has %d messages, want %d", tc.name, len(got), i+1)
		}
		if got[i].tls {
			t.Errorf("%s: mode none ran TLS", tc.name)
		}
		p := parse(t, got[i].data)
		if p.subject != "plain ascii subject" {
			t.Errorf("%s: Subject = %q", tc.name, p.subject)
		}
		if p.mediaType != tc.wantType {
			t.Errorf("%s: Content-Type = %q, want %q", tc.name, p.mediaType, tc.wantType)
		}
		if len(p.parts) != len(tc.wantParts) {
			t.Errorf("%s: parts = %v, want %v", tc.name, p.parts, tc.wantParts)
		}
		for typ, want := range tc.wantParts {
			// A single-part body gains the line end every SMTP message
			// ends with; the text itself must be intact.
			if strings.TrimSuffix(p.parts[typ], "\n") != want {
				t.Errorf("%s: %s part = %q, want %q", tc.name, typ, p.parts[typ], want)
			}
		}
	}
}

func TestSendImplicitTLS(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayImplicit)
	s := newSender(t, authConfig(r, email.TLSImplicit))
	m := message("n-2", "email-1", "cy@example.com")
	res, err := s.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("relay received %d messages, want 1", len(got))
	}
	if !got[0].tls || got[0].user != testUser {
		t.Errorf("session tls=%v user=%q, want TLS and %q", got[0].tls, got[0].user, testUser)
	}
	if id := parse(t, got[0].data).header.Get("Message-ID"); id != res.ProviderMessageID {
		t.Errorf("Message-ID %q != ProviderMessageID %q", id, res.ProviderMessageID)
	}
}

func TestSendFailuresAreClassified(t *testing.T) {
	t.Parallel()
	tlsRelay := startRelay(t, relayStartTLS)
	plainRelay := startRelay(t, relayPlain)
	const wrongPassword = "wrong-Pa55word-xyz"

	cases := []struct {
		name      string
		relay     *relay
		config    func(*email.Config)
		to        string
		retryable bool
		reason    string // substring of the failure's reason
		noMail    bool   // the relay must not have seen MAIL
	}{
		{name: "451 greylisted", relay: tlsRelay, to: "greylist@example.com", retryable: true, reason: "451"},
		{name: "452 mailbox full", relay: tlsRelay, to: "full@example.com", retryable: true, reason: "452"},
		{name: "421 at DATA", relay: tlsRelay, to: "busy@example.com", retryable: true, reason: "421"},
		{name: "550 unknown mailbox", relay: tlsRelay, to: "nobody@example.com", reason: "550"},
		{
			name: "wrong password", relay: tlsRelay, to: "ada@example.com", reason: "535", noMail: true,
			config: func(c *email.Config) { c.Password = wrongPassword },
		},
		{
			name: "relay without STARTTLS", relay: plainRelay, to: "ada@example.com", reason: "STARTTLS", noMail: true,
		},
		{
			name: "untrusted certificate", relay: tlsRelay, to: "ada@example.com", reason: "certificate", noMail: true,
			config: func(c *email.Config) { c.TLSConfig = nil },
		},
		{name: "unparsable address", relay: tlsRelay, to: "not an address", reason: "address", noMail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: noMail compares the shared relays' MAIL counts.
			cfg := authConfig(tc.relay, email.TLSStartTLS)
			if tc.config != nil {
				tc.config(&cfg)
			}
			s := newSender(t, cfg)
			mailsBefore := tc.relay.mailCommands()
			_, err := s.Send(context.Background(), message("n-f", "email-1", tc.to))
			f := failure(t, err)
			if f.Retryable != tc.retryable {
				t.Errorf("Retryable = %v, want %v (reason %q)", f.Retryable, tc.retryable, f.Reason)
			}
			if !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to mention %q", f.Reason, tc.reason)
			}
			if tc.noMail && tc.relay.mailCommands() != mailsBefore {
				t.Errorf("relay saw a MAIL command; the sender should have stopped before")
			}
			for _, secret := range []string{testPassword, wrongPassword} {
				if strings.Contains(f.Reason, secret) || strings.Contains(err.Error(), secret) {
					t.Errorf("failure text reveals a password: reason %q, error %q", f.Reason, err)
				}
			}
		})
	}
}

func TestSendConnectionProblemsAreRetryable(t *testing.T) {
	t.Parallel()
	silent := silentListener(t)
	closedPort := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return port
	}()

	cases := []struct {
		name         string
		port         int
		timeout      time.Duration
		ctxTimeout   time.Duration
		wantDeadline bool
	}{
		{name: "connection refused", port: closedPort, timeout: 5 * time.Second},
		{name: "ctx deadline on a silent relay", port: silent, timeout: time.Minute, ctxTimeout: 200 * time.Millisecond, wantDeadline: true},
		{name: "config timeout on a silent relay", port: silent, timeout: 200 * time.Millisecond, wantDeadline: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSender(t, email.Config{
				Host: "127.0.0.1", Port: tc.port, From: "alerts@herald.test",
				Username: testUser, Password: testPassword,
				TLSConfig: trustedTLS(), Timeout: tc.timeout,
			})
			ctx := context.Background()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			_, err := s.Send(ctx, message("n-c", "email-1", "ada@example.com"))
			f := failure(t, err)
			if !f.Retryable {
				t.Errorf("Retryable = false, want true (reason %q)", f.Reason)
			}
			if tc.wantDeadline && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

// silentListener accepts connections and never says a word: a relay that
// hangs before its greeting.
func silentListener(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			close(done)
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func failure(t *testing.T, err error) *channel.Failure {
	t.Helper()
	if err == nil {
		t.Fatal("Send succeeded, want a failure")
	}
	var f *channel.Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %T %v is not a *channel.Failure", err, err)
	}
	return f
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() email.Config {
		return email.Config{Host: "smtp.example.com", From: "alerts@example.com", Username: "u", Password: "p4ss"}
	}
	cases := []struct {
		name   string
		change func(*email.Config)
		errs   []string // substrings the error must contain; none means valid
	}{
		{name: "defaults are valid", change: func(*email.Config) {}},
		{name: "implicit", change: func(c *email.Config) { c.TLS = email.TLSImplicit }},
		{name: "none on loopback", change: func(c *email.Config) {
			c.TLS, c.Host, c.Username, c.Password = email.TLSNone, "localhost", "", ""
		}},
		{name: "no host", change: func(c *email.Config) { c.Host = "" }, errs: []string{"host"}},
		{name: "bad mode", change: func(c *email.Config) { c.TLS = "ssl" }, errs: []string{`tls "ssl"`}},
		{name: "clear text to a remote relay with credentials", change: func(c *email.Config) { c.TLS = email.TLSNone },
			errs: []string{"not loopback", "credentials are only sent over TLS"}},
		{name: "password without user", change: func(c *email.Config) { c.Username = "" }, errs: []string{"both or neither"}},
		{name: "from with a name", change: func(c *email.Config) { c.From = "Alerts <alerts@example.com>" }, errs: []string{"from"}},
		{name: "bad port and timeout", change: func(c *email.Config) { c.Port, c.Timeout = 70000, -time.Second },
			errs: []string{"port 70000", "timeout"}},
		{name: "bad message id domain", change: func(c *email.Config) { c.MessageIDDomain = "ex ample.com" }, errs: []string{"message id domain"}},
		{name: "header injection in name", change: func(c *email.Config) { c.FromName = "x\r\nBcc: y@z" }, errs: []string{"from name"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.change(&cfg)
			_, err := email.New(cfg)
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted %+v", cfg)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), cfg.Password) && cfg.Password != "" {
				t.Errorf("error reveals the password: %v", err)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	t.Parallel()
	cases := []struct{ key, domain, want string }{
		{"n-1/email-1", "herald.test", "<n-1/email-1@herald.test>"},
		{"0190a1b2-c3d4/email-2", "mail.example.com", "<0190a1b2-c3d4/email-2@mail.example.com>"},
		{"a b.c=d<e>", "x.test", "<a=20b=2Ec=3Dd=3Ce=3E@x.test>"},
	}
	for _, tc := range cases {
		got := email.MessageID(tc.key, tc.domain)
		if got != tc.want {
			t.Errorf("MessageID(%q, %q) = %q, want %q", tc.key, tc.domain, got, tc.want)
		}
		// A msg-id's inside has the syntax of a dot-atom addr-spec.
		if a, err := mail.ParseAddress(strings.Trim(got, "<>")); err != nil || a.Address != strings.Trim(got, "<>") {
			t.Errorf("MessageID(%q) = %q is not a valid msg-id: %v", tc.key, got, err)
		}
	}
}
