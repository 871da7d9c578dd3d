package esdb

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"herald/infra/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// Store is an eventstore.Store on an EventStoreDB server. It is safe for
// concurrent use. Every append is durable on the server (and replicated to a
// cluster majority) when it returns without error, as EventStoreDB
// acknowledges writes only then.
type Store struct {
	client *esdb.Client
	cfg    config

	// life ends when the store closes; subscriptions and consumer groups
	// follow it.
	life    context.Context
	endLife context.CancelFunc

	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup // appends and reads in progress
	workers  sync.WaitGroup // subscription and consumer group goroutines
}

type config struct {
	appendConcurrency int
	backoffMin        time.Duration
	backoffMax        time.Duration
	batchSize         int
	probeTimeout      time.Duration
}

func (c *config) setDefaults() {
	if c.appendConcurrency <= 0 {
		c.appendConcurrency = 8
	}
	if c.backoffMin <= 0 {
		c.backoffMin = 100 * time.Millisecond
	}
	if c.backoffMax < c.backoffMin {
		c.backoffMax = max(5*time.Second, c.backoffMin)
	}
	if c.batchSize <= 0 {
		c.batchSize = 256
	}
	if c.probeTimeout <= 0 {
		c.probeTimeout = 5 * time.Second
	}
}

// Option changes a default of Open.
type Option func(*config)

// WithAppendConcurrency sets how many requests of one AppendMany run at once
// (default 8).
func WithAppendConcurrency(n int) Option { return func(c *config) { c.appendConcurrency = n } }

// WithResubscribeBackoff sets the delay before re-opening a dropped
// subscription: min after the first drop, doubling up to max (defaults 100ms
// and 5s). A delivered event resets it to min.
func WithResubscribeBackoff(min, max time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = min, max }
}

// WithBatchSize sets the most events one Subscription.Next returns
// (default 256).
func WithBatchSize(n int) Option { return func(c *config) { c.batchSize = n } }

// Open returns a store on the EventStoreDB server or cluster that connString
// names, e.g. "esdb://127.0.0.1:2113?tls=false" or
// "esdb+discover://cluster.example.com:2113". The client connects lazily: an
// unreachable server shows at the first operation, not here. ctx bounds
// nothing after Open returns; its values (not its cancellation) are kept for
// the store's background work.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open eventstoredb: %w", err)
	}
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	cfg.setDefaults()
	conf, err := esdb.ParseConnectionString(connString)
	if err != nil {
		return nil, fmt.Errorf("open eventstoredb: parse connection string: %w", err)
	}
	client, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("open eventstoredb: %w", err)
	}
	life, end := context.WithCancel(context.WithoutCancel(ctx))
	return &Store{client: client, cfg: cfg, life: life, endLife: end}, nil
}

// Close refuses new work with eventstore.ErrClosed, ends every subscription
// and consumer group of the store, waits for the appends and reads in
// progress to finish (they are bounded by their own contexts), then closes the
// connection. Calling it again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.endLife()
	s.inflight.Wait()
	s.workers.Wait()
	return s.client.Close()
}

// enter registers an operation, or refuses it once the store is closed.
func (s *Store) enter() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	s.inflight.Add(1)
	return nil
}

func (s *Store) leave() { s.inflight.Done() }

// startWorker registers a long-lived goroutine that ends with the store.
func (s *Store) startWorker() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return eventstore.ErrClosed
	}
	s.workers.Add(1)
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// errorCode returns the code of the *esdb.Error in err's chain.
func errorCode(err error) (esdb.ErrorCode, bool) {
	var e *esdb.Error
	if errors.As(err, &e) && e != nil {
		return e.Code(), true
	}
	return 0, false
}

// portError turns a client error of operation op into the port's terms: the
// context's own error when ctx has ended (gRPC reports that as a status the
// client does not unwrap), ErrClosed for a closed client, and otherwise err
// wrapped with op.
func (s *Store) portError(ctx context.Context, op string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s: %w", op, ctxErr)
	}
	if code, ok := errorCode(err); ok && code == esdb.ErrorCodeConnectionClosed {
		return fmt.Errorf("%s: %w", op, eventstore.ErrClosed)
	}
	if s.isClosed() {
		return fmt.Errorf("%s: %w", op, eventstore.ErrClosed)
	}
	return fmt.Errorf("%s: %w", op, err)
}
