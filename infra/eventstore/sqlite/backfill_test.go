package sqlite_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/infra/eventstore"
	"herald/infra/eventstore/eventstoretest"
	"herald/infra/eventstore/sqlite"
)

// TestBackfillCopiesCommitsIntoTheDatabaseFile appends far less than the
// WAL holds before SQLite's in-commit checkpoint runs, so only the
// backfiller can have copied the events into the database file. Turned
// off, the file must keep its size: that is what makes the first half
// mean anything.
func TestBackfillCopiesCommitsIntoTheDatabaseFile(t *testing.T) {
	t.Parallel()
	const events, payload = 200, 2000 // about 400 KB, some 100 pages of 4,000
	fileSize := func(t *testing.T, path string) int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	fill := func(t *testing.T, interval time.Duration) (path string, before int64, s *sqlite.Store) {
		t.Helper()
		path = filepath.Join(t.TempDir(), "events.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{BackfillInterval: interval})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		before = fileSize(t, path)
		body := strings.Repeat("x", payload)
		for i := 0; i < events; i++ {
			ev := eventstoretest.NewEvent("T", map[string]string{"body": body})
			if _, err := s.Append(t.Context(), fmt.Sprintf("s-%d", i), eventstore.NoStream, ev); err != nil {
				t.Fatal(err)
			}
		}
		return path, before, s
	}
	const grown = events * payload / 2

	t.Run("on", func(t *testing.T) {
		t.Parallel()
		path, before, _ := fill(t, 0) // the default interval
		deadline := time.Now().Add(10 * time.Second)
		for fileSize(t, path)-before < grown {
			if time.Now().After(deadline) {
				t.Fatalf("the database file grew from %d to %d bytes in 10 s; want at least %d more: the appends stayed in the WAL", before, fileSize(t, path), grown)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		path, before, s := fill(t, -1)
		// Fifty default intervals: with the backfiller on, the file
		// grows within a few of them.
		time.Sleep(time.Second)
		if after := fileSize(t, path); after != before {
			t.Fatalf("without the backfiller the database file went from %d to %d bytes: something else checkpoints, and the test above proves nothing", before, after)
		}
		// Every event is still there, read through the WAL.
		recs, err := s.ReadAll(t.Context(), 0, events+1)
		if err != nil || len(recs) != events {
			t.Fatalf("read %d events (%v), want %d", len(recs), err, events)
		}
	})
}
