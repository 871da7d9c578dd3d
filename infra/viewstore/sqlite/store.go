package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/internal/sqlitedb"
	"herald/projections"
)

var (
	_ projections.Store            = (*Views)(nil)
	_ projections.BatchStore       = (*Views)(nil)
	_ projections.NotificationView = (*Views)(nil)
	_ projections.Search           = (*Views)(nil)
	_ projections.Inbox            = (*Views)(nil)
	_ projections.Analytics        = (*Views)(nil)
)

// Options configure Views.
type Options struct {
	// History is the event log the views follow (required): the inbox
	// and analytics projections store no notification states of their
	// own and fold from it those they do not hold in memory (see
	// projections.History).
	History projections.History
	// ReadConns bounds the pool of read-only connections (default 8).
	ReadConns int
}

func (o *Options) setDefaults() {
	if o.ReadConns <= 0 {
		o.ReadConns = 8
	}
}

// Views is the embedded view store. It is safe for concurrent use: writes
// go through one connection (Apply, rebuilds), queries through a read pool.
type Views struct {
	writeDB     *sql.DB
	readDB      *sql.DB
	ckpt        *checkpointer
	history     projections.History
	leasesReady atomic.Bool // the leases table exists (lease.go)
	// states holds, per projection (and per shadow), the notification
	// states it computed last with the stream version each was folded up
	// to, so the next batch of a notification starts from its state
	// without folding its stream from the log (applier.resolve). One
	// cache per projection: they follow the log a batch or two apart, and
	// a shared one would hold the leader's later versions.
	statesMu sync.Mutex
	states   map[string]*eventstore.StateCache[domain.NotificationID, domain.Notification]
}

// cachedStates bounds each projection's cache of states. A notification's
// events reach the projections within moments of each other (send,
// attempt, outcome: tens of milliseconds at 5,000 deliveries/s), so a
// short recent window is what pays; past it, a state is folded from the
// log (FoldHistory). The cached states are most of a serving process's
// live heap, and every collection marks them all: with 16,384 states each
// the heap reached 132 MB live 8 s into e2e_webhook at 2,000/s and a mark
// phase of 244 ms held every delivery under way (the run's p99 was those
// deliveries). 16,384 against 2,048, interleaved: that p99 45, 52, 38, 57,
// 66 and 60 ms against 18, 22, 25, 38, 24 and 14 ms; e2e at full speed
// 5,206 and 5,164 against 5,161 and 5,511 deliveries/s; api_batch 28,158
// and 30,572 against 35,450 and 33,273 notifications/s; api_send 13,415
// and 13,553 against 12,966 and 12,650 requests/s (within the noise).
// (65,536 against 16,384 earlier: api_send's heap 700 MB against 450 MB
// live, marks up to 1.4 s against 0.7 s.)
const cachedStates = 1 << 11

// statesOf returns the state cache of projection (or its shadow).
func (v *Views) statesOf(projection string) *eventstore.StateCache[domain.NotificationID, domain.Notification] {
	v.statesMu.Lock()
	defer v.statesMu.Unlock()
	c, ok := v.states[projection]
	if !ok {
		c = eventstore.NewStateCache[domain.NotificationID, domain.Notification](cachedStates)
		v.states[projection] = c
	}
	return c
}

// dropStates forgets the state cache of projection (a shadow swapped in:
// its states are still right, but the live projection has its own).
func (v *Views) dropStates(projection string) {
	v.statesMu.Lock()
	delete(v.states, projection)
	v.statesMu.Unlock()
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	q.Set("_cache_size", "-65536")
	// Each connection keeps its prepared statements across transactions:
	// the projectors run the same few dozen statements in every Apply, and
	// re-preparing them was 15% of the CPU of following the log one event
	// at a time (BenchmarkLiveApply).
	q.Set("_stmt_cache_size", "128")
	// Multi-thread mode, as the event log's connections: database/sql hands
	// a connection to one goroutine at a time, so SQLite's own lock around
	// every call is not needed.
	q.Set("_mutex", "no")
	if readOnly {
		q.Set("_query_only", "true")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the view store in the SQLite file at path
// and creates the live tables of every projection that has none.
func Open(ctx context.Context, path string, opts Options) (*Views, error) {
	if opts.History == nil {
		return nil, errors.New("open view store: no History (the event log) to fold states from")
	}
	opts.setDefaults()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open view store: %w", err)
		}
	}
	writeDB, err := sqlitedb.OpenOne(viewsDriver, dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open view store: %w", err)
	}
	v := &Views{writeDB: writeDB, history: opts.History, states: map[string]*eventstore.StateCache[domain.NotificationID, domain.Notification]{}}
	if err := v.migrate(ctx); err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open view store: %w", err)
	}
	// The read pool opens after the schema exists, so no reader ever runs
	// against a file without tables.
	readDB, err := sql.Open(viewsDriver, dsn(path, true))
	if err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open view store: %w", err)
	}
	readDB.SetMaxOpenConns(opts.ReadConns)
	readDB.SetMaxIdleConns(opts.ReadConns)
	v.readDB = readDB
	if v.ckpt, err = startCheckpointer(path, writeDB, checkpointEvery, restartFrames); err != nil {
		return nil, errors.Join(fmt.Errorf("open view store: %w", err), readDB.Close(), writeDB.Close())
	}
	return v, nil
}

// busyTimeout is how long a connection waits for a lock another holds.
const busyTimeout = 10 * time.Second

// Close releases the store's connections.
func (v *Views) Close() error {
	return errors.Join(v.ckpt.close(), v.readDB.Close(), v.writeDB.Close())
}

func (v *Views) migrate(ctx context.Context) error {
	tx, err := v.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS projection_checkpoints (
		name     TEXT PRIMARY KEY,
		position INTEGER NOT NULL
	) WITHOUT ROWID`); err != nil {
		return err
	}
	// Tables an earlier version kept and this one does not, with their
	// indexes (and the shadows of a rebuild that version left).
	for _, t := range retiredTables {
		for _, name := range []string{t, t + shadowSuffix} {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+name); err != nil {
				return fmt.Errorf("drop retired table %s: %w", name, err)
			}
		}
	}
	for _, rc := range retiredColumns {
		for _, name := range []string{rc.table, rc.table + shadowSuffix} {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, name, rc.column).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			// Rewrites the table: once, on the first start of this version.
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+name+` DROP COLUMN `+rc.column); err != nil {
				return fmt.Errorf("drop retired column %s.%s: %w", name, rc.column, err)
			}
		}
	}
	// A new table starts without its secondary indexes: its projection
	// catches up from the log's start, and builds them once it has
	// (FinishCatchUp).
	for _, p := range projections.Names() {
		for _, t := range tables[p] {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, t.name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, createTable(t, t.name)); err != nil {
				return fmt.Errorf("create %s: %w", t.name, err)
			}
		}
	}
	return tx.Commit()
}

// target resolves a projection name, or its Shadow, to the projection and
// whether the shadow is meant.
func target(name string) (projection string, shadow bool, err error) {
	base, isShadow := strings.CutSuffix(name, projections.Shadow(""))
	if _, ok := tables[base]; !ok {
		return "", false, fmt.Errorf("%q: %w", name, projections.ErrUnknownProjection)
	}
	return base, isShadow, nil
}

// Checkpoint implements projections.Store.
func (v *Views) Checkpoint(ctx context.Context, projection string) (eventstore.Position, error) {
	if _, _, err := target(projection); err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	var pos uint64
	err := v.writeDB.QueryRowContext(ctx, `SELECT position FROM projection_checkpoints WHERE name = ?`, projection).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", projection, err)
	}
	return eventstore.Position(pos), nil
}

func checkpointIn(ctx context.Context, tx *sql.Tx, name string) (eventstore.Position, error) {
	var pos uint64
	err := tx.QueryRowContext(ctx, `SELECT position FROM projection_checkpoints WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return eventstore.Position(pos), err
}

func setCheckpoint(ctx context.Context, tx *sql.Tx, name string, pos eventstore.Position) error {
	// Not cancellable, as runWrites: ctx was checked before.
	_, err := tx.ExecContext(context.WithoutCancel(ctx), `INSERT INTO projection_checkpoints (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, uint64(pos))
	return err
}

// Apply implements projections.Store.
func (v *Views) Apply(ctx context.Context, projection string, events []eventstore.RecordedEvent, checkpoint eventstore.Position) error {
	return v.ApplyBatch(ctx, projection, projections.NewBatch(events), checkpoint)
}

// ApplyBatch implements projections.BatchStore.
func (v *Views) ApplyBatch(ctx context.Context, projection string, batch *projections.Batch, checkpoint eventstore.Position) (err error) {
	p, shadow, err := target(projection)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("apply to %s: %w", projection, err)
		}
	}()
	// Plan before taking the single writer connection, so projections
	// plan in parallel and only write one at a time. Planning reads
	// nothing of this file (states come from memory or the log), only the
	// checkpoint it starts from: for a page of the log, the position it
	// was read after, which is the projection's checkpoint when the
	// Runner applies it. The writer's transaction checks that, and plans
	// again from the checkpoint it finds otherwise (another process
	// sharing the file applied meanwhile). A plan thrown away leaves states
	// in the caches and folds in the batch, each the fold of its stream up
	// to a stream version, right whoever uses it (see applier.resolve).
	events, states := batch.Decoded(), v.statesOf(projection)
	var writes []write
	after, page := batch.Page()
	if page {
		if writes, err = plan(ctx, states, v.history, p, shadow, batch, events, after); err != nil {
			return err
		}
	}
	tx, err := v.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cur, err := checkpointIn(ctx, tx, projection)
	if err != nil {
		return err
	}
	if !page || cur != after {
		if writes, err = plan(ctx, states, v.history, p, shadow, batch, events, cur); err != nil {
			return err
		}
	}
	if err := runWrites(ctx, tx, writes); err != nil {
		return err
	}
	if checkpoint > cur {
		if err := setCheckpoint(ctx, tx, projection, checkpoint); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BeginRebuild implements projections.Store.
func (v *Views) BeginRebuild(ctx context.Context, projection string) error {
	p, shadow, err := target(projection)
	if err != nil || shadow {
		return fmt.Errorf("begin rebuild: %q: %w", projection, projections.ErrUnknownProjection)
	}
	tx, err := v.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	defer tx.Rollback()
	for _, t := range tables[p] {
		physical := t.name + shadowSuffix
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+physical); err != nil {
			return fmt.Errorf("begin rebuild %s: %w", p, err)
		}
		// Its indexes come once the shadow has caught up: FinishCatchUp,
		// or CompleteRebuild at the latest.
		if _, err := tx.ExecContext(ctx, createTable(t, physical)); err != nil {
			return fmt.Errorf("begin rebuild %s: %w", p, err)
		}
	}
	if err := setCheckpoint(ctx, tx, projections.Shadow(p), 0); err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	return nil
}

// CompleteRebuild implements projections.Store: in one transaction it drops
// the live tables, renames the shadow's into their place and moves the
// shadow's checkpoint to the projection. Readers on the pool see the old
// tables or the new ones (WAL snapshot isolation), never neither.
func (v *Views) CompleteRebuild(ctx context.Context, projection string) error {
	p, shadow, err := target(projection)
	if err != nil || shadow {
		return fmt.Errorf("complete rebuild: %q: %w", projection, projections.ErrUnknownProjection)
	}
	tx, err := v.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM projection_checkpoints WHERE name = ?`, projections.Shadow(p)).Scan(&n); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	if n == 0 {
		return fmt.Errorf("complete rebuild %s: no rebuild begun", p)
	}
	cp, err := checkpointIn(ctx, tx, projections.Shadow(p))
	if err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	if err := ensureIndexes(ctx, tx, p, true); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	for _, t := range tables[p] {
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+t.name); err != nil {
			return fmt.Errorf("complete rebuild %s: %w", p, err)
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+t.name+shadowSuffix+` RENAME TO `+t.name); err != nil {
			return fmt.Errorf("complete rebuild %s: %w", p, err)
		}
	}
	if err := setCheckpoint(ctx, tx, p, cp); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM projection_checkpoints WHERE name = ?`, projections.Shadow(p)); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	v.dropStates(projections.Shadow(p))
	return nil
}
