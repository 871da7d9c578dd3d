//go:build !modernc

package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // a second, plain connection to the file

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// TestAppendWhileAnotherProcessHoldsTheWriteLock: when the writer cannot
// even begin its transaction (another process sharing the file keeps the
// write lock past the busy timeout), the append that opened the group gets
// that error instead of waiting for its context to end, and the log takes
// appends again once the lock is released.
func TestAppendWhileAnotherProcessHoldsTheWriteLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	other, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	ev := eventstore.EventData{ID: "e1", Type: "Noted", SchemaVersion: 1, Data: []byte(`{"n":1}`)}
	_, err = s.Append(ctx, "notes-1", eventstore.NoStream, ev)
	if err == nil {
		t.Fatal("append succeeded while another connection held the write lock")
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("append waited for its context instead of failing on the lock: %v", err)
	}
	t.Logf("append refused as it should be: %v", err)

	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(t.Context(), "notes-1", eventstore.NoStream, ev)
	if err != nil {
		t.Fatalf("append after the lock was released: %v", err)
	}
	if res.Version != 1 {
		t.Fatalf("version %d after the refused append, want 1 (nothing of it may have been written)", res.Version)
	}
}
