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

func TestContract(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	paths := map[viewstoretest.Views]string{}
	open := func(t *testing.T, path string, h projections.History) viewstoretest.Views {
		v, err := sqlite.Open(context.Background(), path, sqlite.Options{History: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
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
