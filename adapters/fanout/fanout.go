package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// Item is one notification to create: the request for RecipientID, with
// the idempotency key that makes creating it twice impossible.
type Item struct {
	RecipientID    string
	Request        domain.NotificationRequest
	IdempotencyKey string
}

// ItemResult is the fate of one item: the notification's ID, or Err when
// the item was refused (a permanent, per-item failure such as an invalid
// request). A repeat of an earlier item is a success with the original ID.
type ItemResult struct {
	NotificationID string
	Err            error
}

// Sender creates notifications. SendBatch returns one result per item, in
// order; an error means the call as a whole failed (the log unavailable)
// and is retried. commands.SendBatchHandler, adapted, is the production
// Sender.
type Sender interface {
	SendBatch(ctx context.Context, items []Item) ([]ItemResult, error)
}

// Ledger is the batch and group side the engine reads and records
// progress through; *groups.Service.
type Ledger interface {
	Batch(ctx context.Context, id domain.BatchID) (domain.Batch, error)
	GroupAt(ctx context.Context, id domain.GroupID, version int) (domain.Group, error)
	RecordProgress(ctx context.Context, actor string, id domain.BatchID, done, failed int) (domain.Batch, error)
	CompleteBatch(ctx context.Context, actor string, id domain.BatchID) (domain.Batch, error)
}

// DefaultChunkSize is how many items go to the Sender at once when Config
// leaves it zero. Larger chunks cost fewer progress events and group
// commits (a 100,000-member fan-out, medians of 3 here: 1,000 → 9.9 s,
// 2,000 → 9.1 s, 4,000 → 8.2 s), but one chunk is one transaction of the
// log, which other appends wait behind, and a crash redoes up to InFlight
// of them; 2,000 is the middle ground.
const DefaultChunkSize = 2000

// Config configures an Engine. Store, Ledger and Sender are required.
type Config struct {
	Store  eventstore.Store
	Ledger Ledger
	Sender Sender
	// ChunkSize is the items per SendBatch call and per FanOutProgressed.
	ChunkSize int
	// Workers is how many batches fan out at once; default 2.
	Workers int
	// InFlight is how many chunks of one batch are being sent at once;
	// default 2 (one planned while the one before is written).
	InFlight int
	// Actor is recorded on the progress events; default "fanout".
	Actor string
	// RetryDelay is the wait after a failed chunk; default 1 s.
	RetryDelay time.Duration
	Logger     *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ChunkSize <= 0 {
		c.ChunkSize = DefaultChunkSize
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.InFlight <= 0 {
		c.InFlight = 2
	}
	if c.Actor == "" {
		c.Actor = "fanout"
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every missing dependency.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("nil Store"))
	}
	if c.Ledger == nil {
		errs = append(errs, errors.New("nil Ledger"))
	}
	if c.Sender == nil {
		errs = append(errs, errors.New("nil Sender"))
	}
	return errors.Join(errs...)
}

// Engine is the fan-out role. Run it once per process.
type Engine struct {
	cfg Config

	mu     sync.Mutex
	queued map[domain.BatchID]bool // queued or being worked on
	again  map[domain.BatchID]bool // news arrived while it was worked on
	queue  chan domain.BatchID
}

// New returns an Engine, or an error naming every missing dependency.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new fan-out engine: %w", err)
	}
	cfg.setDefaults()
	return &Engine{cfg: cfg, queued: map[domain.BatchID]bool{}, again: map[domain.BatchID]bool{}, queue: make(chan domain.BatchID, 1024)}, nil
}

// Plan returns the items for recipients[from:to] of batch b. It is the
// engine's per-chunk planning, exported for benchmarks and tests.
func Plan(b domain.Batch, recipients []string, from, to int) []Item {
	items := make([]Item, 0, to-from)
	for _, r := range recipients[from:to] {
		items = append(items, Item{RecipientID: r, Request: b.MemberRequest(r), IdempotencyKey: domain.BatchItemKey(b.ID(), r)})
	}
	return items
}

// Run follows the log and fans out batches until ctx ends; a chunk under
// way when ctx ends is abandoned without recording progress (it is redone,
// harmlessly, next time). ready, when not nil, is closed once the log
// is followed. It returns nil when ctx ends.
func (e *Engine) Run(ctx context.Context, ready chan<- struct{}) error {
	sub, err := e.cfg.Store.Subscribe(ctx, 0)
	if err != nil {
		return fmt.Errorf("fan-out: follow the log: %w", err)
	}
	defer sub.Close()
	if ready != nil {
		close(ready)
	}
	var wg sync.WaitGroup
	for range e.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case id := <-e.queue:
					e.run(ctx, id)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	defer wg.Wait()
	for {
		recs, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fan-out: follow the log: %w", err)
		}
		for _, rec := range recs {
			// Requests and approvals can make a batch runnable; the worker
			// loads the stream and decides, so this is only a hint.
			if !strings.HasPrefix(rec.Stream, "batch-") ||
				(rec.Type != domain.TypeBatchRequested && rec.Type != domain.TypeBatchApproved) {
				continue
			}
			e.enqueue(ctx, domain.BatchID(strings.TrimPrefix(rec.Stream, "batch-")))
		}
	}
}

func (e *Engine) enqueue(ctx context.Context, id domain.BatchID) {
	e.mu.Lock()
	if e.queued[id] {
		// A worker may be deciding on what it read before this news (an
		// approval): it looks again when it is done.
		e.again[id] = true
		e.mu.Unlock()
		return
	}
	e.queued[id] = true
	e.mu.Unlock()
	select {
	case e.queue <- id:
	case <-ctx.Done():
	}
}

func (e *Engine) run(ctx context.Context, id domain.BatchID) {
	defer func() {
		e.mu.Lock()
		delete(e.queued, id)
		delete(e.again, id)
		e.mu.Unlock()
	}()
	for ctx.Err() == nil {
		err := e.fanOut(ctx, id)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			e.mu.Lock()
			more := e.again[id]
			delete(e.again, id)
			e.mu.Unlock()
			if !more {
				return
			}
			continue
		}
		e.cfg.Logger.Error("fan-out failed; retrying", "batch", id, "err", err)
		select {
		case <-time.After(e.cfg.RetryDelay):
		case <-ctx.Done():
		}
	}
}

// fanOut walks batch id from its cursor to the end. It returns nil when
// the batch is done or not runnable.
func (e *Engine) fanOut(ctx context.Context, id domain.BatchID) error {
	b, err := e.cfg.Ledger.Batch(ctx, id)
	if err != nil {
		return err
	}
	if !b.Runnable() {
		return nil
	}
	recipients := b.Recipients()
	if gid, version := b.Group(); gid != "" {
		g, err := e.cfg.Ledger.GroupAt(ctx, gid, version)
		if err != nil {
			return err
		}
		recipients = g.Members()
	}
	if len(recipients) != b.Size() {
		return fmt.Errorf("batch %s: %d recipients found for size %d", id, len(recipients), b.Size())
	}
	done, failed := b.Progress()
	// Chunks are sent InFlight at a time — the next one is planned while
	// the log writes the one before — and their progress is recorded in
	// order, each once the chunks up to it are in. A crash or an error
	// leaves the cursor at the last chunk recorded; a chunk sent beyond it
	// is sent again on resume, and its idempotency keys make every item of
	// it a repeat, not a second notification.
	chunkCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var pending []*chunk
	defer func() {
		cancel()
		for _, c := range pending {
			<-c.done
		}
	}()
	next := done
	for done < len(recipients) {
		for len(pending) < e.cfg.InFlight && next < len(recipients) && ctx.Err() == nil {
			end := min(next+e.cfg.ChunkSize, len(recipients))
			c := &chunk{from: next, end: end, items: Plan(b, recipients, next, end), done: make(chan struct{})}
			go func() {
				defer close(c.done)
				c.results, c.err = e.cfg.Sender.SendBatch(chunkCtx, c.items)
			}()
			pending = append(pending, c)
			next = end
		}
		if len(pending) == 0 {
			return ctx.Err() // ended before the next chunk was started
		}
		c := pending[0]
		<-c.done
		pending = pending[1:]
		if c.err != nil {
			return fmt.Errorf("batch %s: send items %d to %d: %w", id, c.from, c.end, c.err)
		}
		if len(c.results) != len(c.items) {
			return fmt.Errorf("batch %s: %d results for %d items", id, len(c.results), len(c.items))
		}
		for i, r := range c.results {
			if r.Err != nil {
				failed++
				e.cfg.Logger.Warn("fan-out item refused", "batch", id, "recipient", c.items[i].RecipientID, "err", r.Err)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if b, err = e.cfg.Ledger.RecordProgress(ctx, e.cfg.Actor, id, c.end, failed); err != nil {
			return err
		}
		done, failed = b.Progress()
		if done != c.end {
			// Another process recorded progress of its own (two fan-out
			// workers on one batch): start again from what the log says.
			return fmt.Errorf("batch %s: progress at %d after recording %d; starting again from the log", id, done, c.end)
		}
	}
	_, err = e.cfg.Ledger.CompleteBatch(ctx, e.cfg.Actor, id)
	return err
}

// chunk is one SendBatch call of a fan-out under way.
type chunk struct {
	from, end int
	items     []Item
	results   []ItemResult
	err       error
	done      chan struct{}
}
