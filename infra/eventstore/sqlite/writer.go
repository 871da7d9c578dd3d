package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"herald/infra/eventstore"
)

const (
	pendingQueued int32 = iota
	pendingTaken
	pendingAbandoned
)

// pending is one caller's AppendMany waiting for the writer.
type pending struct {
	reqs    []eventstore.AppendRequest
	results []eventstore.AppendResult
	errs    []error // pre-filled with validation errors; the writer skips those
	// envelopes holds every event's encoded envelope (envelope.go), in the
	// order of reqs and their events, made by the caller before it queues
	// so that the writer, which every append waits on, need not.
	envelopes []string
	state     atomic.Int32
	done      chan struct{} // capacity 1; the writer sends once when decided

	// Storage for a single Append, so that a pooled pending needs no
	// slices of its own.
	oneReq [1]eventstore.AppendRequest
	oneRes [1]eventstore.AppendResult
	oneErr [1]error
}

func (p *pending) events() int {
	n := 0
	for _, r := range p.reqs {
		n += len(r.Events)
	}
	return n
}

// writer owns the only write connection. It takes whatever appends are queued,
// writes them in one transaction and commits once, so that N concurrent
// appends cost one fsync instead of N. Each append is still checked against
// its own expected version and gets its own answer.
type writer struct {
	s     *Store
	conn  *sql.Conn
	queue chan *pending
	// base carries the values of Open's context but not its end: the
	// writer lives as long as the store, and Close is what stops it.
	base context.Context

	// Statements prepared on the driver connection itself: the writer runs
	// inside sql.Conn.Raw for its whole life, which spares every statement
	// database/sql's locking and argument conversion.
	beginStmt, commitStmt, rollbackStmt driver.Stmt
	deleteAfter, countAfter             driver.Stmt   // undo a batch of rows
	inserts                             []driver.Stmt // inserts[k] writes 1<<k rows
	streamVers                          driver.Stmt   // versions of a JSON list of streams
	streamVer                           driver.Stmt   // version of one stream
	head                                driver.Stmt
	dataVersion                         driver.Stmt

	// versions caches stream versions so that most appends need no lookup.
	// It is only trusted while no other process has written to the file
	// (PRAGMA data_version unchanged since our last commit).
	versions    map[string]uint64
	lastDataVer int64
	lastHead    uint64 // the last position our own last commit wrote

	// release takes the callers of a committed group to the goroutine
	// that wakes them, so that the writer can begin the next group while
	// they are woken one by one.
	release chan released

	// Group-forming state: how many callers the last commit released, how
	// many were already queued then, and a moving average of a group's
	// whole time (waiting, writing and committing).
	lastReleased    int
	queuedAtRelease int
	avgGroup        time.Duration

	rows []row               // reused between batches
	args []driver.NamedValue // reused between batches
	undo []stagedChange      // reused between batches
}

func newWriter(ctx context.Context, s *Store) (*writer, error) {
	conn, err := s.writeDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// SQLite's own checkpoint after a commit is kept on purpose (tried:
	// a background PASSIVE checkpointer alone was 25-40% slower; the
	// backfiller beside it only does the copying early). Checkpointing
	// right after a commit lets the next transaction restart the WAL from
	// its beginning, so commits overwrite blocks the file already has and
	// fdatasync need not journal a change of file size.
	// A 16 MiB WAL between checkpoints (SQLite's default is 4 MiB): the
	// checkpoint runs inside the commit that crosses the threshold and
	// stalls its callers, so fewer, larger ones cut the p99 of appends by
	// half (measured: 8.4 ms → 3.8 ms with 64 writers).
	if _, err := conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint=4000"); err != nil {
		conn.Close()
		return nil, err
	}
	return &writer{s: s, conn: conn, base: context.WithoutCancel(ctx), queue: make(chan *pending, 1024), versions: make(map[string]uint64), lastDataVer: -1,
		release: make(chan released, 4)}, nil
}

// start runs the writer on its driver connection until closing is closed.
// It returns once the statements are prepared, with the error if they
// could not be.
func (w *writer) start(closing <-chan struct{}, ended chan<- struct{}) error {
	prepared := make(chan error, 1)
	released := make(chan struct{})
	go func() {
		defer close(released)
		for r := range w.release {
			if r.committed {
				// The tail is for followers: with none, it is not kept
				// but emptied (when one comes, it starts again from the
				// next commit; a tail left behind would tell it that it
				// had everything this store wrote).
				if w.s.tail.max > 0 && w.s.subscribers.Load() > 0 {
					w.s.tail.add(tailEvents(r.live, r.at))
				} else {
					w.s.tail.reset()
				}
			}
			for _, p := range r.live {
				p.done <- struct{}{} // buffered: exactly one send per taken append
			}
			w.s.wake()
		}
	}()
	go func() {
		defer close(ended)
		defer func() { <-released }()
		defer close(w.release)
		err := w.conn.Raw(func(dc any) error {
			if err := w.prepare(dc); err != nil {
				prepared <- err
				return err
			}
			prepared <- nil
			w.run(closing)
			return nil
		})
		if err != nil {
			return
		}
	}()
	return <-prepared
}

func (w *writer) prepare(dc any) error {
	pc, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return errors.New("prepare writer: driver cannot prepare with a context")
	}
	ctx := w.base
	var err error
	prep := func(q string) driver.Stmt {
		if err != nil {
			return nil
		}
		var st driver.Stmt
		st, err = pc.PrepareContext(ctx, q)
		return st
	}
	w.beginStmt = prep("BEGIN IMMEDIATE")
	w.commitStmt = prep("COMMIT")
	w.rollbackStmt = prep("ROLLBACK")
	w.deleteAfter = prep(`DELETE FROM events WHERE position > ?`)
	w.countAfter = prep(`SELECT COUNT(*) FROM events WHERE position > ?`)
	for k := 0; k <= maxInsertShift; k++ {
		w.inserts = append(w.inserts, prep(insertStatement(1<<k)))
	}
	w.streamVers = prep(`SELECT j.value, MAX(e.version) FROM json_each(?) AS j
		JOIN events AS e ON e.stream = j.value GROUP BY j.value`)
	w.streamVer = prep(`SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?`)
	w.head = prep(`SELECT COALESCE(MAX(position), 0) FROM events`)
	w.dataVersion = prep(`PRAGMA data_version`)
	if err != nil {
		w.closeStmts()
		return fmt.Errorf("prepare writer: %w", err)
	}
	return nil
}

func (w *writer) closeStmts() {
	for _, st := range append(w.inserts, w.beginStmt, w.commitStmt, w.rollbackStmt, w.deleteAfter, w.countAfter, w.streamVers, w.streamVer, w.head, w.dataVersion) {
		if st != nil {
			st.Close()
		}
	}
}

// maxInsertShift makes the largest INSERT 64 rows (384 parameters).
const maxInsertShift = 6

func insertStatement(rows int) string {
	var b strings.Builder
	b.WriteString(`INSERT OR IGNORE INTO events (position, stream, version, recorded_at, envelope, data) VALUES `)
	for i := 0; i < rows; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?)")
	}
	return b.String()
}

func (w *writer) close() error { return w.conn.Close() }

func exec(ctx context.Context, st driver.Stmt, args ...driver.NamedValue) error {
	_, err := st.(driver.StmtExecContext).ExecContext(ctx, args)
	return err
}

// queryInt64 runs a one-row, one-column query.
func queryInt64(ctx context.Context, st driver.Stmt, args ...driver.NamedValue) (int64, error) {
	rows, err := st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		return 0, err
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("want an integer, got %T", dest[0])
	}
	return v, nil
}

// run serves the queue until closing is closed, then drains what is queued.
func (w *writer) run(closing <-chan struct{}) {
	for {
		var first *pending
		select {
		case first = <-w.queue:
		case <-closing:
			// Callers that got into the queue before Close still get an
			// answer: either their append or ErrClosed, never silence.
			for p := w.tryDequeue(); p != nil; p = w.tryDequeue() {
				w.group(p)
			}
			w.closeStmts()
			return
		}
		w.group(first)
	}
}

// group runs one transaction. It opens it for the first caller, then keeps
// writing the appends of callers as they arrive — so that the work of
// checking and inserting overlaps with waiting for them — and commits once
// all the callers expected are in, the batch is full, or the wait is over.
//
// Callers released by the last commit usually come straight back. Waiting
// a moment for them merges what would otherwise settle into two half-size
// groups taking turns, which doubles the fsyncs per append. The wait ends as
// soon as they are all back, and is bounded by a fraction of a commit's
// duration, so a lone caller never waits long.
func (w *writer) group(first *pending) {
	ctx := w.base // a group commit must not be cut short by one caller
	start := time.Now()
	expected := w.lastReleased + w.queuedAtRelease
	g := &txGroup{staged: make(map[string]uint64), at: time.Unix(0, start.UnixNano()).UTC()}
	received := 1
	n := first.events()
	err := w.beginTx(ctx, g)
	if err == nil {
		err = w.add(ctx, g, []*pending{first})
	} else {
		// No transaction: the caller gets the error below, and so does
		// everyone queued behind it, who would otherwise wait out the
		// same lock one busy timeout after another.
		for p := first; p != nil; p = w.tryDequeue() {
			if p.state.CompareAndSwap(pendingQueued, pendingTaken) {
				g.live = append(g.live, p)
			}
		}
	}
	var (
		timer    *time.Timer
		arrivals []*pending
	)
	for err == nil && n < w.s.opts.MaxBatchEvents {
		for n < w.s.opts.MaxBatchEvents {
			p := w.tryDequeue()
			if p == nil {
				break
			}
			arrivals = append(arrivals, p)
			n += p.events()
		}
		if len(arrivals) > 0 {
			received += len(arrivals)
			err = w.add(ctx, g, arrivals)
			arrivals = arrivals[:0]
			continue
		}
		if received >= expected {
			break
		}
		// Block until the next caller arrives rather than spin: the
		// callers being waited for need both cores. The timer only ends
		// the wait when they do not come (Go timers fire about 1 ms late
		// here, which bounds what a drop in load costs one group).
		if timer == nil {
			timer = time.NewTimer(w.commitDelay())
		}
		select {
		case p := <-w.queue:
			// Written at once: the loop may end on this caller's events
			// (a large AppendMany), and every caller taken must be in the
			// transaction or it would never get its answer.
			n += p.events()
			received++
			arrivals = append(arrivals, p)
			err = w.add(ctx, g, arrivals)
			arrivals = arrivals[:0]
			continue
		case <-timer.C:
		}
		break
	}
	if timer != nil {
		timer.Stop()
	}
	if err == nil {
		if err = w.commitTx(ctx, g); err == nil {
			w.s.backfill.committed()
		}
	} else if g.open {
		err = errors.Join(err, exec(ctx, w.rollbackStmt))
	}
	if err != nil {
		// The transaction is gone: nothing of this group was written and
		// the version cache may hold versions that never committed.
		clear(w.versions)
		w.lastDataVer = -1
		for _, p := range g.live {
			for i := range p.reqs {
				if p.errs[i] == nil {
					p.errs[i] = fmt.Errorf("append to %s: %w", p.reqs[i].Stream, err)
				}
				p.results[i] = eventstore.AppendResult{}
			}
		}
	}
	if len(g.live) > 0 {
		w.release <- released{live: g.live, at: g.at, committed: err == nil}
	}
	w.avgGroup += (time.Since(start) - w.avgGroup) / 8
	w.lastReleased = received
	w.queuedAtRelease = len(w.queue)
}

// tryDequeue returns the next queued append, or nil when none is queued.
func (w *writer) tryDequeue() *pending {
	select {
	case p := <-w.queue:
		return p
	default:
		return nil
	}
}

// commitDelay bounds how long a group waits for more callers: half of the
// recent group time, at most MaxCommitDelay.
func (w *writer) commitDelay() time.Duration {
	return min(w.avgGroup/2, w.s.opts.MaxCommitDelay)
}

// txGroup is the transaction being filled.
type txGroup struct {
	open    bool
	live    []*pending        // callers whose appends this transaction decides
	staged  map[string]uint64 // stream versions as this transaction leaves them
	assumed map[string]bool   // streams staged at 0 without a lookup (see lookupVersions)
	head    uint64            // last position written
	dv      int64             // data_version when the transaction began
	at      time.Time         // the events' recorded_at: when the group began
}

func (w *writer) beginTx(ctx context.Context, g *txGroup) error {
	if err := exec(ctx, w.beginStmt); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	g.open = true
	// Another process may have written since our last commit: then the
	// cached versions are stale.
	dv, err := queryInt64(ctx, w.dataVersion)
	if err != nil {
		return fmt.Errorf("data_version: %w", err)
	}
	g.dv = dv
	if dv == w.lastDataVer {
		g.head = w.lastHead
		return nil
	}
	clear(w.versions)
	w.s.tail.reset()
	h, err := queryInt64(ctx, w.head)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	g.head = uint64(h)
	return nil
}

// add decides and writes the appends of newly arrived callers. Callers that
// gave up before the writer reached them are left out.
func (w *writer) add(ctx context.Context, g *txGroup, arrivals []*pending) error {
	from := len(g.live)
	for _, p := range arrivals {
		if p.state.CompareAndSwap(pendingQueued, pendingTaken) {
			g.live = append(g.live, p)
		}
	}
	added := g.live[from:]
	if len(added) == 0 {
		return nil
	}
	assumed, err := w.lookupVersions(ctx, g, added, true)
	if err != nil {
		return err
	}
	headBefore := g.head
	w.stage(g, added)
	inserted, err := w.insertRows(ctx, g.at.UnixNano())
	if err != nil {
		return err
	}
	if inserted == len(w.rows) {
		clear(g.assumed)
		return nil
	}
	if len(assumed) == 0 {
		// Every version was looked up or known: the index can only have
		// refused a row if the log changed under a transaction that holds
		// the write lock.
		return fmt.Errorf("insert: %d of %d rows refused by the (stream, version) index", len(w.rows)-inserted, len(w.rows))
	}
	// A stream assumed new (see lookupVersions) was not: the index skipped
	// its version 1 (INSERT OR IGNORE). Take this batch's rows out again —
	// they hold the positions after headBefore — and decide the batch anew
	// after a real lookup.
	// The rows after headBefore must be exactly the ones this batch got in
	// (a stale head would make them someone else's): otherwise give the
	// whole group up rather than delete them.
	if n, err := queryInt64(ctx, w.countAfter, driver.NamedValue{Ordinal: 1, Value: int64(headBefore)}); err != nil || n != int64(inserted) {
		return errors.Join(fmt.Errorf("undo insert: %d rows after position %d, this batch wrote %d", n, headBefore, inserted), err)
	}
	if err := exec(ctx, w.deleteAfter, driver.NamedValue{Ordinal: 1, Value: int64(headBefore)}); err != nil {
		return fmt.Errorf("undo insert: %w", err)
	}
	w.unstage(g, headBefore)
	if _, err := w.lookupVersions(ctx, g, added, false); err != nil {
		return err
	}
	w.stage(g, added)
	inserted, err = w.insertRows(ctx, g.at.UnixNano())
	if err != nil {
		return err
	}
	if inserted != len(w.rows) {
		return fmt.Errorf("insert: %d of %d rows refused by the (stream, version) index after a lookup", len(w.rows)-inserted, len(w.rows))
	}
	return nil
}

// stagedChange is one change stage made, so that unstage can put it back.
type stagedChange struct {
	p      *pending
	req    int    // index in p.reqs
	stream string // stream whose staged version the request moved
	prior  uint64 // its staged version before
	had    bool   // whether it had one
}

// stage decides the added appends against the versions the transaction
// knows, assigns positions and versions, and fills w.rows. It logs its
// changes in w.undo.
func (w *writer) stage(g *txGroup, added []*pending) {
	w.rows = w.rows[:0]
	w.undo = w.undo[:0]
	for _, p := range added {
		k := 0 // index of r's first event in p.envelopes
		for i, r := range p.reqs {
			first := k
			k += len(r.Events)
			if p.errs[i] != nil {
				continue
			}
			cur, ok := g.staged[r.Stream]
			if !ok {
				cur = w.versions[r.Stream]
			}
			w.undo = append(w.undo, stagedChange{p: p, req: i, stream: r.Stream, prior: cur, had: ok})
			if !r.Expected.Allows(cur) {
				p.errs[i] = &eventstore.WrongVersionError{Stream: r.Stream, Expected: r.Expected, Actual: cur}
				continue
			}
			for j := range r.Events {
				g.head++
				cur++
				w.rows = append(w.rows, row{position: g.head, stream: r.Stream, version: cur, event: &r.Events[j], envelope: p.envelopes[first+j]})
			}
			g.staged[r.Stream] = cur
			p.results[i] = eventstore.AppendResult{Version: cur, Position: eventstore.Position(g.head)}
		}
	}
}

// unstage undoes the last stage, forgetting the versions assumed without a
// lookup, so that the appends are decided again after a real one.
func (w *writer) unstage(g *txGroup, head uint64) {
	g.head = head
	for k := len(w.undo) - 1; k >= 0; k-- {
		c := w.undo[k]
		c.p.errs[c.req] = nil // stage skips requests with an error: any here is its own
		c.p.results[c.req] = eventstore.AppendResult{}
		if c.had && !g.assumed[c.stream] {
			g.staged[c.stream] = c.prior
		} else {
			delete(g.staged, c.stream)
		}
	}
	clear(g.assumed)
	clear(w.undo)
	w.undo = w.undo[:0]
	clear(w.rows)
	w.rows = w.rows[:0]
}

// commitTx commits the open transaction and keeps the versions it staged.
func (w *writer) commitTx(ctx context.Context, g *txGroup) error {
	if err := exec(ctx, w.commitStmt); err != nil {
		return errors.Join(fmt.Errorf("commit: %w", err), exec(ctx, w.rollbackStmt))
	}
	// Our own commits do not change our connection's data_version, and no
	// one else could write while we held the lock.
	w.lastDataVer = g.dv
	w.lastHead = g.head
	if len(w.versions)+len(g.staged) > w.s.opts.StreamCacheSize {
		clear(w.versions)
	}
	for k, v := range g.staged {
		w.versions[k] = v
	}
	return nil
}

// lookupVersions finds, in one query, the current version of every stream of
// the added appends that neither the transaction nor the cache knows.
//
// With assume set, a stream that every one of its added appends expects
// not to exist is not looked up: it is staged at version 0 and listed in
// the result. Almost every such append creates a fresh stream (a new
// notification), and the insert itself proves it: the (stream, version)
// index refuses a second version 1. Sparing the lookup took about a fifth
// of the writer's CPU. The caller undoes and looks up for real when the
// index refuses.
func (w *writer) lookupVersions(ctx context.Context, g *txGroup, added []*pending, assume bool) ([]string, error) {
	var missing, assumed []string
	var mustLook map[string]bool
	if assume {
		for _, p := range added {
			for i, r := range p.reqs {
				if v, exact := r.Expected.Version(); p.errs[i] == nil && !(exact && v == 0) {
					if mustLook == nil {
						mustLook = map[string]bool{}
					}
					mustLook[r.Stream] = true
				}
			}
		}
	}
	for _, p := range added {
		for i, r := range p.reqs {
			if p.errs[i] != nil {
				continue
			}
			if _, ok := g.staged[r.Stream]; ok {
				continue
			}
			if _, ok := w.versions[r.Stream]; ok {
				continue
			}
			g.staged[r.Stream] = 0
			if assume && !mustLook[r.Stream] {
				if g.assumed == nil {
					g.assumed = map[string]bool{}
				}
				g.assumed[r.Stream] = true
				assumed = append(assumed, r.Stream)
				continue
			}
			missing = append(missing, r.Stream)
		}
	}
	if len(missing) == 0 {
		return assumed, nil
	}
	// A few streams are cheaper to look up one by one than to encode as
	// JSON for json_each.
	if len(missing) <= 4 {
		for _, stream := range missing {
			v, err := queryInt64(ctx, w.streamVer, driver.NamedValue{Ordinal: 1, Value: stream})
			if err != nil {
				return nil, fmt.Errorf("stream version: %w", err)
			}
			g.staged[stream] = uint64(v)
		}
		return assumed, nil
	}
	list, err := json.Marshal(missing)
	if err != nil {
		return nil, fmt.Errorf("stream versions: %w", err)
	}
	rows, err := w.streamVers.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: string(list)}})
	if err != nil {
		return nil, fmt.Errorf("stream versions: %w", err)
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	for {
		if err := rows.Next(dest); err != nil {
			if errors.Is(err, io.EOF) {
				return assumed, nil
			}
			return nil, fmt.Errorf("stream versions: %w", err)
		}
		v, ok := dest[1].(int64)
		if !ok {
			return nil, fmt.Errorf("stream versions: version of type %T", dest[1])
		}
		g.staged[textValue(dest[0])] = uint64(v)
	}
}

// row is one event ready to insert.
type row struct {
	position uint64
	stream   string
	version  uint64
	event    *eventstore.EventData
	envelope string
}

// insertRows writes w.rows with multi-row INSERT statements of
// power-of-two sizes, which costs far fewer statement executions than one
// INSERT per event, and reports how many rows the log took. The statements
// are INSERT OR IGNORE: a row whose (stream, version) the log already has is
// skipped, not an error, so that add can find out without a savepoint that
// a stream it assumed new was not. Every other row always goes in (the
// writer binds no NULLs and holds the write lock while it picks positions).
func (w *writer) insertRows(ctx context.Context, now int64) (inserted int, err error) {
	rows := w.rows
	for len(rows) > 0 {
		k := len(w.inserts) - 1
		for 1<<k > len(rows) {
			k--
		}
		n := 1 << k
		args := w.args[:0]
		for _, r := range rows[:n] {
			data := []byte(r.event.Data)
			if len(data) == 0 {
				data = []byte("null")
			}
			o := len(args)
			args = append(args,
				driver.NamedValue{Ordinal: o + 1, Value: int64(r.position)},
				driver.NamedValue{Ordinal: o + 2, Value: r.stream},
				driver.NamedValue{Ordinal: o + 3, Value: int64(r.version)},
				driver.NamedValue{Ordinal: o + 4, Value: now},
				driver.NamedValue{Ordinal: o + 5, Value: r.envelope},
				driver.NamedValue{Ordinal: o + 6, Value: data})
		}
		w.args = args
		res, err := w.inserts[k].(driver.StmtExecContext).ExecContext(ctx, args)
		if err != nil {
			return inserted, fmt.Errorf("insert: %w", err)
		}
		c, err := res.RowsAffected()
		if err != nil {
			return inserted, fmt.Errorf("insert: %w", err)
		}
		inserted += int(c)
		rows = rows[n:]
	}
	clear(w.args)
	clear(w.rows) // drops the events; the length stays for the caller
	return inserted, nil
}

// released is a decided group on its way to the goroutine that wakes its
// callers.
type released struct {
	live      []*pending
	at        time.Time // the events' recorded_at
	committed bool
}

// tailEvents returns the events the appends of live wrote, as ReadAll reads
// them back, with their data copied (into one allocation) so that what the
// tail holds does not change when a caller reuses its buffers. It runs
// before the callers are told, while their requests are still theirs to
// read. They come out in position order: stage gave positions in the order
// of live.
func tailEvents(live []*pending, at time.Time) []eventstore.RecordedEvent {
	n, size := 0, 0
	for _, p := range live {
		for i, r := range p.reqs {
			if p.errs[i] != nil {
				continue
			}
			n += len(r.Events)
			for _, e := range r.Events {
				size += max(len(e.Data), len("null"))
			}
		}
	}
	out := make([]eventstore.RecordedEvent, 0, n)
	buf := make([]byte, 0, size)
	for _, p := range live {
		for i, r := range p.reqs {
			if p.errs[i] != nil || len(r.Events) == 0 {
				continue
			}
			res := p.results[i]
			first := res.Position - eventstore.Position(len(r.Events)-1)
			version := res.Version - uint64(len(r.Events)-1)
			for j := range r.Events {
				e := &r.Events[j]
				data := []byte(e.Data)
				if len(data) == 0 {
					data = []byte("null")
				}
				from := len(buf)
				buf = append(buf, data...)
				out = append(out, eventstore.RecordedEvent{
					ID: e.ID, Type: e.Type, Stream: r.Stream, Version: version + uint64(j),
					Position: first + eventstore.Position(j), RecordedAt: at, SchemaVersion: e.SchemaVersion,
					Metadata: e.Metadata, Data: buf[from:len(buf):len(buf)],
				})
			}
		}
	}
	return out
}
