package projections

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"herald/infra/eventstore"
)

// Log is the part of the event log the Runner reads; eventstore.Store has it.
type Log interface {
	ReadAll(ctx context.Context, after eventstore.Position, limit int) ([]eventstore.RecordedEvent, error)
	Subscribe(ctx context.Context, after eventstore.Position) (eventstore.Subscription, error)
	Head(ctx context.Context) (eventstore.Position, error)
}

// BatchSize is the page size of catch-up reads.
const BatchSize = 4096

// RunnerOptions tune a Runner. The zero value is the production default.
type RunnerOptions struct {
	// Projections lists the projections to run; nil means Names().
	Projections []string
	// Now is the clock used for lag; nil means time.Now.
	Now func() time.Time
	// RetryDelay is the first wait before retrying a failed projection
	// (default 100ms); MaxRetryDelay caps the doubling (default 10s).
	RetryDelay, MaxRetryDelay time.Duration
	// Linger is how long the live feed waits after reading a small batch
	// before it reads the next (DefaultLinger when 0; negative: not at
	// all). See DefaultLinger.
	Linger time.Duration
}

// DefaultLinger lets the appends of 20 ms gather into one batch while they
// keep coming; after a quiet spell an append is applied at once. Each
// batch is a transaction of the view store, and applying every few events
// on their own rewrote the same index pages over and over: the SQLite
// views' WAL traffic, and its checkpoints, which the event log's fsyncs
// waited behind on the one disk. No linger against 5 ms gave e2e delivery
// at 2,000 notifications/s a p99 of 108, 113 and 140 ms against 58, 58
// and 96 ms; 5 ms against 20 ms, 64 and 30 ms against 26 and 14 ms
// (interleaved runs). The price is freshness when appends come one at a
// time, each just after the last was applied: BenchmarkLiveLatency's p99
// went from about 7 ms to about 22 ms, within the target issue 3 sets for
// the views: 50 ms at p99 under light load.
const DefaultLinger = 20 * time.Millisecond

// lingerBelow: the live feed lingers only after a batch smaller than this.
// A larger one means appends come faster than the projections apply them,
// or that they are behind (a subscription hands out at most 1,024 events
// at a time): waiting then gathers nothing the next read would not get
// anyway, and only caps how fast the projections can catch up. Lingering
// after every batch capped a projection at 1,024 events per linger and
// apply, about 35,000 events/s: under api_batch the views fell behind
// while they slept, which the intake figure took for a gain (46,143 and
// 45,818 notifications/s against 32,504 and 33,465 with this bound,
// interleaved).
const lingerBelow = 512

// Runner feeds projections from the log: per projection, one goroutine
// reads from the checkpoint in pages of BatchSize, applies each page with
// its checkpoint in one Store.Apply, then follows live appends through the
// subscription the projections share (liveFeed). It is the single writer
// of each projection.
type Runner struct {
	log   Log
	store Store
	now   func() time.Time
	procs map[string]*projector

	retry, maxRetry time.Duration
	linger          time.Duration
	order           []string

	batches BatchStore // the store as a BatchStore, or nil
	pages   pageCache

	mu      sync.Mutex
	running context.Context // set by Run; rebuilds started by StartRebuild live in it
}

// ProjectionStatus is a projection's progress, for GET /v1/admin/projections
// and metrics.
type ProjectionStatus struct {
	Name       string              `json:"name"`
	Checkpoint eventstore.Position `json:"checkpoint"`
	Head       eventstore.Position `json:"head"`
	LagEvents  uint64              `json:"lag_events"`
	// LagSeconds is how long the oldest event the view has not applied has
	// been in the log (0 when caught up). It is an upper bound of how stale
	// the view can be, and unlike "now − last applied" it stays 0 while the
	// log is idle.
	LagSeconds float64 `json:"lag_seconds"`
	// CatchingUp is true while the projection reads the log in pages
	// from its checkpoint, before it follows live appends (at start, and
	// after a failure).
	CatchingUp bool `json:"catching_up"`
	Rebuilding bool `json:"rebuilding"`
	// RebuildCheckpoint is the shadow's progress while Rebuilding.
	RebuildCheckpoint eventstore.Position `json:"rebuild_checkpoint,omitempty"`
	// Rebuilds counts rebuilds completed since the Runner started.
	Rebuilds int `json:"rebuilds"`
	// LastError is the error the projection is retrying after ("" once it
	// applies a batch again).
	LastError string `json:"last_error,omitempty"`
	// Failures counts the projection's failures since the Runner started.
	Failures int `json:"failures"`
	// RebuildError is why the last rebuild failed ("" after a success).
	RebuildError string `json:"rebuild_error,omitempty"`
}

// NewRunner returns a Runner over log and store. It refuses nil
// dependencies and unknown projection names.
func NewRunner(log Log, store Store, opts RunnerOptions) (*Runner, error) {
	if log == nil || store == nil {
		return nil, errors.New("new projection runner: nil log or store")
	}
	names := opts.Projections
	if names == nil {
		names = Names()
	}
	r := &Runner{log: log, store: store, now: opts.Now, procs: map[string]*projector{},
		retry: opts.RetryDelay, maxRetry: opts.MaxRetryDelay, linger: opts.Linger}
	if r.linger == 0 {
		r.linger = DefaultLinger
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.batches, _ = store.(BatchStore)
	if r.retry <= 0 {
		r.retry = 100 * time.Millisecond
	}
	if r.maxRetry < r.retry {
		r.maxRetry = max(r.retry, 10*time.Second)
	}
	for _, n := range names {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("new projection runner: %q: %w", n, ErrUnknownProjection)
		}
		if _, dup := r.procs[n]; dup {
			continue
		}
		r.procs[n] = &projector{name: n, r: r}
		r.order = append(r.order, n)
	}
	return r, nil
}

// Run feeds every projection until ctx ends, then returns nil. A projection
// whose log read or Apply fails is retried from its stored checkpoint after
// a backoff (doubling from RetryDelay up to MaxRetryDelay) while the others
// carry on; the failure shows in Status as LastError and as growing lag. (A
// failed read of the live feed fails every projection that waited for it.)
// Each projection resumes from its stored checkpoint, so Run may be called
// again after a restart. Run must not be called twice at once.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running != nil && r.running.Err() == nil {
		r.mu.Unlock()
		return errors.New("run projections: already running")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.running = ctx
	r.mu.Unlock()

	// The feed is this Run's: a Run started once this one's context has
	// ended gets its own, while this one's projectors wind down.
	feed := newLiveFeed(ctx, r.log, r.linger, len(r.order))
	defer feed.close()
	var wg sync.WaitGroup
	for _, n := range r.order {
		p := r.procs[n]
		wg.Go(func() { p.loop(ctx, feed) })
	}
	wg.Wait()
	r.pages.prefetches.Wait()
	return nil
}

// Status returns every projection's progress, in a fixed order.
func (r *Runner) Status(ctx context.Context) ([]ProjectionStatus, error) {
	head, err := r.log.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("projection status: %w", err)
	}
	out := make([]ProjectionStatus, 0, len(r.order))
	for _, n := range r.order {
		p := r.procs[n]
		p.mu.Lock()
		st := ProjectionStatus{
			Name: n, Checkpoint: p.checkpoint, Head: head, CatchingUp: !p.following, Rebuilding: p.rebuilding,
			RebuildCheckpoint: p.shadowCheckpoint, Rebuilds: p.rebuilds, LastError: p.lastErr,
			Failures: p.failures, RebuildError: p.rebuildErr,
		}
		loaded := p.loaded
		p.mu.Unlock()
		if !loaded {
			cp, err := r.store.Checkpoint(ctx, n)
			if err != nil {
				return nil, fmt.Errorf("projection status: %w", err)
			}
			st.Checkpoint = cp
		}
		if head > st.Checkpoint {
			st.LagEvents = uint64(head - st.Checkpoint)
			next, err := r.log.ReadAll(ctx, st.Checkpoint, 1)
			if err != nil {
				return nil, fmt.Errorf("projection status: %w", err)
			}
			if len(next) > 0 {
				st.LagSeconds = max(0, r.now().Sub(next[0].RecordedAt).Seconds())
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// StartRebuild starts rebuilding projection in the background (see
// Rebuild) and returns at once. It fails with ErrUnknownProjection,
// ErrRebuildInProgress, or ErrNotRunning when Run is not running.
func (r *Runner) StartRebuild(projection string) error {
	p, ok := r.procs[projection]
	if !ok {
		return fmt.Errorf("rebuild %q: %w", projection, ErrUnknownProjection)
	}
	r.mu.Lock()
	ctx := r.running
	r.mu.Unlock()
	if ctx == nil || ctx.Err() != nil {
		return fmt.Errorf("rebuild %q: %w", projection, ErrNotRunning)
	}
	if err := p.claimRebuild(); err != nil {
		return err
	}
	go func() { _ = p.rebuild(ctx) }()
	return nil
}

// Rebuild rebuilds projection from position 0 into shadow tables while the
// live tables keep answering and keep following the log; once the shadow has
// caught up, the projection's own goroutine applies the last few events to
// it and swaps it in (Store.CompleteRebuild), then continues live from the
// shadow's checkpoint. Rebuild returns when the swap is done, or with an
// error (the live view is then untouched). Run must be running, or it fails
// with ErrNotRunning; if Run stops midway, Rebuild waits for ctx.
func (r *Runner) Rebuild(ctx context.Context, projection string) error {
	p, ok := r.procs[projection]
	if !ok {
		return fmt.Errorf("rebuild %q: %w", projection, ErrUnknownProjection)
	}
	r.mu.Lock()
	running := r.running != nil && r.running.Err() == nil
	r.mu.Unlock()
	if !running {
		return fmt.Errorf("rebuild %q: %w", projection, ErrNotRunning)
	}
	if err := p.claimRebuild(); err != nil {
		return err
	}
	return p.rebuild(ctx)
}

// projector is the state of one projection.
type projector struct {
	name string
	r    *Runner

	mu               sync.Mutex
	loaded           bool
	following        bool // caught up: following live appends
	checkpoint       eventstore.Position
	rebuilding       bool
	shadowCheckpoint eventstore.Position
	rebuilds         int
	lastErr          string
	failures         int
	rebuildErr       string
	handoff          *handoff           // set by a rebuild that caught up
	interrupt        context.CancelFunc // cancels the live goroutine's wait
}

// handoff asks the live goroutine to finish and swap in a rebuild.
type handoff struct{ done chan error }

// loop runs the projection until ctx ends, retrying after failures.
func (p *projector) loop(ctx context.Context, feed *liveFeed) {
	delay := p.r.retry
	for {
		p.mu.Lock()
		before := p.checkpoint
		p.mu.Unlock()
		err := p.run(ctx, feed)
		if ctx.Err() != nil {
			return
		}
		p.mu.Lock()
		if p.checkpoint != before {
			delay = p.r.retry // it made progress: a new failure, not the same one
		}
		p.failures++
		p.lastErr = err.Error() // run returns nil only once ctx has ended
		p.mu.Unlock()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, p.r.maxRetry)
	}
}

func (p *projector) run(ctx context.Context, feed *liveFeed) error {
	cp, err := p.r.store.Checkpoint(ctx, p.name)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.checkpoint, p.loaded, p.following = cp, true, false
	p.mu.Unlock()

	// Catch up in large pages: Subscribe would hand out smaller batches.
	if cp, err = p.catchUp(ctx, p.name, cp, 0); err != nil {
		return err
	}
	p.mu.Lock()
	p.following = true
	p.mu.Unlock()
	for {
		if err := p.follow(ctx, feed, cp); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		p.mu.Lock()
		cp = p.checkpoint
		p.mu.Unlock()
	}
}

// catchUp applies pages to target (the projection or its shadow) from
// after, and returns the last position applied. It stops after a page
// shorter than BatchSize (the log's end was in sight: a subscription or a
// handoff takes over from there; waiting for an empty page would never end
// under a steady stream of appends), and, when atLeast > 0, not before
// reaching atLeast. Before it returns, a CatchUpFinisher store finishes
// target.
func (p *projector) catchUp(ctx context.Context, target string, after, atLeast eventstore.Position) (eventstore.Position, error) {
	for {
		b, err := p.r.pages.read(ctx, p.r.log, after)
		if err != nil {
			return after, err
		}
		evs := b.Records()
		if len(evs) > 0 {
			last := b.Last()
			if err := p.r.apply(ctx, target, b); err != nil {
				return after, err
			}
			after = last
			p.advanced(target, last)
		}
		if len(evs) < BatchSize && after >= atLeast {
			if f, ok := p.r.store.(CatchUpFinisher); ok {
				if err := f.FinishCatchUp(ctx, target); err != nil {
					return after, err
				}
			}
			return after, nil
		}
		if len(evs) == 0 {
			// atLeast is beyond the log's end: it cannot be, positions
			// come from this log. Do not spin.
			return after, fmt.Errorf("catch up %s: log ends at %d, before %d", target, after, atLeast)
		}
	}
}

func (p *projector) advanced(target string, pos eventstore.Position) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if target == p.name {
		p.checkpoint = pos
		p.lastErr = ""
	} else {
		p.shadowCheckpoint = pos
	}
}

// follow applies the live feed's batches from cp on (pages of the log while
// it is behind what the feed holds). It returns nil (to be called again
// from the current checkpoint) after a rebuild was swapped in, or when ctx
// ends.
func (p *projector) follow(ctx context.Context, feed *liveFeed, cp eventstore.Position) error {
	for {
		p.mu.Lock()
		if h := p.handoff; h != nil {
			p.handoff = nil
			p.mu.Unlock()
			h.done <- p.swap(ctx)
			return nil
		}
		waitCtx, cancel := context.WithCancel(ctx)
		p.interrupt = cancel
		p.mu.Unlock()

		b, err := feed.next(waitCtx, p.name, cp)
		interrupted := err != nil && waitCtx.Err() != nil
		cancel()
		p.mu.Lock()
		p.interrupt = nil
		p.mu.Unlock()
		switch {
		case ctx.Err() != nil:
			return nil
		case interrupted:
			// Interrupted for a handoff, which the loop's top takes:
			// the feed's read goes on without this projector.
			continue
		case err != nil:
			return err
		}
		if b == nil {
			// Behind what the feed holds: a page of the log.
			if b, err = p.r.pages.read(ctx, p.r.log, cp); err != nil {
				return err
			}
			if len(b.Records()) == 0 {
				return fmt.Errorf("follow %s: the log holds nothing after %d, behind the live feed", p.name, cp)
			}
		}
		if err := p.r.apply(ctx, p.name, b); err != nil {
			return err
		}
		cp = b.Last()
		p.advanced(p.name, cp)
	}
}

// apply applies b up to its last event to target, as a Batch when the store
// takes one.
func (r *Runner) apply(ctx context.Context, target string, b *Batch) error {
	if r.batches != nil {
		return r.batches.ApplyBatch(ctx, target, b, b.Last())
	}
	return r.store.Apply(ctx, target, b.Records(), b.Last())
}

// swap runs on the live goroutine, so the live checkpoint stands still: it
// brings the shadow at least level with the live view (so the swap never
// makes the view older) and swaps it in.
func (p *projector) swap(ctx context.Context) error {
	shadow := Shadow(p.name)
	cp, err := p.r.store.Checkpoint(ctx, shadow)
	if err != nil {
		return err
	}
	p.mu.Lock()
	live := p.checkpoint
	p.mu.Unlock()
	if cp, err = p.catchUp(ctx, shadow, cp, live); err != nil {
		return err
	}
	if err := p.r.store.CompleteRebuild(ctx, p.name); err != nil {
		return err
	}
	p.mu.Lock()
	p.checkpoint = cp
	p.mu.Unlock()
	return nil
}

func (p *projector) claimRebuild() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rebuilding {
		return fmt.Errorf("rebuild %q: %w", p.name, ErrRebuildInProgress)
	}
	p.rebuilding, p.shadowCheckpoint = true, 0
	return nil
}

func (p *projector) rebuild(ctx context.Context) (err error) {
	defer func() {
		p.mu.Lock()
		p.rebuilding = false
		if err == nil {
			p.rebuilds++
			p.rebuildErr = ""
		} else if ctx.Err() == nil {
			p.rebuildErr = err.Error()
		}
		p.mu.Unlock()
	}()
	if err := p.r.store.BeginRebuild(ctx, p.name); err != nil {
		return fmt.Errorf("rebuild %s: %w", p.name, err)
	}
	if _, err := p.catchUp(ctx, Shadow(p.name), 0, 0); err != nil {
		return fmt.Errorf("rebuild %s: %w", p.name, err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	h := &handoff{done: make(chan error, 1)}
	p.mu.Lock()
	p.handoff = h
	if p.interrupt != nil {
		p.interrupt()
	}
	p.mu.Unlock()
	select {
	case err := <-h.done:
		if err != nil {
			return fmt.Errorf("rebuild %s: swap: %w", p.name, err)
		}
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		if p.handoff == h {
			p.handoff = nil
		}
		p.mu.Unlock()
		return ctx.Err()
	}
}
