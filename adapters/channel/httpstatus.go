package channel

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"herald/domain"
)

// MaxRetryAfter caps a provider's Retry-After. The dispatcher slows a whole
// channel down on a RetryAfter, so one receiver (a webhook URL a recipient
// chose, say) must not be able to stall the channel for days.
const MaxRetryAfter = time.Hour

// MaxSnippetBytes bounds the part of an error answer's body that
// AnswerSnippet keeps for a Failure's Reason.
const MaxSnippetBytes = 200

// StatusError is the error wrapped by a Failure that StatusFailure built:
// callers that need the HTTP status use errors.As.
type StatusError struct {
	StatusCode int
}

func (e *StatusError) Error() string {
	return "http status " + strconv.Itoa(e.StatusCode)
}

// ParseRetryAfter reads an HTTP Retry-After value, either delta-seconds or
// an HTTP date, relative to now. A date in the past yields zero. The result
// is capped at MaxRetryAfter. ok is false when v is empty or malformed.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if allDigits(v) {
		// More digits than an int64 holds is still "a very long time".
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d = t.Sub(now)
	switch {
	case d < 0:
		return 0, true
	case d > MaxRetryAfter:
		return MaxRetryAfter, true
	}
	return d, true
}

// RetryAfter is ParseRetryAfter's duration alone: zero when v is empty or
// malformed.
func RetryAfter(v string, now time.Time) time.Duration {
	d, _ := ParseRetryAfter(v, now)
	return d
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// StatusFailure classifies an HTTP answer by its status code and returns nil
// for a 2xx. 408, 425, 429 and 5xx are retryable; a 429, or a 503 carrying
// Retry-After, is Throttled with the provider's RetryAfter; 3xx (the
// outbound client never follows redirects), other 4xx and anything else are
// permanent. snippet, already free of credentials (see AnswerSnippet), is
// quoted in the Reason.
func StatusFailure(code int, header http.Header, snippet string, now time.Time) *Failure {
	if code >= 200 && code <= 299 {
		return nil
	}
	reason := "http " + strconv.Itoa(code)
	if text := http.StatusText(code); text != "" {
		reason += " " + text
	}
	if code >= 300 && code <= 399 {
		reason += " (redirects are not followed)"
	}
	if snippet != "" {
		reason += ": " + snippet
	}
	f := &Failure{Reason: reason, Err: &StatusError{StatusCode: code}}
	switch {
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly,
		code == http.StatusTooManyRequests, code >= 500 && code <= 599:
		f.Retryable = true
	}
	if code == http.StatusTooManyRequests {
		f.Throttled = true
	}
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		if d, ok := ParseRetryAfter(header.Get("Retry-After"), now); ok {
			f.RetryAfter = d
			f.Throttled = true
		}
	}
	return f
}

// RequestFailure classifies the error of an HTTP exchange that produced no
// usable answer. A refusal by the outbound guard is permanent (no retry
// makes a private address public); cancellation, timeouts and connection
// errors are retryable. The URL inside the error is reduced to its scheme
// and host (see domain.RedactURL), and every non-empty string in secrets is
// replaced, so neither the Reason nor the error text carries credentials.
func RequestFailure(err error, secrets ...string) *Failure {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = &url.Error{Op: ue.Op, URL: domain.RedactURL(ue.URL), Err: ue.Err}
	}
	if msg := scrub(err.Error(), secrets); msg != err.Error() {
		err = &redactedError{msg: msg, err: err}
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrAddressRefused):
		return Permanent("address refused by the outbound guard", err)
	case errors.Is(err, context.Canceled):
		return Retryable("cancelled", err)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return Retryable("timeout", err)
	}
	return Retryable("connection error", err)
}

// redactedError keeps an error's chain for errors.Is/As while showing a
// message with the credentials taken out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// AnswerSnippet returns the start of an answer's body fit for a Reason:
// valid UTF-8, whitespace runs folded into one space, every non-empty string
// in secrets (and its URL-escaped form) replaced by "<redacted>", and cut to
// MaxSnippetBytes on a character boundary.
func AnswerSnippet(body []byte, secrets ...string) string {
	s := strings.ToValidUTF8(string(body), "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	s = scrub(s, secrets)
	if len(s) <= MaxSnippetBytes {
		return s
	}
	cut := MaxSnippetBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func scrub(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		s = strings.ReplaceAll(s, secret, "<redacted>")
		if esc := url.QueryEscape(secret); esc != secret {
			s = strings.ReplaceAll(s, esc, "<redacted>")
		}
		if esc := url.PathEscape(secret); esc != secret {
			s = strings.ReplaceAll(s, esc, "<redacted>")
		}
	}
	return s
}

// URLSecrets returns the parts of u that may be credentials (the password,
// the path, the raw query and each query value) for AnswerSnippet and
// RequestFailure to take out of error texts.
func URLSecrets(u *url.URL) []string {
	var out []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
	}
	if len(u.Path) > 1 {
		out = append(out, u.Path)
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	return out
}
