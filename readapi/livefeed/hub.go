package livefeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"herald/infra/eventstore"
)

// Log is the part of the event log the hub reads; an eventstore.Store has
// it.
type Log interface {
	StreamReader
	// Head returns the position of the last committed event.
	Head(ctx context.Context) (eventstore.Position, error)
	// ReadAll returns up to limit events with position > after, in commit
	// order.
	ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error)
	// Subscribe follows the log from the event after position after.
	Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error)
}

var _ Log = eventstore.Store(nil)

var (
	// ErrHubClosed means the hub's Run has returned: it takes no clients.
	ErrHubClosed = errors.New("live feed hub closed")
	// ErrTooManyClients means the hub holds Options.MaxClients clients.
	ErrTooManyClients = errors.New("live feed full: too many clients")
)

// Options tune a Hub. The zero value is the production default.
type Options struct {
	// ClientBuffer is how many messages may wait for one client. A client
	// whose buffer is full when a message arrives is dropped (it gets a
	// resync event and its stream ends). Default 256.
	ClientBuffer int
	// Heartbeat is how often an idle stream gets a keep-alive (an SSE
	// comment, a WebSocket ping). Default 15s.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a client; a client that takes
	// longer is disconnected. Default 10s.
	WriteTimeout time.Duration
	// MaxReplayEvents bounds how many log events a resuming client's
	// replay scans; past it the client gets a resync event instead of the
	// rest. Default 1,000,000.
	MaxReplayEvents int
	// ReplayPage is how many events a replay reads from the log at a time.
	// Default 1000.
	ReplayPage int
	// MaxReplays bounds how many replays read the log at once; others wait
	// (their live messages queue meanwhile). Default 8.
	MaxReplays int
	// MaxTracked bounds how many notifications with in-app deliveries in
	// flight the hub remembers the content of. An item whose context was
	// forgotten is still sent: the hub reads its notification's stream.
	// Default 50,000.
	MaxTracked int
	// MaxRecentDeliveries bounds how many delivered in-app items the hub
	// remembers the recipient of, so that a read mark needs no stream
	// read. Default 100,000.
	MaxRecentDeliveries int
	// MaxClients bounds the connected clients; 0 means no bound.
	MaxClients int
	// WebSocketOriginPatterns lists the cross-origin hosts allowed to open
	// a WebSocket (github.com/coder/websocket AcceptOptions.OriginPatterns).
	// Same-origin requests are always allowed.
	WebSocketOriginPatterns []string
	// Logger receives the hub's warnings; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	setDefault(&o.ClientBuffer, 256)
	setDefault(&o.Heartbeat, 15*time.Second)
	setDefault(&o.WriteTimeout, 10*time.Second)
	setDefault(&o.MaxReplayEvents, 1_000_000)
	setDefault(&o.ReplayPage, 1000)
	setDefault(&o.MaxReplays, 8)
	setDefault(&o.MaxTracked, 50_000)
	setDefault(&o.MaxRecentDeliveries, 100_000)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports every option that is out of range.
func (o Options) Validate() error {
	var errs []error
	for _, f := range []struct {
		name  string
		value int64
	}{
		{"ClientBuffer", int64(o.ClientBuffer)},
		{"Heartbeat", int64(o.Heartbeat)},
		{"WriteTimeout", int64(o.WriteTimeout)},
		{"MaxReplayEvents", int64(o.MaxReplayEvents)},
		{"ReplayPage", int64(o.ReplayPage)},
		{"MaxReplays", int64(o.MaxReplays)},
		{"MaxTracked", int64(o.MaxTracked)},
		{"MaxRecentDeliveries", int64(o.MaxRecentDeliveries)},
		{"MaxClients", int64(o.MaxClients)},
	} {
		if f.value < 0 {
			errs = append(errs, fmt.Errorf("livefeed option %s: must not be negative", f.name))
		}
	}
	return errors.Join(errs...)
}

// Hub follows the event log and fans in-app items and read marks out to
// the clients connected for their recipient. It is safe for concurrent use.
//
// One goroutine (Run) reads the log, with one subscription for the whole
// hub, and only while at least one client is connected: the first client
// to arrive makes it subscribe from the log's head, the last to leave
// makes it stop. Fan-out never waits for a client: each has a bounded
// buffer, and a client whose buffer is full is dropped with a resync
// event.
//
// Resuming without a gap or a duplicate: the hub records, under the same
// lock as its fan-out, the position up to which it has fanned out
// (dispatched). A client is registered under that lock too, and notes
// dispatched as the position its live feed starts after (liveFrom): every
// event after liveFrom reaches its buffer, none at or before it does. A
// resuming client then replays the log itself, from its Last-Event-ID up
// to and including liveFrom, while its live messages queue in its buffer,
// and only then drains the buffer (skipping anything at or before its
// Last-Event-ID, in case it had seen more than this hub had fanned out).
// The replay and the live feed meet at liveFrom exactly.
type Hub struct {
	log    Log
	opts   Options
	logger *slog.Logger
	kick   chan struct{}
	done   chan struct{}
	// replaySlots holds a token per replay reading the log.
	replaySlots chan struct{}

	mu         sync.Mutex
	started    bool
	closed     bool
	audiences  map[string]map[*client]struct{}
	clients    int
	following  bool
	dispatched eventstore.Position
	session    *session

	pushed   atomic.Uint64
	replayed atomic.Uint64
	drops    atomic.Uint64
	loads    atomic.Uint64
	tracked  atomic.Int64
}

// session is one run of the subscription, from a client arriving at an
// idle hub to the last one leaving (or a failure).
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
}

// client is one connected stream.
type client struct {
	recipient string
	ch        chan *frame
	// drop is closed when the hub drops the client for a full buffer.
	drop chan struct{}
	// liveFrom is the position the client's live feed starts after.
	liveFrom eventstore.Position
	removed  bool // guarded by Hub.mu
}

// NewHub returns a hub reading log. It does nothing until Run.
func NewHub(log Log, opts Options) (*Hub, error) {
	if log == nil {
		return nil, errors.New("livefeed: nil event log")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	return &Hub{
		log:         log,
		opts:        opts,
		logger:      opts.Logger,
		kick:        make(chan struct{}, 1),
		done:        make(chan struct{}),
		replaySlots: make(chan struct{}, opts.MaxReplays),
		audiences:   map[string]map[*client]struct{}{},
	}, nil
}

// Run follows the log for the connected clients until ctx ends, then ends
// every stream (the handlers return) and refuses new clients with
// ErrHubClosed. It returns nil when ctx ends, and an error when the log is
// closed under it. Failures reading the log are logged and retried from
// the last position fanned out, so they delay messages but lose none. Run
// may be called once.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("livefeed: hub already run")
	}
	h.started = true
	h.mu.Unlock()
	defer h.shutdown()

	tr := newTracker(h.log, h.opts.MaxTracked, h.opts.MaxRecentDeliveries, &h.loads)
	var backoff time.Duration
	for {
		s, from := h.startSession(ctx)
		if s == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-h.kick:
				continue
			}
		}
		err := h.follow(s, from, tr)
		h.endSession(s)
		switch {
		case ctx.Err() != nil:
			return nil
		case s.ctx.Err() != nil: // the last client left
			backoff = 0
			continue
		case errors.Is(err, eventstore.ErrClosed):
			return fmt.Errorf("live feed: follow log: %w", err)
		}
		backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
		h.logger.Warn("live feed: following the event log failed; retrying", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
	}
}

// startSession returns a new session and the position to follow from, or
// nil when no client wants one.
func (h *Hub) startSession(ctx context.Context) (*session, eventstore.Position) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.following || h.session != nil {
		return nil, 0
	}
	sctx, cancel := context.WithCancel(ctx)
	h.session = &session{ctx: sctx, cancel: cancel}
	return h.session, h.dispatched
}

func (h *Hub) endSession(s *session) {
	h.mu.Lock()
	if h.session == s {
		h.session = nil
	}
	h.mu.Unlock()
	s.cancel()
}

// follow reads the log from position from and fans out until the session
// ends or reading fails.
func (h *Hub) follow(s *session, from eventstore.Position, tr *tracker) error {
	sub, err := h.log.Subscribe(s.ctx, from)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer sub.Close()
	var ups []update
	for {
		evs, err := sub.Next(s.ctx)
		if err != nil {
			return err
		}
		ups = ups[:0]
		for _, rec := range evs {
			u, ok, err := tr.observe(s.ctx, rec)
			if err != nil {
				return err
			}
			if ok {
				ups = append(ups, u)
			}
		}
		h.tracked.Store(int64(tr.open.len()))
		if !h.fanOut(s, ups, evs[len(evs)-1].Position) {
			return context.Canceled
		}
	}
}

// fanOut hands a batch's updates to the clients of their recipients and
// records last as dispatched, atomically with respect to registrations. It
// reports false, and hands out nothing, when s is no longer the session.
func (h *Hub) fanOut(s *session, ups []update, last eventstore.Position) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.session != s {
		return false
	}
	for i := range ups {
		audience := h.audiences[ups[i].recipient]
		if len(audience) == 0 {
			continue
		}
		f := render(&ups[i])
		for c := range audience {
			select {
			case c.ch <- f:
				h.pushed.Add(1)
			default:
				h.removeLocked(c)
				close(c.drop)
				h.drops.Add(1)
			}
		}
	}
	h.dispatched = last
	return true
}

// register adds a client for recipient. The client's live feed starts
// after its liveFrom.
func (h *Hub) register(ctx context.Context, recipient string) (*client, error) {
	h.mu.Lock()
	if err := h.admitLocked(); err != nil {
		h.mu.Unlock()
		return nil, err
	}
	if !h.following {
		// The log is not followed: the live feed starts at the head. Read
		// it unlocked, then check nobody started following meanwhile.
		h.mu.Unlock()
		head, err := h.log.Head(ctx)
		if err != nil {
			return nil, fmt.Errorf("read log head: %w", err)
		}
		h.mu.Lock()
		if err := h.admitLocked(); err != nil {
			h.mu.Unlock()
			return nil, err
		}
		if !h.following {
			h.following = true
			h.dispatched = max(h.dispatched, head)
			select {
			case h.kick <- struct{}{}:
			default:
			}
		}
	}
	defer h.mu.Unlock()
	c := &client{
		recipient: recipient,
		ch:        make(chan *frame, h.opts.ClientBuffer),
		drop:      make(chan struct{}),
		liveFrom:  h.dispatched,
	}
	audience := h.audiences[recipient]
	if audience == nil {
		audience = map[*client]struct{}{}
		h.audiences[recipient] = audience
	}
	audience[c] = struct{}{}
	h.clients++
	return c, nil
}

func (h *Hub) admitLocked() error {
	switch {
	case h.closed:
		return ErrHubClosed
	case h.opts.MaxClients > 0 && h.clients >= h.opts.MaxClients:
		return ErrTooManyClients
	}
	return nil
}

// unregister removes a client; it is safe to call after it was dropped.
func (h *Hub) unregister(c *client) {
	h.mu.Lock()
	h.removeLocked(c)
	h.mu.Unlock()
}

func (h *Hub) removeLocked(c *client) {
	if c.removed {
		return
	}
	c.removed = true
	audience := h.audiences[c.recipient]
	delete(audience, c)
	if len(audience) == 0 {
		delete(h.audiences, c.recipient)
	}
	h.clients--
	if h.clients == 0 {
		h.stopFollowingLocked()
	}
}

func (h *Hub) stopFollowingLocked() {
	h.following = false
	if h.session != nil {
		h.session.cancel()
		h.session = nil
	}
}

// shutdown ends every stream and refuses new ones.
func (h *Hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.stopFollowingLocked()
	for _, audience := range h.audiences {
		for c := range audience {
			c.removed = true
		}
	}
	clear(h.audiences)
	h.clients = 0
	close(h.done)
}

// Stats are a hub's counters, for metrics. Counts are since NewHub.
type Stats struct {
	// Clients is the number of connected clients; Recipients the number of
	// recipients with at least one.
	Clients    int
	Recipients int
	// Following reports whether the hub is subscribed to the log, and
	// Position is the last position it fanned out.
	Following bool
	Position  eventstore.Position
	// Pushed counts messages queued to clients by the live feed, Replayed
	// messages sent by replays.
	Pushed   uint64
	Replayed uint64
	// DroppedClients counts clients disconnected for not keeping up.
	DroppedClients uint64
	// StreamLoads counts notification streams read for context the hub no
	// longer had.
	StreamLoads uint64
	// Tracked is the number of notifications whose context the hub holds.
	Tracked int
}

// Stats returns the hub's current counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	st := Stats{
		Clients:    h.clients,
		Recipients: len(h.audiences),
		Following:  h.following,
		Position:   h.dispatched,
	}
	h.mu.Unlock()
	st.Pushed = h.pushed.Load()
	st.Replayed = h.replayed.Load()
	st.DroppedClients = h.drops.Load()
	st.StreamLoads = h.loads.Load()
	st.Tracked = int(h.tracked.Load())
	return st
}
