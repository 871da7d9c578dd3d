package livefeed

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"

	"herald/infra/eventstore"
)

// Handler serves GET /v1/recipients/{id}/stream, the live feed of
// recipient {id} (read with chi.URLParam, so mount it on a chi route with
// an {id} parameter, behind the read-scope auth).
//
// By default the answer is a Server-Sent Events stream (text/event-stream):
// every message is "id: <log position>", "event: inbox|read|resync" and
// one "data: <JSON>" line, flushed at once; an idle stream gets a comment
// every Options.Heartbeat. When the request is a WebSocket upgrade, each
// message is instead a JSON text frame {"id":"<position>","event":...,
// "data":{...}}, and keep-alives are pings; the client sends nothing (a
// data frame from it closes the connection).
//
// Resuming: a Last-Event-ID header (what EventSource sends when it
// reconnects) or else a last_event_id query parameter makes the stream
// start with the recipient's messages after that position, read from the
// log, and go on live without a gap or a duplicate. Without either the
// stream starts with what happens next.
//
// The stream ends when the client goes, when the hub's Run ends, or after
// a resync event telling a client that fell behind to reload its inbox.
// Errors before the stream starts are application/problem+json: 400 for a
// malformed last_event_id, 503 when the hub is closed or full.
//
// Writes set their own deadline (Options.WriteTimeout), so the server's
// WriteTimeout does not cut streams short.
func Handler(h *Hub) http.Handler {
	if h == nil {
		panic("livefeed: Handler needs a hub")
	}
	return http.HandlerFunc(h.serveStream)
}

func (h *Hub) serveStream(w http.ResponseWriter, r *http.Request) {
	recipient := chi.URLParam(r, "id")
	if recipient == "" {
		writeProblem(w, badParam("id", "must name a recipient"))
		return
	}
	after, resume, err := resumePoint(r)
	if err != nil {
		writeProblem(w, err)
		return
	}
	// Register before answering: once the client sees the response start,
	// whatever is appended next reaches it.
	c, err := h.register(r.Context(), recipient)
	if err != nil {
		if problemFor(err).Status == http.StatusInternalServerError {
			h.logger.Error("live feed: cannot open stream", "recipient", recipient, "err", err)
		}
		writeProblem(w, err)
		return
	}
	defer h.unregister(c)
	if isWebSocketUpgrade(r) {
		h.serveWebSocket(w, r, c, after, resume)
		return
	}
	h.serveSSE(w, r, c, after, resume)
}

// resumePoint returns the position a client resumes after. The header
// wins over the query parameter: EventSource updates the header on every
// reconnect, while the URL keeps the position it was opened with.
func resumePoint(r *http.Request) (eventstore.Position, bool, error) {
	name, v := "Last-Event-ID", strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		name, v = "last_event_id", strings.TrimSpace(r.URL.Query().Get("last_event_id"))
	}
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, false, badParam(name, "must be the id of an event from this stream (a log position)")
	}
	return eventstore.Position(n), true, nil
}

func isWebSocketUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// sink is the wire a client's messages go out on.
type sink interface {
	// send writes f and flushes it.
	send(f *frame) error
	// keepAlive writes a heartbeat.
	keepAlive() error
}

// ending says why a stream ended.
type ending int

const (
	endClientGone ending = iota
	endDropped
	endShutdown
)

// pump sends a client its replay, if it resumes, and then its live feed,
// until the stream ends.
func (h *Hub) pump(ctx context.Context, c *client, out sink, after eventstore.Position, resume bool) ending {
	skip := c.liveFrom
	if resume {
		if err := h.replay(ctx, c, after, out); err != nil {
			if ctx.Err() == nil {
				h.logger.Warn("live feed: replay failed", "recipient", c.recipient, "err", err)
			}
			return endClientGone
		}
		skip = max(skip, after)
	}
	heartbeat := time.NewTicker(h.opts.Heartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case f := <-c.ch:
			if f.pos <= skip {
				continue
			}
			if out.send(f) != nil {
				return endClientGone
			}
		case <-c.drop:
			_ = out.send(resyncFrame(c.recipient, ResyncSlowClient, 0, false))
			return endDropped
		case <-heartbeat.C:
			if out.keepAlive() != nil {
				return endClientGone
			}
		case <-ctx.Done():
			return endClientGone
		case <-h.done:
			return endShutdown
		}
	}
}

// replayTracked bounds a replay's own memory of notification context.
const replayTracked = 10_000

// replay sends c its messages with positions in (after, c.liveFrom], read
// from the log, scanning at most Options.MaxReplayEvents events; past that
// it sends a resync event whose id is liveFrom. It returns early, with no
// error, when the client is dropped or the hub closes (pump then says so).
func (h *Hub) replay(ctx context.Context, c *client, after eventstore.Position, out sink) error {
	if after >= c.liveFrom {
		return nil
	}
	select {
	case h.replaySlots <- struct{}{}:
		defer func() { <-h.replaySlots }()
	case <-ctx.Done():
		return ctx.Err()
	case <-c.drop:
		return nil
	case <-h.done:
		return nil
	}
	tr := newTracker(h.log, min(h.opts.MaxTracked, replayTracked), min(h.opts.MaxRecentDeliveries, replayTracked), &h.loads)
	pos, scanned, lastWrite := after, 0, time.Now()
	for pos < c.liveFrom {
		select {
		case <-c.drop:
			return nil
		case <-h.done:
			return nil
		default:
		}
		// A long scan that finds nothing for this recipient must not look
		// like a dead connection to proxies.
		if time.Since(lastWrite) >= h.opts.Heartbeat {
			if err := out.keepAlive(); err != nil {
				return err
			}
			lastWrite = time.Now()
		}
		evs, err := h.log.ReadAll(ctx, pos, h.opts.ReplayPage)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		for _, rec := range evs {
			if rec.Position > c.liveFrom {
				return nil
			}
			if scanned == h.opts.MaxReplayEvents {
				return out.send(resyncFrame(c.recipient, ResyncReplayTooLong, c.liveFrom, true))
			}
			scanned++
			u, ok, err := tr.observe(ctx, rec)
			if err != nil {
				return err
			}
			if ok && u.recipient == c.recipient {
				if err := out.send(render(&u)); err != nil {
					return err
				}
				h.replayed.Add(1)
				lastWrite = time.Now()
			}
			pos = rec.Position
		}
	}
	return nil
}

// ---- Server-Sent Events ----

type sseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

var heartbeatComment = []byte(": keep-alive\n\n")

func (s *sseSink) send(f *frame) error { return s.write(f.sse) }

func (s *sseSink) keepAlive() error { return s.write(heartbeatComment) }

func (s *sseSink) write(b []byte) error {
	// Not every ResponseWriter supports deadlines; without one a stuck
	// client costs a goroutine until it goes, never the hub.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (h *Hub) serveSSE(w http.ResponseWriter, r *http.Request, c *client, after eventstore.Position, resume bool) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := &sseSink{w: w, rc: http.NewResponseController(w), timeout: h.opts.WriteTimeout}
	if out.keepAlive() != nil {
		return
	}
	h.pump(r.Context(), c, out, after, resume)
}

// ---- WebSocket ----

type wsSink struct {
	ctx     context.Context
	conn    *websocket.Conn
	timeout time.Duration
}

func (s *wsSink) send(f *frame) error {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, f.wsMessage())
}

func (s *wsSink) keepAlive() error {
	ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
	defer cancel()
	return s.conn.Ping(ctx)
}

func (h *Hub) serveWebSocket(w http.ResponseWriter, r *http.Request, c *client, after eventstore.Position, resume bool) {
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.opts.WebSocketOriginPatterns})
	if err != nil {
		return // Accept has answered the request
	}
	// CloseRead answers pings and closes, and ends ctx when the client
	// goes; the client has nothing to say on this stream.
	ctx := conn.CloseRead(r.Context())
	out := &wsSink{ctx: ctx, conn: conn, timeout: h.opts.WriteTimeout}
	switch h.pump(ctx, c, out, after, resume) {
	case endDropped:
		_ = conn.Close(websocket.StatusTryAgainLater, "too slow: resync from the inbox")
	case endShutdown:
		_ = conn.Close(websocket.StatusGoingAway, "server shutting down")
	default:
		_ = conn.CloseNow()
	}
}

// ---- problems ----

// problemTypeBase is the base of the problem type URIs of Herald's HTTP
// API (readapi.ProblemTypeBase; repeated so that readapi can mount this
// package without an import cycle).
const problemTypeBase = "https://herald.dev/problems/"

type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []fieldError `json:"errors,omitempty"`
}

type fieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

// paramError is a request parameter that does not parse.
type paramError struct{ param, reason string }

func (e *paramError) Error() string { return "parameter " + e.param + ": " + e.reason }

func badParam(param, reason string) error { return &paramError{param, reason} }

// problemFor is the one place where this package's errors become HTTP
// statuses, with the types of readapi's catalogue.
func problemFor(err error) problem {
	var pe *paramError
	switch {
	case errors.As(err, &pe):
		return problem{Type: problemTypeBase + "invalid-query", Title: "A query parameter is invalid",
			Status: http.StatusBadRequest, Detail: err.Error(), Errors: []fieldError{{pe.param, pe.reason}}}
	case errors.Is(err, ErrHubClosed), errors.Is(err, ErrTooManyClients), errors.Is(err, eventstore.ErrClosed):
		return problem{Type: problemTypeBase + "unavailable", Title: "The service cannot answer now",
			Status: http.StatusServiceUnavailable, Detail: err.Error()}
	}
	// Internal details stay in the logs.
	return problem{Type: problemTypeBase + "internal", Title: "Internal error", Status: http.StatusInternalServerError}
}

func writeProblem(w http.ResponseWriter, err error) {
	p := problemFor(err)
	body, _ := json.Marshal(p)
	hdr := w.Header()
	hdr.Set("Content-Type", "application/problem+json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	if p.Status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", "1")
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(body, '\n'))
}
