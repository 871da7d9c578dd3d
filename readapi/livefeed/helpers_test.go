package livefeed_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
	"herald/readapi/livefeed"
)

// wait is how long a test waits for something that should happen at once.
const wait = 10 * time.Second

var base = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// fixture is a hub over a real SQLite log, served over real HTTP.
type fixture struct {
	log    *sqlite.Store
	hub    *livefeed.Hub
	url    string
	stop   context.CancelFunc
	runErr chan error
}

type fixtureConfig struct {
	opts livefeed.Options
	// smallSendBuffers shrinks the server's socket send buffers, so that a
	// client that does not read backs up into the hub quickly.
	smallSendBuffers bool
}

func newFixture(t testing.TB, cfg fixtureConfig) *fixture {
	t.Helper()
	log, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open log: %v", err)
	}
	t.Cleanup(func() { log.Close() })
	hub, err := livefeed.NewHub(log, cfg.opts)
	if err != nil {
		t.Fatalf("NewHub: %v", err)
	}
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/v1/recipients/{id}/stream", livefeed.Handler(hub))
	srv := httptest.NewUnstartedServer(r)
	if cfg.smallSendBuffers {
		srv.Listener = smallBufferListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{log: log, hub: hub, url: srv.URL, stop: cancel, runErr: make(chan error, 1)}
	go func() { f.runErr <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.runErr:
		case <-time.After(wait):
			t.Errorf("hub Run did not return after cancel")
		}
	})
	return f
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(4096)
	}
	return c, err
}

func (f *fixture) streamURL(recipient string) string {
	return f.url + "/v1/recipients/" + recipient + "/stream"
}

// appendEvents appends events to notification id's stream and returns
// where the last landed.
func (f *fixture) appendEvents(t testing.TB, id domain.NotificationID, events ...domain.Event) eventstore.Position {
	t.Helper()
	data := make([]eventstore.EventData, len(events))
	for i, e := range events {
		data[i] = eventData(t, e)
	}
	res, err := f.log.Append(context.Background(), domain.NotificationStream(id), eventstore.Any, data...)
	if err != nil {
		t.Errorf("append to %s: %v", id, err)
	}
	return res.Position
}

func eventData(t testing.TB, e domain.Event) eventstore.EventData {
	typ, data, err := domain.MarshalEvent(e)
	if err != nil {
		t.Fatalf("marshal %T: %v", e, err)
	}
	return eventstore.EventData{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: data}
}

var inapp1 = domain.NewDeliveryID(domain.ChannelInApp, 1)

// requestEvents are the request and its plan: one delivery on ch to the
// recipient's address for ch.
func requestEvents(id domain.NotificationID, req domain.NotificationRequest, ch domain.Channel, at time.Time) []domain.Event {
	d := domain.NewDeliveryID(ch, 1)
	return []domain.Event{
		domain.NotificationRequested{NotificationID: id, Request: req.Normalized(), IdempotencyKey: string(id), RequestedAt: at},
		domain.DeliveryPlanned{DeliveryID: d, Channel: ch, Address: req.Recipient.Address(ch), PlannedAt: at},
	}
}

// successEvents are a delivery's attempt and its success.
func successEvents(d domain.DeliveryID, confirmed bool, at time.Time) []domain.Event {
	return []domain.Event{
		domain.DeliveryAttempted{DeliveryID: d, Attempt: 1, AttemptedAt: at},
		domain.DeliverySucceeded{DeliveryID: d, Attempt: 1, Confirmed: confirmed, ProviderMessageID: "p-1", SucceededAt: at},
	}
}

func inAppRequest(recipient, subject string) domain.NotificationRequest {
	return domain.NotificationRequest{
		Recipient: domain.Recipient{ID: recipient},
		Channels:  []domain.Channel{domain.ChannelInApp},
		Content:   &domain.Content{Subject: subject, Body: "body of " + subject},
	}
}

// deliverInApp appends a whole in-app notification for recipient, delivered,
// and returns the position of its DeliverySucceeded.
func (f *fixture) deliverInApp(t testing.TB, id domain.NotificationID, recipient string) eventstore.Position {
	t.Helper()
	evs := append(requestEvents(id, inAppRequest(recipient, string(id)), domain.ChannelInApp, base), successEvents(inapp1, true, base.Add(time.Second))...)
	return f.appendEvents(t, id, evs...)
}

// ---- SSE client ----

type sseEvent struct {
	ID    string
	Event string
	Data  string
}

// sseStream reads an SSE response in the background.
type sseStream struct {
	resp   *http.Response
	events chan sseEvent
	ended  chan error
	cancel context.CancelFunc
}

func dialSSE(t testing.TB, client *http.Client, url string, header http.Header) (*http.Response, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, cancel
}

// openSSE connects and starts reading; the stream is registered with the
// hub when it returns.
func openSSE(t testing.TB, url string, header http.Header) *sseStream {
	t.Helper()
	resp, cancel := dialSSE(t, http.DefaultClient, url, header)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	return readSSE(resp, cancel)
}

func readSSE(resp *http.Response, cancel context.CancelFunc) *sseStream {
	s := &sseStream{resp: resp, events: make(chan sseEvent, 4096), ended: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(s.events)
		br := bufio.NewReader(resp.Body)
		var ev sseEvent
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				s.ended <- err
				return
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "":
				if ev.Event != "" || ev.Data != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.Data += line[6:]
			}
		}
	}()
	return s
}

func (s *sseStream) next(t testing.TB) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("stream ended (%v), want another event", <-s.ended)
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %s", wait)
	}
	return sseEvent{}
}

// expectEnd waits for the server to end the stream, failing on any event.
func (s *sseStream) expectEnd(t testing.TB) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("got %+v, want the stream to end", ev)
		}
		if err := <-s.ended; !errors.Is(err, io.EOF) {
			t.Fatalf("stream ended with %v, want EOF", err)
		}
	case <-time.After(wait):
		t.Fatalf("stream still open after %s", wait)
	}
}

func (s *sseStream) close() { s.cancel(); s.resp.Body.Close() }

// inboxItemOf decodes an inbox event, checking its name and id.
func inboxItemOf(t testing.TB, ev sseEvent, pos eventstore.Position) map[string]any {
	t.Helper()
	if ev.Event != livefeed.EventInbox || ev.ID != fmt.Sprint(pos) {
		t.Fatalf("got event %q id %q (%s), want inbox id %d", ev.Event, ev.ID, ev.Data, pos)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("inbox data %q: %v", ev.Data, err)
	}
	return m
}

// eventually polls cond until it holds or the wait is over.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// smallReceiveBufferClient is an HTTP client whose sockets have a small
// receive buffer, so that not reading backs up into the server fast.
func smallReceiveBufferClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
}
