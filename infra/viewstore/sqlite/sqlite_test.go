package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
)

func TestContract(t *testing.T) {
	t.Parallel()
	viewstoretest.Run(t, func(t *testing.T) viewstoretest.Views {
		v, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "views.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	})
}
