package benchmark

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// The load generator's connection against net/http's server: each answer
// shape the server produces comes back whole, and the requests arrive as
// net/http parses them.
func TestWireConnAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int64
	big := strings.Repeat("0123456789", 10_000) // over net/http's buffer: chunked
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer k" ||
			r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request line or headers", http.StatusTeapot)
			return
		}
		switch r.URL.Path {
		case "/echo":
			w.WriteHeader(http.StatusAccepted)
			w.Write(body)
		case "/big":
			io.WriteString(w, big)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		default:
			http.NotFound(w, r)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	w, err := newWireConn(srv.URL, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	check := func(path, body string, wantCode int, wantBody string) {
		t.Helper()
		code, got, err := w.post(ctx, path, []byte(body))
		if err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		if code != wantCode || string(got) != wantBody {
			t.Fatalf("POST %s: %d %.80q, want %d %.80q", path, code, got, wantCode, wantBody)
		}
	}
	for i := range 100 {
		b := fmt.Sprintf(`{"n":%d}`, i)
		check("/echo", b, http.StatusAccepted, b)
	}
	check("/big", "{}", http.StatusOK, big)
	check("/empty", "{}", http.StatusNoContent, "")
	check("/missing", "{}", http.StatusNotFound, "404 page not found\n")
	check("/echo", "", http.StatusAccepted, "")
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for keep-alive requests, want 1", n)
	}
	check("/close", "{}", http.StatusOK, "bye")
	check("/echo", "{}", http.StatusAccepted, "{}")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after the server closed one, want 2", n)
	}
}

// Answers that are not HTTP, or that end early, are errors and not figures.
func TestWireConnRefusesBrokenAnswers(t *testing.T) {
	for _, c := range []struct{ name, answer string }{
		{"not http", "SSH-2.0-OpenSSH\r\n"},
		{"short body", "HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				defer conn.Close()
				buf := make([]byte, 4096)
				conn.Read(buf)
				io.WriteString(conn, c.answer)
			}()
			w, err := newWireConn("http://"+ln.Addr().String(), "k")
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			code, body, err := w.post(context.Background(), "/x", []byte("{}"))
			if err == nil {
				t.Fatalf("answer %q read as %d %q, want an error", c.answer, code, body)
			}
			if c.name != "short body" && !errors.Is(err, errMalformed) {
				t.Fatalf("error %v, want it to wrap errMalformed", err)
			}
		})
	}
	if _, err := newWireConn("https://example.com", "k"); err == nil {
		t.Fatal("an https URL was accepted; the load generator speaks plain HTTP only")
	}
}
