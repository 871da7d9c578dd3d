package logbus

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"herald/infra/eventstore"
)

const checkpointSchema = `
CREATE TABLE IF NOT EXISTS logbus_checkpoints (
	consumer_group TEXT    NOT NULL,
	topic          TEXT    NOT NULL,
	position       INTEGER NOT NULL,
	PRIMARY KEY (consumer_group, topic)
) WITHOUT ROWID;
`

// SQLiteCheckpoints is a durable CheckpointStore in a SQLite database, one row
// per consumer group and topic in the table logbus_checkpoints. It works with
// any database/sql SQLite driver the caller has opened the database with
// (Herald uses github.com/mattn/go-sqlite3); it does not own the database
// and never closes it.
type SQLiteCheckpoints struct {
	db *sql.DB
}

// NewSQLiteCheckpoints creates the checkpoint table in db if needed and puts
// the database in WAL mode, so that saving a checkpoint does not block
// readers. A Save is as durable as the database's synchronous setting makes
// a commit.
func NewSQLiteCheckpoints(ctx context.Context, db *sql.DB) (*SQLiteCheckpoints, error) {
	if db == nil {
		return nil, errors.New("logbus: new sqlite checkpoints: nil database")
	}
	var mode string
	if err := db.QueryRowContext(ctx, `PRAGMA journal_mode=WAL`).Scan(&mode); err != nil {
		return nil, fmt.Errorf("logbus: new sqlite checkpoints: set WAL: %w", err)
	}
	if _, err := db.ExecContext(ctx, checkpointSchema); err != nil {
		return nil, fmt.Errorf("logbus: new sqlite checkpoints: create table: %w", err)
	}
	return &SQLiteCheckpoints{db: db}, nil
}

// Load implements CheckpointStore.
func (c *SQLiteCheckpoints) Load(ctx context.Context, group, topic string) (eventstore.Position, error) {
	var p int64
	err := c.db.QueryRowContext(ctx,
		`SELECT position FROM logbus_checkpoints WHERE consumer_group = ? AND topic = ?`, group, topic).Scan(&p)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("load checkpoint %s/%s: %w", group, topic, err)
	case p < 0:
		return 0, fmt.Errorf("load checkpoint %s/%s: negative position %d", group, topic, p)
	}
	return eventstore.Position(p), nil
}

// Save implements CheckpointStore. It is one upsert that keeps the higher of
// the saved and the given position.
func (c *SQLiteCheckpoints) Save(ctx context.Context, group, topic string, p eventstore.Position) error {
	if p > math.MaxInt64 {
		return fmt.Errorf("save checkpoint %s/%s: position %d exceeds SQLite's integers", group, topic, p)
	}
	_, err := c.db.ExecContext(ctx, `
INSERT INTO logbus_checkpoints (consumer_group, topic, position) VALUES (?, ?, ?)
ON CONFLICT (consumer_group, topic) DO UPDATE SET position = excluded.position
WHERE excluded.position > logbus_checkpoints.position`, group, topic, int64(p))
	if err != nil {
		return fmt.Errorf("save checkpoint %s/%s: %w", group, topic, err)
	}
	return nil
}
