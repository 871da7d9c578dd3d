package webpushtest

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"herald/adapters/webpush"
)

// Payload is the JSON a service worker receives, as package webpush
// documents it.
type Payload struct {
	Title          string            `json:"title"`
	Body           string            `json:"body"`
	NotificationID string            `json:"notification_id"`
	DeliveryID     string            `json:"delivery_id"`
	IdempotencyKey string            `json:"idempotency_key"`
	Metadata       map[string]string `json:"metadata"`
}

// Request is one request as the push service saw it. Err says why it was
// refused (answered 400): an unknown endpoint, a method other than POST, a
// Content-Encoding other than aes128gcm, a VAPID token that does not
// verify, a body that does not decrypt, or a payload that is not JSON.
// Claims and Payload hold what was read before that.
type Request struct {
	Path    string
	Header  http.Header
	Claims  Claims
	Payload Payload
	Err     error
}

// Answer is how the push service replies to the requests for one endpoint
// once they passed its checks. The zero Answer is the default: 201 Created
// with a Location naming the push message resource, "/message/<path>".
type Answer struct {
	// Code is the status; 0 means 201 with the default Location.
	Code int
	// Header is added to the response.
	Header http.Header
	// Block holds the request until the client gives up (a push service
	// that hangs).
	Block bool
}

// PushService is an HTTPS push service on 127.0.0.1 that also plays the
// browsers subscribed to it. It is safe for concurrent use.
type PushService struct {
	// URL is the base URL, "https://127.0.0.1:port": the origin VAPID
	// tokens must name as aud.
	URL string
	// PublicKey is the applicationServerKey, base64url, the VAPID k the
	// service expects; Subject is the sub it expects.
	PublicKey string
	Subject   string

	srv *httptest.Server

	mu       sync.Mutex
	browsers map[string]*Browser // by endpoint path
	answers  map[string]Answer   // by endpoint path
	got      []Request
}

// NewPushService starts a push service expecting VAPID tokens made with
// publicKey (base64url, as webpush.GenerateVAPIDKeys returns it) for
// subject. The caller must Close it.
func NewPushService(publicKey, subject string) *PushService {
	ps := &PushService{
		PublicKey: publicKey,
		Subject:   subject,
		browsers:  map[string]*Browser{},
		answers:   map[string]Answer{},
	}
	ps.srv = httptest.NewUnstartedServer(http.HandlerFunc(ps.serve))
	// Connections the client abandons (timeouts, cancelled sends) are
	// expected; keep their handshake noise out of the test output.
	ps.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	ps.srv.StartTLS()
	ps.URL = ps.srv.URL
	return ps
}

// Close shuts the service down and blocks until its requests have
// finished, as httptest.Server.Close does.
func (ps *PushService) Close() { ps.srv.Close() }

// Certificate returns the service's TLS certificate, httptest's, for a
// client to trust.
func (ps *PushService) Certificate() *x509.Certificate { return ps.srv.Certificate() }

// Subscribe makes a new browser subscribe at path ("/push/phone") and
// returns its subscription; requests to that endpoint are answered with a.
// Subscribing at a path again replaces the browser and the answer.
func (ps *PushService) Subscribe(path string, a Answer) webpush.Subscription {
	b := NewBrowser()
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.browsers[path] = b
	ps.answers[path] = a
	return b.Subscription(ps.URL + path)
}

// Requests returns a copy of every request received so far, in the order
// they were handled.
func (ps *PushService) Requests() []Request {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]Request(nil), ps.got...)
}

func (ps *PushService) serve(w http.ResponseWriter, r *http.Request) {
	ps.mu.Lock()
	b, known := ps.browsers[r.URL.Path]
	a := ps.answers[r.URL.Path]
	ps.mu.Unlock()

	rec := Request{Path: r.URL.Path, Header: r.Header.Clone()}
	body, err := io.ReadAll(r.Body)
	switch {
	case err != nil:
		rec.Err = err
	case !known:
		rec.Err = fmt.Errorf("unknown endpoint %s", r.URL.Path)
	case r.Method != http.MethodPost:
		rec.Err = fmt.Errorf("method %s", r.Method)
	case r.Header.Get("Content-Encoding") != "aes128gcm":
		rec.Err = fmt.Errorf("Content-Encoding %q", r.Header.Get("Content-Encoding"))
	default:
		rec.Claims, rec.Err = VerifyVAPID(r.Header.Get("Authorization"), ps.PublicKey, ps.URL, ps.Subject, time.Now())
		if rec.Err == nil {
			var plain []byte
			if plain, rec.Err = b.Decrypt(body); rec.Err == nil {
				rec.Err = json.Unmarshal(plain, &rec.Payload)
			}
		}
	}
	ps.mu.Lock()
	ps.got = append(ps.got, rec)
	ps.mu.Unlock()

	if rec.Err != nil {
		http.Error(w, rec.Err.Error(), http.StatusBadRequest)
		return
	}
	if a.Block {
		<-r.Context().Done()
		return
	}
	for k, vs := range a.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if a.Code == 0 {
		w.Header().Set("Location", "/message/"+strings.TrimPrefix(r.URL.Path, "/"))
		w.WriteHeader(http.StatusCreated)
		return
	}
	w.WriteHeader(a.Code)
}
