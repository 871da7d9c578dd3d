package sqlite_test

import (
	"path/filepath"
	"testing"

	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

func TestBacklogContract(t *testing.T) {
	viewstoretest.RunBacklog(t, func(t *testing.T, h projections.History) viewstoretest.BacklogViews {
		v, err := viewsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "views.db"), viewsqlite.Options{History: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	})
}
