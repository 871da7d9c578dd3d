//go:build !modernc

package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3" // a second, plain connection to the file

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// TestAppendWhileAnotherProcessHoldsTheWriteLock: when the writer cannot
// even begin its transaction (another process sharing the file keeps the
// write lock past the busy timeout), the appends waiting for it get that
// error instead of waiting for their contexts to end, nothing of them is
// written, and the log takes appends again once the lock is released.
func TestAppendWhileAnotherProcessHoldsTheWriteLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{BusyTimeout: time.Second})
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

	// Eight callers queued behind one lock all get the error after one
	// busy timeout; answered one timeout after another, the later ones
	// would still be waiting when their contexts end.
	const callers = 8
	ctx, cancel := context.WithTimeout(t.Context(), 3500*time.Millisecond)
	defer cancel()
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			ev := eventstore.EventData{ID: fmt.Sprint("e", i), Type: "Noted", SchemaVersion: 1, Data: []byte(`{"n":1}`)}
			_, err := s.Append(ctx, fmt.Sprint("notes-", i), eventstore.NoStream, ev)
			errs <- err
		}()
	}
	for range callers {
		err := <-errs
		if err == nil {
			t.Fatal("append succeeded while another connection held the write lock")
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("append waited for its context instead of failing on the lock: %v", err)
		}
		t.Logf("append refused as it should be: %v", err)
	}

	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	ev := eventstore.EventData{ID: "e1", Type: "Noted", SchemaVersion: 1, Data: []byte(`{"n":1}`)}
	res, err := s.Append(t.Context(), "notes-1", eventstore.NoStream, ev)
	if err != nil {
		t.Fatalf("append after the lock was released: %v", err)
	}
	if res.Version != 1 {
		t.Fatalf("version %d after the refused append, want 1 (nothing of it may have been written)", res.Version)
	}
}
