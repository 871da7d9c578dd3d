package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// TestContract runs the view contract suite on tables with their
// secondary indexes, as a projection that has caught up has them, and
// without, as while it catches up from empty: the answers must not depend
// on them.
func TestContract(t *testing.T) {
	t.Parallel()
	t.Run("indexed", func(t *testing.T) { t.Parallel(); testContract(t, true) })
	t.Run("catching_up", func(t *testing.T) { t.Parallel(); testContract(t, false) })
}

func testContract(t *testing.T, indexed bool) {
	var mu sync.Mutex
	paths := map[viewstoretest.Views]string{}
	open := func(t *testing.T, path string, h projections.History) viewstoretest.Views {
		v, err := sqlite.Open(context.Background(), path, sqlite.Options{History: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		if indexed {
			for _, p := range projections.Names() {
				if err := v.FinishCatchUp(context.Background(), p); err != nil {
					t.Fatal(err)
				}
			}
		}
		mu.Lock()
		paths[v] = path
		mu.Unlock()
		return v
	}
	viewstoretest.Run(t, func(t *testing.T, h projections.History) viewstoretest.Views {
		return open(t, filepath.Join(t.TempDir(), "views.db"), h)
	}, func(t *testing.T, v viewstoretest.Views, h projections.History) viewstoretest.Views {
		mu.Lock()
		path := paths[v]
		mu.Unlock()
		if err := v.(*sqlite.Views).Close(); err != nil {
			t.Fatal(err)
		}
		return open(t, path, h)
	})
}
