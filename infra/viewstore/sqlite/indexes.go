package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A projection's tables are created empty and without their secondary
// indexes, when the store is new and when a rebuild begins: the projection
// then catches up from the log's start, and keeping every index up to date
// row by row while it does cost more than building the indexes once at the
// end. Until then the tables answer every query, by their primary keys or
// by scanning. A projection that follows the log always has its indexes:
// the Runner calls FinishCatchUp before it follows, and CompleteRebuild
// builds a shadow's if they are still missing.

// FinishCatchUp implements projections.CatchUpFinisher: it builds the
// secondary indexes the projection's (or its shadow's) tables lack.
func (v *Views) FinishCatchUp(ctx context.Context, projection string) error {
	p, shadow, err := target(projection)
	if err != nil {
		return fmt.Errorf("finish catch-up: %w", err)
	}
	tx, err := v.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish catch-up of %s: %w", projection, err)
	}
	defer tx.Rollback()
	if err := ensureIndexes(ctx, tx, p, shadow); err != nil {
		return fmt.Errorf("finish catch-up of %s: %w", projection, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("finish catch-up of %s: %w", projection, err)
	}
	return nil
}

// ensureIndexes creates, in tx, the secondary indexes of every table of
// projection p (or of its shadow) that has none. A table's indexes are
// always created together, so one that has any has them all.
func ensureIndexes(ctx context.Context, tx *sql.Tx, p string, shadow bool) error {
	gen := time.Now().UnixNano()
	for logical, physical := range tableNames(p, shadow) {
		t, ok := tableOf(p, logical)
		if !ok || len(t.stmts) < 2 {
			continue
		}
		var n int
		// Automatic indexes (primary keys, UNIQUE) have no SQL.
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`, physical).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		for _, s := range createIndexes(t, physical, gen) {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("index %s: %w", physical, err)
			}
		}
	}
	return nil
}

// tableOf returns projection p's table named logical.
func tableOf(p, logical string) (table, bool) {
	for _, t := range tables[p] {
		if t.name == logical {
			return t, true
		}
	}
	return table{}, false
}
