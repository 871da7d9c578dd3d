package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // cgo SQLite driver, as the event log uses

	"herald/infra/eventstore"
	"herald/projections"
)

var (
	_ projections.Store            = (*Views)(nil)
	_ projections.NotificationView = (*Views)(nil)
	_ projections.Search           = (*Views)(nil)
	_ projections.Inbox            = (*Views)(nil)
	_ projections.Analytics        = (*Views)(nil)
)

// Options tune Views. The zero value is the production default.
type Options struct {
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
	writeDB *sql.DB
	readDB  *sql.DB
}

func dsn(path string, readOnly bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "NORMAL")
	q.Set("_busy_timeout", "10000")
	q.Set("_cache_size", "-65536")
	if readOnly {
		q.Set("_query_only", "true")
	}
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the view store in the SQLite file at path
// and creates the live tables of every projection that has none.
func Open(ctx context.Context, path string, opts Options) (*Views, error) {
	opts.setDefaults()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open view store: %w", err)
		}
	}
	writeDB, err := sql.Open("sqlite3", dsn(path, false))
	if err != nil {
		return nil, fmt.Errorf("open view store: %w", err)
	}
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	writeDB.SetConnMaxLifetime(0)
	writeDB.SetConnMaxIdleTime(0)
	v := &Views{writeDB: writeDB}
	if err := v.migrate(ctx); err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open view store: %w", err)
	}
	// The read pool opens after the schema exists, so no reader ever runs
	// against a file without tables.
	readDB, err := sql.Open("sqlite3", dsn(path, true))
	if err != nil {
		writeDB.Close()
		return nil, fmt.Errorf("open view store: %w", err)
	}
	readDB.SetMaxOpenConns(opts.ReadConns)
	readDB.SetMaxIdleConns(opts.ReadConns)
	v.readDB = readDB
	return v, nil
}

// Close releases the store's connections.
func (v *Views) Close() error {
	return errors.Join(v.readDB.Close(), v.writeDB.Close())
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
	gen := time.Now().UnixNano()
	for _, p := range projections.Names() {
		for _, t := range tables[p] {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, t.name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				continue
			}
			for _, s := range createStatements(t, t.name, gen) {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("create %s: %w", t.name, err)
				}
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
	_, err := tx.ExecContext(ctx, `INSERT INTO projection_checkpoints (name, position) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position`, name, uint64(pos))
	return err
}

// Apply implements projections.Store.
func (v *Views) Apply(ctx context.Context, projection string, events []eventstore.RecordedEvent, checkpoint eventstore.Position) (err error) {
	p, shadow, err := target(projection)
	if err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("apply to %s: %w", projection, err)
		}
	}()
	// Decode before taking the single writer connection, so projections
	// decode in parallel and only write one at a time.
	order, steps := group(events)
	tx, err := v.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	cur, err := checkpointIn(ctx, tx, projection)
	if err != nil {
		return err
	}
	// Skip what this projection already has: a batch re-applied after a
	// crash between the log read and the commit changes nothing.
	if len(events) > 0 && events[0].Position <= cur {
		fresh := events
		for len(fresh) > 0 && fresh[0].Position <= cur {
			fresh = fresh[1:]
		}
		order, steps = group(fresh)
	}
	if len(order) > 0 {
		ap := &applier{ctx: ctx, tx: tx, n: tableNames(p, shadow)}
		err := ap.apply(p, order, steps)
		ap.close()
		if err != nil {
			return err
		}
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
	gen := time.Now().UnixNano()
	for _, t := range tables[p] {
		physical := t.name + shadowSuffix
		if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+physical); err != nil {
			return fmt.Errorf("begin rebuild %s: %w", p, err)
		}
		for _, s := range createStatements(t, physical, gen) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("begin rebuild %s: %w", p, err)
			}
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
	return nil
}
