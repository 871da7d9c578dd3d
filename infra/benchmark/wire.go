package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"time"
)

// A wireConn is one keep-alive HTTP/1.1 connection of the load generator,
// used by one worker at a time. It writes each POST in a single write and
// reads the answer straight off a buffered reader: status line, headers,
// then a Content-Length or chunked body, which it returns whole.
//
// The workloads used net/http's client before. Its per-request goroutine
// hand-offs and header maps cost about 85 µs of CPU per request on these two
// cores, measured in the api_send profile, a fifth of all the CPU of a run
// against the api role alone; a bare net/http server that answers at once
// did 19,000 requests/s with that client and 45,000/s with one like this.
// The load generator shares the cores with the server it measures, so what
// it spends is taken from the server's figure.
//
// It speaks only what Herald's server answers: no 1xx (requests send no
// Expect), no trailers that matter, and a connection that the server closes
// ("Connection: close") is dialled again for the next request.
type wireConn struct {
	host   string // host:port
	apiKey string
	conn   net.Conn
	br     *bufio.Reader
	req    []byte
	body   []byte
}

// wireTimeout bounds each request, from its write to the end of its answer.
const wireTimeout = 30 * time.Second

func newWireConn(baseURL, apiKey string) (*wireConn, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("load generator: %q is not an http://host:port URL", baseURL)
	}
	return &wireConn{host: u.Host, apiKey: apiKey}, nil
}

// fresh returns a connection to the same server, not yet dialled, for
// another worker.
func (w *wireConn) fresh() *wireConn {
	return &wireConn{host: w.host, apiKey: w.apiKey}
}

// Close closes the connection, if one is open.
func (w *wireConn) Close() {
	if w.conn != nil {
		w.conn.Close()
		w.conn, w.br = nil, nil
	}
}

// post sends body as application/json to path and returns the status code
// and the answer's body. The body is valid until the next call.
func (w *wireConn) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if w.conn == nil {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", w.host)
		if err != nil {
			return 0, nil, err
		}
		w.conn, w.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	w.req = append(w.req[:0], "POST "...)
	w.req = append(w.req, path...)
	w.req = append(w.req, " HTTP/1.1\r\nHost: "...)
	w.req = append(w.req, w.host...)
	w.req = append(w.req, "\r\nAuthorization: Bearer "...)
	w.req = append(w.req, w.apiKey...)
	w.req = append(w.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	w.req = strconv.AppendInt(w.req, int64(len(body)), 10)
	w.req = append(w.req, "\r\n\r\n"...)
	w.req = append(w.req, body...)
	if err := w.conn.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		w.Close()
		return 0, nil, err
	}
	if _, err := w.conn.Write(w.req); err != nil {
		w.Close()
		return 0, nil, fmt.Errorf("POST %s: %w", path, err)
	}
	code, keep, err := w.readAnswer()
	if err != nil {
		w.Close()
		return 0, nil, fmt.Errorf("POST %s: %w", path, err)
	}
	if !keep {
		w.Close()
	}
	return code, w.body, nil
}

var errMalformed = errors.New("malformed HTTP answer")

// readAnswer reads one HTTP/1.1 answer into w.body and says whether the
// connection stays open.
func (w *wireConn) readAnswer() (code int, keep bool, err error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 202 Accepted\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	code, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	keep = line[7] == '1'
	length, chunked := -1, false
	for {
		line, err = w.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errMalformed, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	w.body = w.body[:0]
	switch {
	case chunked:
		err = w.readChunked()
	case length >= 0:
		w.body = slices.Grow(w.body, length)[:length]
		_, err = io.ReadFull(w.br, w.body)
	case code == 204 || code == 304:
	default: // no length: the body runs to the end of the connection
		var b bytes.Buffer
		_, err = b.ReadFrom(w.br)
		w.body, keep = b.Bytes(), false
	}
	return code, keep, err
}

func (w *wireConn) readChunked() error {
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 {
			// Trailers, if any, end with an empty line.
			for {
				line, err = w.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		start := len(w.body)
		w.body = slices.Grow(w.body, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.br, w.body[start:]); err != nil {
			return err
		}
		crlf, err := w.br.Peek(2)
		if err != nil {
			return err
		}
		if string(crlf) != "\r\n" {
			return fmt.Errorf("%w: chunk of %d bytes not followed by CRLF", errMalformed, n)
		}
		w.br.Discard(2)
	}
}
