package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"herald/infra/eventstore"
	"herald/infra/internal/sqlitedb"
)

var _ eventstore.Store = (*Store)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS events (
	position       INTEGER PRIMARY KEY,
	stream         TEXT    NOT NULL,
	version        INTEGER NOT NULL,
	recorded_at    INTEGER NOT NULL, -- Unix nanoseconds
	envelope       TEXT    NOT NULL, -- see envelope.go
	data           BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_stream_version ON events (stream, version);
`

const selectColumns = `position, stream, version, recorded_at, envelope, data`

// mmapSize is how much of the file each connection maps (1 GiB of address
// space, not of memory).
const mmapSize = "1073741824"

// Options tune a Store. The zero value is the production default.
type Options struct {
	// MaxBatchEvents bounds how many events one group commit writes.
	MaxBatchEvents int
	// PollInterval is how often an idle subscription looks for appends made
	// by other processes sharing the file. Appends made through this Store
	// wake subscriptions at once.
	PollInterval time.Duration
	// MaxCommitDelay bounds how long the writer waits for callers to join a
	// group commit (it waits at most half a recent commit's duration).
	MaxCommitDelay time.Duration
	// StreamCacheSize bounds the in-memory map of stream versions the writer
	// keeps to avoid a lookup per append (default 65,536). Appends that
	// create a stream need none (see lookupVersions), so what pays is the
	// streams appended to again soon: a notification's attempt and outcome.
	// Every stream name it holds is live heap that each collection marks:
	// 150,000 sends made it 15 MB (the api benchmark's heap: 59 MB live
	// against 46 MB with this default), and the old default of 1,048,576
	// would have let it grow to some 100 MB in a long-running server.
	StreamCacheSize int
	// TailEvents is how many of the events it committed last the Store
	// keeps in memory for ReadAll and subscriptions (default 32,768, about
	// 20 MB with Herald's events; negative: none).
	TailEvents int
	// BusyTimeout is how long a statement waits for a lock that another
	// process sharing the file holds before it fails (default 10 s; at
	// least a millisecond).
	BusyTimeout time.Duration
	// BackfillInterval is how often, at most, a connection of its own
	// copies committed WAL frames into the database file while appends
	// come (default DefaultBackfillInterval; negative: never, SQLite's
	// checkpoint inside a commit does it all).
	BackfillInterval time.Duration
}

func (o *Options) setDefaults() {
	if o.MaxBatchEvents <= 0 {
		o.MaxBatchEvents = 2048
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 25 * time.Millisecond
	}
	if o.MaxCommitDelay <= 0 {
		o.MaxCommitDelay = time.Millisecond
	}
	if o.StreamCacheSize <= 0 {
		o.StreamCacheSize = 1 << 16
	}
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 10 * time.Second
	}
	if o.BackfillInterval == 0 {
		o.BackfillInterval = DefaultBackfillInterval
	}
	if o.TailEvents == 0 {
		o.TailEvents = 1 << 15
	}
}

// Store is the embedded event log: one SQLite file in WAL mode with
// synchronous=FULL, written by a single goroutine that commits concurrent
// appends together (group commit) and read through a pool of connections.
//
// Positions are the table's rowid. SQLite lets one writer at a time hold the
// write lock (across processes too) and assigns rowid max+1 inside it, so
// positions grow in commit order and a reader never sees a gap that is later
// filled: a rolled-back transaction leaves nothing behind, and the next one
// reuses its positions.
type Store struct {
	opts    Options
	writeDB *sql.DB
	readDB  *sql.DB
	writer  *writer
	tail    *tail // what the writer committed last (tail.go)
	// subscribers counts the open subscriptions: the tail is kept only
	// while there are some.
	subscribers atomic.Int64

	signalMu sync.Mutex
	signal   chan struct{} // closed and replaced after every commit

	closeOnce sync.Once
	// closeMu orders enqueueing against Close: once Close holds it, no
	// append can slip into the queue after the writer's final drain.
	closeMu   sync.RWMutex
	closed    atomic.Bool
	closing   chan struct{}
	writerEnd chan struct{}

	// stmts holds the read statements prepared on each reader connection
	// (stmtKey → driver.Stmt): preparing cost more than running the small
	// queries a command's load makes. A connection is used by one
	// goroutine at a time, and so are its statements.
	stmts sync.Map

	// backfill copies committed WAL frames into the database file between
	// commits (nil when Options turn it off).
	backfill *backfiller
}

type stmtKey struct {
	conn  any // the driver connection (a pointer)
	query string
}

// Open opens (creating if needed) the event log in the SQLite file at path.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts.setDefaults()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open event log: %w", err)
		}
	}
	writeDB, err := sqlitedb.OpenOne(driverName, dsn(path, false, opts.BusyTimeout))
	if err != nil {
		return nil, fmt.Errorf("open event log: %w", err)
	}

	readDB, err := sql.Open(driverName, dsn(path, true, opts.BusyTimeout))
	if err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open event log: %w", err)
	}
	readDB.SetMaxOpenConns(8)
	readDB.SetMaxIdleConns(8)

	s := &Store{
		opts:      opts,
		writeDB:   writeDB,
		readDB:    readDB,
		signal:    make(chan struct{}),
		tail:      newTail(opts.TailEvents),
		closing:   make(chan struct{}),
		writerEnd: make(chan struct{}),
	}
	if _, err := writeDB.ExecContext(ctx, schema); err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open event log: create schema: %w", err)
	}
	w, err := newWriter(ctx, s)
	if err != nil {
		s.closeDBs()
		return nil, fmt.Errorf("open event log: %w", err)
	}
	s.writer = w
	// The writer holds a connection of writeDB's: closing writeDB leaves
	// it open, so each failure below closes it too.
	if opts.BackfillInterval > 0 {
		if s.backfill, err = startBackfiller(path, opts); err != nil {
			w.close()
			s.closeDBs()
			return nil, fmt.Errorf("open event log: %w", err)
		}
	}
	if err := w.start(s.closing, s.writerEnd); err != nil {
		<-s.writerEnd // the writer's goroutine let go of the connection
		w.close()
		s.backfill.close()
		s.closeDBs()
		return nil, fmt.Errorf("open event log: %w", err)
	}
	return s, nil
}

func (s *Store) closeDBs() {
	s.readDB.Close()
	s.writeDB.Close()
}

// Close stops the writer after it has finished the appends already queued,
// then closes the database. It is safe to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closeMu.Lock()
		s.closed.Store(true)
		close(s.closing)
		s.closeMu.Unlock()
		<-s.writerEnd
		backfillErr := s.backfill.close()
		s.wake()
		var stmtErrs []error
		s.stmts.Range(func(k, v any) bool {
			stmtErrs = append(stmtErrs, v.(driver.Stmt).Close())
			s.stmts.Delete(k)
			return true
		})
		err = errors.Join(s.writer.close(), errors.Join(stmtErrs...), backfillErr, s.readDB.Close(), s.writeDB.Close())
	})
	return err
}

// wake tells waiting subscriptions that something changed.
func (s *Store) wake() {
	s.signalMu.Lock()
	close(s.signal)
	s.signal = make(chan struct{})
	s.signalMu.Unlock()
}

func (s *Store) changed() <-chan struct{} {
	s.signalMu.Lock()
	defer s.signalMu.Unlock()
	return s.signal
}

// Append implements eventstore.Store.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	// Single appends are the hot path: their pending record is reused, so
	// a caller costs no allocation of its own beyond what it passes in.
	p := pendingPool.Get().(*pending)
	p.oneReq[0] = eventstore.AppendRequest{Stream: stream, Expected: expected, Events: events}
	p.oneRes[0], p.oneErr[0] = eventstore.AppendResult{}, nil
	p.reqs, p.results, p.errs = p.oneReq[:], p.oneRes[:], p.oneErr[:]
	p.state.Store(pendingQueued)
	reusable := s.submit(ctx, p)
	res, err := p.oneRes[0], p.oneErr[0]
	if reusable {
		p.oneReq[0] = eventstore.AppendRequest{} // drop the caller's events
		p.oneErr[0] = nil
		clear(p.envelopes)
		pendingPool.Put(p)
	}
	return res, err
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan struct{}, 1)} }}

// AppendMany implements eventstore.Store. All requests go into one group
// commit, together with whatever other callers queued meanwhile.
func (s *Store) AppendMany(ctx context.Context, reqs []eventstore.AppendRequest) ([]eventstore.AppendResult, []error) {
	p := &pending{
		reqs:    reqs,
		results: make([]eventstore.AppendResult, len(reqs)),
		errs:    make([]error, len(reqs)),
		done:    make(chan struct{}, 1),
	}
	s.submit(ctx, p)
	return p.results, p.errs
}

// submit validates p's requests, hands them to the writer and waits for the
// outcome, which it leaves in p. It reports whether p may be reused: not
// when the caller gave up while p sat in the queue, since the writer will
// still look at it.
func (s *Store) submit(ctx context.Context, p *pending) (reusable bool) {
	fail := func(err error) bool {
		for i := range p.errs {
			p.errs[i] = err
		}
		return true
	}
	for i, r := range p.reqs {
		if err := checkStreamName(r.Stream); err != nil {
			p.errs[i] = err
			continue
		}
		for j := range r.Events {
			e := &r.Events[j]
			err := e.Validate()
			if err == nil {
				err = checkEnvelope(e)
			}
			if err != nil {
				p.errs[i] = fmt.Errorf("append to %s: %w", r.Stream, err)
				break
			}
		}
	}
	p.envelopes = p.envelopes[:0]
	for i, r := range p.reqs {
		for j := range r.Events {
			env := ""
			if p.errs[i] == nil {
				env = encodeEnvelope(&r.Events[j])
			}
			p.envelopes = append(p.envelopes, env)
		}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	s.closeMu.RLock()
	if s.closed.Load() {
		s.closeMu.RUnlock()
		return fail(eventstore.ErrClosed)
	}
	select {
	case s.writer.queue <- p:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return fail(ctx.Err())
	}
	select {
	case <-p.done:
		return true
	case <-ctx.Done():
		// Only give up if the writer has not started on it; once it has,
		// the outcome is moments away and the caller must learn it, or
		// it would believe an append that did land had not.
		if p.state.CompareAndSwap(pendingQueued, pendingAbandoned) {
			fail(ctx.Err())
			return false
		}
		<-p.done
		return true
	}
}

// ReadStream implements eventstore.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	if after > math.MaxInt64 {
		// SQLite integers are signed 64-bit: nothing can be stored there.
		after = math.MaxInt64
	}
	// Reading from version after itself (when after > 0) proves in the
	// same query that the stream exists: a caller loading the events
	// appended since a state it holds, usually none, makes one query, not
	// two.
	from := int64(after)
	if after > 0 {
		from--
	}
	// Most streams are short (a notification's, a profile's): the result
	// starts with room for 16 events and grows, rather than being sized
	// by the limit (4,096 events, about 800 KiB, for every load).
	evs, err := s.queryEvents(ctx, `WHERE stream = ? AND version > ? ORDER BY version LIMIT ?`, min(limit+1, 16),
		stream, from, int64(min(limit, math.MaxInt32))+1)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", stream, err)
	}
	if after > 0 && len(evs) > 0 && evs[0].Version == after {
		evs = evs[1:]
		if len(evs) > limit {
			evs = evs[:limit]
		}
		return evs, nil
	}
	if len(evs) > limit {
		evs = evs[:limit]
	}
	if len(evs) == 0 && after == 0 {
		// Versions start at 1: nothing from the start means no stream.
		return nil, fmt.Errorf("read stream %s: %w", stream, eventstore.ErrStreamNotFound)
	}
	if len(evs) == 0 {
		var one int
		err := s.readDB.QueryRowContext(ctx, `SELECT 1 FROM events WHERE stream = ? LIMIT 1`, stream).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("read stream %s: %w", stream, eventstore.ErrStreamNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", stream, err)
		}
	}
	return evs, nil
}

// Head implements eventstore.Store.
func (s *Store) Head(ctx context.Context) (eventstore.Position, error) {
	var head uint64
	if err := s.readDB.QueryRowContext(ctx, `SELECT COALESCE(MAX(position), 0) FROM events`).Scan(&head); err != nil {
		return 0, fmt.Errorf("read head: %w", err)
	}
	return eventstore.Position(head), nil
}

// maxStreamName bounds stream names; Herald's own are under 100 bytes.
const maxStreamName = 1024

// checkStreamName refuses names the log cannot hold faithfully: empty, too
// long, or not UTF-8 (SQLite TEXT and the JSON used to look streams up
// would silently change such bytes, making two names one).
func checkStreamName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidEvent)
	case len(name) > maxStreamName:
		return fmt.Errorf("%w: stream name longer than %d bytes", eventstore.ErrInvalidEvent, maxStreamName)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: stream name %q is not UTF-8", eventstore.ErrInvalidEvent, name)
	}
	return nil
}
