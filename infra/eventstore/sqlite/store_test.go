package sqlite_test

import (
	"path/filepath"
	"testing"

	"herald/infra/eventstore"
	"herald/infra/eventstore/eventstoretest"
	"herald/infra/eventstore/sqlite"
)

func TestContract(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) (eventstore.Store, func(t *testing.T) eventstore.Store) {
		path := filepath.Join(t.TempDir(), "events.db")
		open := func(t *testing.T) eventstore.Store {
			t.Helper()
			s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatalf("open %s: %v", path, err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(t), open
	})
}
