package recurring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"herald/adapters/fanout"
	"herald/commands/schedules"
	"herald/domain"
	"herald/infra/eventstore"
)

// Ledger is the schedule side the engine reads and records firings
// through; *schedules.Service.
type Ledger interface {
	Get(ctx context.Context, id domain.ScheduleID) (domain.Schedule, error)
	Recurrence(sc domain.Schedule) (domain.Recurrence, error)
	Fire(ctx context.Context, actor string, id domain.ScheduleID, at time.Time) (schedules.Result, error)
}

// Config configures an Engine. Store, Ledger and Sender are required.
type Config struct {
	Store  eventstore.Store
	Ledger Ledger
	// Sender creates the notifications, one item per firing.
	Sender fanout.Sender
	// Clock is the time source; default time.Now.
	Clock func() time.Time
	// PollInterval bounds how late a firing can be; default 1 s.
	PollInterval time.Duration
	// MisfireGrace is how late a firing may still be sent as such; older
	// due firings are collapsed into the latest due one. Default 1 min.
	MisfireGrace time.Duration
	// Actor is recorded on ScheduleFired; default "recurring".
	Actor  string
	Logger *slog.Logger
}

// Engine is the firing role. Run it once per process.
type Engine struct {
	cfg  Config
	next map[domain.ScheduleID]time.Time // active schedules' next firing
	seen map[domain.ScheduleID]bool      // recovered (last firing re-sent)
	// unsent are firings recorded whose send failed, retried every tick.
	unsent map[domain.ScheduleID]time.Time
}

// New returns an Engine, or an error naming every missing dependency.
func New(cfg Config) (*Engine, error) {
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("nil Store"))
	}
	if cfg.Ledger == nil {
		errs = append(errs, errors.New("nil Ledger"))
	}
	if cfg.Sender == nil {
		errs = append(errs, errors.New("nil Sender"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new recurring engine: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MisfireGrace <= 0 {
		cfg.MisfireGrace = time.Minute
	}
	if cfg.Actor == "" {
		cfg.Actor = "recurring"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, next: map[domain.ScheduleID]time.Time{}, seen: map[domain.ScheduleID]bool{}, unsent: map[domain.ScheduleID]time.Time{}}, nil
}

// Run follows the log and fires schedules until ctx ends (then it returns
// nil). ready, when not nil, is closed once the log up to its head at start
// has been read and the schedules in it recovered.
func (e *Engine) Run(ctx context.Context, ready chan<- struct{}) error {
	head, err := e.cfg.Store.Head(ctx)
	if err != nil {
		return fmt.Errorf("recurring: head: %w", err)
	}
	sub, err := e.cfg.Store.Subscribe(ctx, 0)
	if err != nil {
		return fmt.Errorf("recurring: follow the log: %w", err)
	}
	defer sub.Close()
	type batch struct {
		recs []eventstore.RecordedEvent
		err  error
	}
	feed := make(chan batch)
	go func() {
		for {
			recs, err := sub.Next(ctx)
			select {
			case feed <- batch{recs, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	if head == 0 && ready != nil {
		close(ready)
		ready = nil
	}
	tick := time.NewTicker(e.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-feed:
			if b.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("recurring: follow the log: %w", b.err)
			}
			touched := map[domain.ScheduleID]bool{}
			for _, rec := range b.recs {
				if id, ok := strings.CutPrefix(rec.Stream, "schedule-"); ok {
					touched[domain.ScheduleID(id)] = true
				}
			}
			for id := range touched {
				e.refresh(ctx, id)
			}
			if ready != nil && b.recs[len(b.recs)-1].Position >= head {
				close(ready)
				ready = nil
			}
		case <-tick.C:
		}
		e.fireDue(ctx)
	}
}

// refresh reloads schedule id and its next firing; the first time it sees
// a schedule that fired before, it re-sends that firing.
func (e *Engine) refresh(ctx context.Context, id domain.ScheduleID) {
	sc, err := e.cfg.Ledger.Get(ctx, id)
	if err != nil {
		if !errors.Is(err, domain.ErrScheduleNotFound) {
			e.cfg.Logger.Error("recurring: load schedule", "schedule", id, "err", err)
		}
		delete(e.next, id)
		return
	}
	if !e.seen[id] {
		e.seen[id] = true
		if last := sc.LastFiring(); !last.IsZero() {
			e.send(ctx, sc, last)
		}
	}
	e.schedule(sc)
}

func (e *Engine) schedule(sc domain.Schedule) {
	r, err := e.cfg.Ledger.Recurrence(sc)
	next := time.Time{}
	if err == nil {
		next = sc.NextFiring(r)
	}
	if next.IsZero() {
		delete(e.next, sc.ID())
		return
	}
	e.next[sc.ID()] = next
}

func (e *Engine) fireDue(ctx context.Context) {
	now := e.cfg.Clock()
	for id, at := range e.unsent {
		sc, err := e.cfg.Ledger.Get(ctx, id)
		if err == nil {
			e.send(ctx, sc, at)
		}
	}
	for id, due := range e.next {
		if due.After(now) || ctx.Err() != nil {
			continue
		}
		if now.Sub(due) > e.cfg.MisfireGrace {
			due = e.latestDue(ctx, id, due, now)
		}
		res, err := e.cfg.Ledger.Fire(ctx, e.cfg.Actor, id, due)
		switch {
		case errors.Is(err, domain.ErrNotDue):
			continue // our clock runs ahead of the writer's; next tick
		case err != nil:
			e.cfg.Logger.Error("recurring: record firing", "schedule", id, "at", due, "err", err)
			e.refresh(ctx, id)
			continue
		}
		e.send(ctx, res.Schedule, due)
		e.schedule(res.Schedule)
	}
}

// latestDue returns the last firing of id at or before now, starting from
// due (bounded, so a minute cron missed for a year costs one walk).
func (e *Engine) latestDue(ctx context.Context, id domain.ScheduleID, due, now time.Time) time.Time {
	sc, err := e.cfg.Ledger.Get(ctx, id)
	if err != nil {
		return due
	}
	r, err := e.cfg.Ledger.Recurrence(sc)
	if err != nil {
		return due
	}
	for range 1_000_000 {
		next := r.NextFiring(due)
		if next.IsZero() || next.After(now) {
			break
		}
		due = next
	}
	return due
}

// send hands the firing's notification to the Sender; a failure leaves it
// in unsent for the next tick.
func (e *Engine) send(ctx context.Context, sc domain.Schedule, at time.Time) {
	req := sc.Request()
	item := fanout.Item{RecipientID: req.Recipient.ID, Request: req, IdempotencyKey: domain.ScheduleFiringKey(sc.ID(), at)}
	res, err := e.cfg.Sender.SendBatch(ctx, []fanout.Item{item})
	switch {
	case err != nil:
		e.cfg.Logger.Error("recurring: send failed; retrying", "schedule", sc.ID(), "at", at, "err", err)
		e.unsent[sc.ID()] = at
		return
	case len(res) == 1 && res[0].Err != nil:
		// Refused for good (the request no longer validates): retrying
		// would not help.
		e.cfg.Logger.Error("recurring: notification refused", "schedule", sc.ID(), "at", at, "err", res[0].Err)
	}
	if u, ok := e.unsent[sc.ID()]; ok && !u.After(at) {
		delete(e.unsent, sc.ID())
	}
}
