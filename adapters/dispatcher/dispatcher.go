package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"herald/adapters/channel"
	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// Attempts records attempts and outcomes; *commands.AttemptHandler is the
// implementation.
type Attempts interface {
	Start(ctx context.Context, cmd commands.StartAttempt) (commands.StartAttemptResult, error)
	Record(ctx context.Context, cmd commands.RecordOutcome) (commands.RecordOutcomeResult, error)
}

// Renderer renders a notification's pinned template version for one
// channel; commands/templates.Service is the implementation.
type Renderer interface {
	Render(ctx context.Context, ref domain.TemplateRef, ch domain.Channel) (domain.RenderedContent, error)
}

// Backlog is where the dispatcher recovers its work at start:
// projections.DeliveryBacklog.
type Backlog = projections.DeliveryBacklog

// ChannelConfig is one channel's sender and limits.
type ChannelConfig struct {
	Sender channel.Sender
	// Concurrency is how many attempts on the channel run at once.
	// Default 32.
	Concurrency int
	// AddressConcurrency is how many of them may go to one address at
	// once on the channels whose every address is an account of its own
	// (webhook, Slack, DingTalk, WeCom, web push): a receiver that hangs
	// until its timeout then holds that many workers, not all of them.
	// Default Concurrency/8 (at least 1). The other channels send every
	// delivery to one provider account, which Concurrency bounds: they
	// ignore it.
	AddressConcurrency int
	// Rate is the most attempts per second the channel (its provider
	// account) may start; 0 means no limit. Burst defaults to Rate.
	Rate  float64
	Burst int
	// Timeout bounds one attempt, the provider's answer included. Default
	// 10 s.
	Timeout time.Duration
	// ThrottlePause is how long the provider account stops when it says
	// "too many requests" without a Retry-After. Default 1 s. On the
	// webhook, chat and web push channels each address is its own
	// account, and only that address stops; on email and SMS the whole
	// channel does.
	ThrottlePause time.Duration
	// MaxPause caps how long one provider answer may stop the whole
	// channel (default 1 min); a pause of one address is capped by
	// Retry.Max. The delivery itself still waits the full Retry-After
	// before its retry.
	MaxPause time.Duration
	Retry    RetryPolicy
}

// Config configures a Dispatcher. Attempts, Backlog, Follow and at least
// one channel are required.
type Config struct {
	Attempts Attempts
	Backlog  Backlog
	// Follow returns a subscriber of the event log whose topic
	// "notification" yields every notification event after the given
	// position, with the event type in the metadata key "type" (the
	// infra/logbus contract).
	Follow   func(ctx context.Context, after eventstore.Position) (message.Subscriber, error)
	Channels map[domain.Channel]ChannelConfig
	// Renderer renders templated notifications; nil means they fail,
	// permanently, saying so.
	Renderer Renderer
	Weights  LaneWeights
	// Lease is how long an attempt keeps its claim on a delivery without
	// an outcome; after it another worker (after a crash, this process on
	// restart) may try again. It must exceed every channel's Timeout.
	// Default: the longest Timeout plus 5 s.
	Lease time.Duration
	// CloseTimeout bounds how long shutdown waits for attempts in flight
	// to finish and record their outcomes. Default: Lease.
	CloseTimeout time.Duration
	// NackDelay is how long a delivery whose outcome could not be recorded
	// waits before it is tried again. Default 1 s.
	NackDelay time.Duration
	Actor     string // recorded on the events; default "dispatcher"
	Clock     func() time.Time
	Logger    *slog.Logger
	// Registerer receives the dispatcher's and the router's metrics; nil
	// means none.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Weights == (LaneWeights{}) {
		c.Weights = DefaultLaneWeights
	}
	if c.Actor == "" {
		c.Actor = "dispatcher"
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.NackDelay == 0 {
		c.NackDelay = time.Second
	}
	longest := time.Duration(0)
	for ch, cc := range c.Channels {
		if cc.Concurrency == 0 {
			cc.Concurrency = 32
		}
		switch {
		case !addressScoped[ch] && cc.AddressConcurrency > 0:
			cc.AddressConcurrency = 0 // one provider account: Concurrency bounds it
		case addressScoped[ch] && cc.AddressConcurrency == 0:
			cc.AddressConcurrency = max(1, cc.Concurrency/8)
		}
		if cc.Burst == 0 {
			cc.Burst = max(1, int(cc.Rate))
		}
		if cc.Timeout == 0 {
			cc.Timeout = 10 * time.Second
		}
		if cc.ThrottlePause == 0 {
			cc.ThrottlePause = time.Second
		}
		if cc.MaxPause == 0 {
			cc.MaxPause = time.Minute
		}
		cc.Retry.setDefaults()
		c.Channels[ch] = cc
		longest = max(longest, cc.Timeout)
	}
	if c.Lease == 0 {
		c.Lease = longest + 5*time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = c.Lease
	}
}

// Validate reports every missing or inconsistent field.
func (c Config) Validate() error {
	var errs []error
	if c.Attempts == nil {
		errs = append(errs, errors.New("nil Attempts"))
	}
	if c.Backlog == nil {
		errs = append(errs, errors.New("nil Backlog"))
	}
	if c.Follow == nil {
		errs = append(errs, errors.New("nil Follow"))
	}
	if len(c.Channels) == 0 {
		errs = append(errs, errors.New("no channel configured"))
	}
	for ch, cc := range c.Channels {
		if !ch.Valid() {
			errs = append(errs, fmt.Errorf("unknown channel %q", ch))
		}
		if cc.Sender == nil {
			errs = append(errs, fmt.Errorf("channel %s: nil Sender", ch))
		}
		if cc.Concurrency < 1 || cc.Rate < 0 || cc.Timeout <= 0 {
			errs = append(errs, fmt.Errorf("channel %s: concurrency must be ≥ 1, rate ≥ 0, timeout > 0", ch))
		}
		if cc.AddressConcurrency < 0 {
			errs = append(errs, fmt.Errorf("channel %s: address concurrency %d must be ≥ 1, or 0 for the default", ch, cc.AddressConcurrency))
		}
		if cc.Timeout >= c.Lease {
			errs = append(errs, fmt.Errorf("channel %s: timeout %s must be shorter than the lease %s", ch, cc.Timeout, c.Lease))
		}
		if err := cc.Retry.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("channel %s: %w", ch, err))
		}
	}
	for i, w := range c.Weights {
		if w < 1 {
			errs = append(errs, fmt.Errorf("lane weight %d must be ≥ 1 (no lane may starve)", i))
		}
	}
	return errors.Join(errs...)
}

// Dispatcher delivers what the ledger owes: it recovers pending deliveries
// from the backlog projection, follows the log for new ones, and runs one
// watermill router handler per channel whose messages come from the
// priority lanes. Every attempt and outcome goes through Attempts.
type Dispatcher struct {
	cfg     Config
	logger  *slog.Logger
	sched   *scheduler
	lanes   *laneSubscriber
	limits  map[domain.Channel]*limiter
	pauses  addressPauses // on address-scoped channels, instead of limits' pauses
	metrics dispatcherMetrics
	intake  *intake
}

// New returns a Dispatcher, or an error naming every problem of cfg.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Channels != nil {
		cfg.Channels = maps.Clone(cfg.Channels)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new dispatcher: %w", err)
	}
	d := &Dispatcher{cfg: cfg, logger: cfg.Logger, limits: map[domain.Channel]*limiter{}}
	conc, perAddress := map[domain.Channel]int{}, map[domain.Channel]int{}
	var chans []domain.Channel
	for ch, cc := range cfg.Channels {
		chans = append(chans, ch)
		conc[ch], perAddress[ch] = cc.Concurrency, cc.AddressConcurrency
		d.limits[ch] = newLimiter(cc.Rate, cc.Burst)
	}
	slices.Sort(chans)
	d.sched = newScheduler(cfg.Clock, cfg.Weights, chans, d.limits, perAddress)
	d.lanes = newLaneSubscriber(d.sched, conc, cfg.NackDelay, watermill.NewSlogLogger(cfg.Logger))
	d.metrics = newDispatcherMetrics(cfg.Registerer, d.sched)
	d.intake = newIntake(d.sched, cfg.Logger, d.metrics)
	return d, nil
}

// Run recovers the backlog, then delivers until ctx ends. On ctx's end it
// stops taking work, lets the attempts in flight finish within
// CloseTimeout and record their outcomes, and returns nil. ready, when not
// nil, is closed once the backlog is recovered and the router runs.
func (d *Dispatcher) Run(ctx context.Context, ready chan<- struct{}) error {
	recovered := 0
	pos, err := d.cfg.Backlog.PendingDeliveries(ctx, func(p projections.PendingDelivery) error {
		w := work{notification: p.NotificationID, delivery: p.DeliveryID, channel: p.Channel, priority: p.Priority, due: p.DueAt,
			address: p.Address}
		if p.Status == domain.DeliveryStatusInFlight && w.due.IsZero() {
			// An attempt without a lease: it can only be settled by its
			// own outcome, which the log will bring if it comes.
			return nil
		}
		if d.sched.add(w) {
			recovered++
		} else {
			d.metrics.unroutable.WithLabelValues(string(w.channel)).Inc()
		}
		return nil
	})
	if ctx.Err() != nil {
		return nil // stopped before it started: nothing was taken
	}
	if err != nil {
		return fmt.Errorf("dispatcher: recover backlog: %w", err)
	}
	d.logger.Info("dispatcher backlog recovered", "deliveries", recovered, "position", uint64(pos))
	events, err := d.cfg.Follow(ctx, pos)
	if err != nil {
		return fmt.Errorf("dispatcher: follow the log: %w", err)
	}

	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: d.cfg.CloseTimeout}, watermill.NewSlogLogger(d.logger))
	if err != nil {
		return fmt.Errorf("dispatcher: %w", err)
	}
	router.AddMiddleware(
		middleware.CorrelationID,
		middleware.Recoverer,
	)
	if d.cfg.Registerer != nil {
		metrics.NewPrometheusMetricsBuilder(d.cfg.Registerer, "herald", "dispatcher").AddPrometheusRouterMetrics(router)
	}
	router.AddConsumerHandler("dispatcher-intake", intakeTopic, events, d.intake.handle)
	for ch, cc := range d.cfg.Channels {
		h := router.AddConsumerHandler("deliver-"+string(ch), deliverTopic(ch), d.lanes, d.attempt)
		// The attempt's own deadline is cc.Timeout; this one also bounds
		// recording the outcome.
		h.AddMiddleware(middleware.Timeout(cc.Timeout + d.cfg.Lease))
	}

	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSched()
	go d.sched.run(schedCtx)

	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.WithoutCancel(ctx)) }()
	select {
	case <-router.Running():
		if ready != nil {
			close(ready)
		}
	case err := <-runErr:
		return fmt.Errorf("dispatcher: router: %w", err)
	}
	select {
	case <-ctx.Done():
	case err := <-runErr:
		return fmt.Errorf("dispatcher: router stopped: %w", err)
	}
	d.logger.Info("dispatcher stopping: no new attempts; waiting for the ones in flight")
	d.sched.close()
	closeErr := router.Close()
	<-runErr
	if closeErr != nil {
		return fmt.Errorf("dispatcher: shutdown: %w", closeErr)
	}
	d.logger.Info("dispatcher stopped cleanly")
	return nil
}
