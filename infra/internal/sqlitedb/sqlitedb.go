// Package sqlitedb holds what the SQLite event log and the SQLite view
// store do alike with their database/sql pools: a pool of one connection
// kept for the store's life, and a WAL checkpoint. It knows no driver and
// no schema.
package sqlitedb

import (
	"context"
	"database/sql"
)

// OpenOne opens a pool of exactly one connection of driver to dsn, never
// closed for idleness or age: a single writer's, or a checkpointer's.
func OpenOne(driver, dsn string) (*sql.DB, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// Checkpoint runs one WAL checkpoint of mode (PASSIVE, FULL, RESTART or
// TRUNCATE) on db and returns how many frames the WAL held.
func Checkpoint(ctx context.Context, db *sql.DB, mode string) (frames int, err error) {
	var busy, copied int
	err = db.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
	return frames, err
}
