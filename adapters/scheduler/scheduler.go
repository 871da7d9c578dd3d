// Package scheduler releases scheduled notifications when their
// scheduled_at comes: it plans their deliveries through commands (Release),
// after which the dispatcher delivers them like any other.
//
// It recovers what waits from the notifications projection at start
// (status scheduled) and follows the log after that projection's
// checkpoint for new scheduled sends, through a watermill router like the
// dispatcher's intake; the waiting ones sit in a timer heap. The schedule
// lives in the events (the request's scheduled_at), so a restart loses
// nothing, and releasing twice plans nothing twice: the domain refuses to
// plan a planned notification. Retries are not its job: the dispatcher
// keeps their due times itself.
package scheduler

import (
	"bytes"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
)

// Releaser plans a due notification; *commands.ReleaseHandler.
type Releaser interface {
	Handle(ctx context.Context, cmd commands.Release) (commands.ReleaseResult, error)
}

// Backlog lists the notifications waiting for their time as of a
// checkpoint of the notifications projection.
type Backlog interface {
	ScheduledNotifications(ctx context.Context, fn func(id domain.NotificationID, due time.Time) error) (eventstore.Position, error)
}

// Config configures a Scheduler. Releaser, Backlog and Follow are
// required.
type Config struct {
	Releaser Releaser
	Backlog  Backlog
	// Follow returns a subscriber whose topic "notification" yields every
	// notification event after the given position, the event type under
	// metadata key "type" and the stream under "stream" (infra/logbus).
	Follow  func(ctx context.Context, after eventstore.Position) (message.Subscriber, error)
	Workers int // releases at once; default 8
	Actor   string
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Scheduler is the schedule role.
type Scheduler struct {
	cfg Config

	mu    sync.Mutex
	queue dueHeap
	held  map[domain.NotificationID]bool
	wake  chan struct{}
}

// New returns a Scheduler, or an error naming every missing dependency.
func New(cfg Config) (*Scheduler, error) {
	var errs []error
	if cfg.Releaser == nil {
		errs = append(errs, errors.New("nil Releaser"))
	}
	if cfg.Backlog == nil {
		errs = append(errs, errors.New("nil Backlog"))
	}
	if cfg.Follow == nil {
		errs = append(errs, errors.New("nil Follow"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new scheduler: %w", err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.Actor == "" {
		cfg.Actor = "scheduler"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, held: map[domain.NotificationID]bool{}, wake: make(chan struct{}, 1)}, nil
}

// add queues a release; a notification is held once.
func (s *Scheduler) add(id domain.NotificationID, due time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[id] {
		return
	}
	s.held[id] = true
	heap.Push(&s.queue, dueItem{id: id, due: due})
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Waiting returns how many notifications wait for their time.
func (s *Scheduler) Waiting() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Run recovers, follows the log and releases notifications as they fall
// due, until ctx ends; releases under way finish first. ready, when not
// nil, is closed once the backlog is recovered and the log followed.
func (s *Scheduler) Run(ctx context.Context, ready chan<- struct{}) error {
	pos, err := s.cfg.Backlog.ScheduledNotifications(ctx, func(id domain.NotificationID, due time.Time) error {
		s.add(id, due)
		return nil
	})
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scheduler: recover: %w", err)
	}
	s.cfg.Logger.Info("scheduler recovered", "waiting", s.Waiting(), "position", uint64(pos))
	events, err := s.cfg.Follow(ctx, pos)
	if err != nil {
		return fmt.Errorf("scheduler: follow the log: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NewSlogLogger(s.cfg.Logger))
	if err != nil {
		return err
	}
	router.AddMiddleware(middleware.CorrelationID, middleware.Recoverer)
	router.AddConsumerHandler("scheduler-intake", "notification", events, s.intake)

	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-router.Running():
	case err := <-runErr:
		return fmt.Errorf("scheduler: router: %w", err)
	}
	if ready != nil {
		close(ready)
	}
	var wg sync.WaitGroup
	due := make(chan domain.NotificationID)
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range due {
				s.release(context.WithoutCancel(ctx), id)
			}
		}()
	}
	s.loop(ctx, due)
	close(due)
	wg.Wait()
	closeErr := router.Close()
	<-runErr
	return closeErr
}

// loop hands due notifications to the workers until ctx ends.
func (s *Scheduler) loop(ctx context.Context, due chan<- domain.NotificationID) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		var next *dueItem
		if len(s.queue) > 0 {
			next = &s.queue[0]
		}
		wait := time.Hour
		if next != nil {
			wait = next.due.Sub(s.cfg.Clock())
		}
		if next != nil && wait <= 0 {
			it := heap.Pop(&s.queue).(dueItem)
			s.mu.Unlock()
			select {
			case due <- it.id:
				continue
			case <-ctx.Done():
				return
			}
		}
		s.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *Scheduler) release(ctx context.Context, id domain.NotificationID) {
	res, err := s.cfg.Releaser.Handle(ctx, commands.Release{Origin: commands.Origin{Actor: s.cfg.Actor}, ID: id})
	s.mu.Lock()
	delete(s.held, id)
	s.mu.Unlock()
	switch {
	case errors.Is(err, domain.ErrNotDue) && !res.DueAt.IsZero():
		s.add(id, res.DueAt) // our clock ran ahead of the writer's
	case err == nil && !res.Released && !res.DueAt.IsZero():
		s.add(id, res.DueAt) // held again (quiet hours)
	case err != nil:
		// A failed append (the log unavailable) must not lose the
		// release: try again shortly.
		s.cfg.Logger.Error("release failed; retrying", "notification", id, "err", err)
		s.add(id, s.cfg.Clock().Add(time.Second))
	}
}

// Types are the event types the scheduler reads from what Follow gives
// it; a subscription may leave the others out (logbus.SubscriberConfig.Types).
func Types() []string {
	return []string{domain.TypeNotificationRequested, domain.TypeNotificationHeld}
}

// intake queues scheduled sends as their requests appear in the log.
func (s *Scheduler) intake(msg *message.Message) error {
	typ := msg.Metadata.Get("type")
	if typ != domain.TypeNotificationRequested && typ != domain.TypeNotificationHeld {
		return nil
	}
	if typ == domain.TypeNotificationRequested && !bytes.Contains(msg.Payload, []byte(`"scheduled_at"`)) {
		return nil // most sends are due now: no need to decode them
	}
	id, ok := strings.CutPrefix(msg.Metadata.Get("stream"), domain.NotificationStream(""))
	if !ok {
		return nil
	}
	e, err := domain.UnmarshalEvent(typ, msg.Payload)
	if err != nil {
		s.cfg.Logger.Error("scheduler intake: undecodable event skipped", "notification", id, "err", err)
		return nil
	}
	switch ev := e.(type) {
	case domain.NotificationRequested:
		if ev.Request.ScheduledAt == nil || !ev.Request.ScheduledAt.After(ev.RequestedAt) {
			return nil // planned with the request itself
		}
		s.add(domain.NotificationID(id), *ev.Request.ScheduledAt)
	case domain.NotificationHeld:
		s.add(domain.NotificationID(id), ev.Until)
	}
	return nil
}

type dueItem struct {
	id  domain.NotificationID
	due time.Time
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
