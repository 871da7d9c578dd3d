package email

import (
	"bytes"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"

	"herald/adapters/channel"
)

// MessageID returns the Message-ID header value, angle brackets included,
// that every attempt of the delivery with idempotency key key carries when
// sent with domain as Config.MessageIDDomain. Receipts and bounces are
// matched against it.
func MessageID(key, domain string) string {
	var b strings.Builder
	b.Grow(len(key) + len(domain) + 3)
	b.WriteByte('<')
	for i := 0; i < len(key); i++ {
		c := key[i]
		if atext(c) && c != '=' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	b.WriteByte('@')
	b.WriteString(domain)
	b.WriteByte('>')
	return b.String()
}

// atext reports whether c may appear unquoted in the left part of a
// Message-ID (RFC 5322 atext). Dots are left out on purpose: they may not
// lead, trail or repeat, and escaping them all is simpler than checking.
func atext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// compose renders m as an RFC 5322 message with CRLF line ends.
func compose(m channel.Message, from, to *mail.Address, msgID string, date time.Time) ([]byte, error) {
	var head, body bytes.Buffer
	header := func(name, value string) {
		head.WriteString(fold(name, value))
	}
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", oneLine(m.Subject)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", msgID)
	header("MIME-Version", "1.0")
	// Automatic mail: RFC 3834 asks auto-responders not to answer it.
	header("Auto-Submitted", "auto-generated")
	header("X-Herald-Notification", headerToken(string(m.NotificationID)))
	header("X-Herald-Delivery", headerToken(string(m.DeliveryID)))

	switch {
	case m.HTML != "" && m.Body != "":
		mw := multipart.NewWriter(&body)
		header("Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
		for _, p := range []struct{ mediaType, text string }{
			{"text/plain", m.Body},
			{"text/html", m.HTML},
		} {
			w, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {p.mediaType + "; charset=utf-8"},
				"Content-Transfer-Encoding": {"quoted-printable"},
			})
			if err != nil {
				return nil, err
			}
			if err := writeQP(w, p.text); err != nil {
				return nil, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
	default:
		mediaType, text := "text/plain", m.Body
		if m.Body == "" && m.HTML != "" {
			mediaType, text = "text/html", m.HTML
		}
		header("Content-Type", mediaType+"; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		if err := writeQP(&body, text); err != nil {
			return nil, err
		}
		// SMTP content ends with CRLF anyway; writing it here keeps the
		// transport from adding it behind our back.
		if !bytes.HasSuffix(body.Bytes(), []byte("\r\n")) {
			body.WriteString("\r\n")
		}
	}
	head.WriteString("\r\n")
	head.Write(body.Bytes())
	return head.Bytes(), nil
}

func writeQP(w interface{ Write([]byte) (int, error) }, text string) error {
	qp := quotedprintable.NewWriter(w)
	// Hard line breaks become CRLF whatever the text used.
	if _, err := qp.Write([]byte(strings.ReplaceAll(text, "\r\n", "\n"))); err != nil {
		return err
	}
	return qp.Close()
}

// fold renders one header field, breaking it at spaces so lines stay near
// 78 characters (RFC 5322 2.2.3). Unfolding restores the value; between
// encoded words the break is ignored by decoders.
func fold(name, value string) string {
	var b strings.Builder
	line := len(name) + 2
	b.WriteString(name)
	b.WriteString(":")
	for i, word := range strings.Split(value, " ") {
		if i > 0 && line+1+len(word) > 78 {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(word)
		line += 1 + len(word)
	}
	b.WriteString("\r\n")
	return b.String()
}

// oneLine keeps a header value from starting a new header.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)), " ")
}

// headerToken keeps printable ASCII of an id and drops the rest; ids are
// ASCII already, this only guards the header.
func headerToken(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r > '~' {
			return -1
		}
		return r
	}, s)
}
