package logbus_test

import (
	"path/filepath"
	"testing"

	"herald/infra/eventstore"
	"herald/infra/logbus"
)

func TestCheckpointStores(t *testing.T) {
	t.Parallel()
	for name, newCheckpoints := range checkpointStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cps := newCheckpoints(t)
			ctx := t.Context()
			load := func(group, topic string) eventstore.Position {
				t.Helper()
				p, err := cps.Load(ctx, group, topic)
				if err != nil {
					t.Fatal(err)
				}
				return p
			}
			save := func(group, topic string, p eventstore.Position) {
				t.Helper()
				if err := cps.Save(ctx, group, topic, p); err != nil {
					t.Fatal(err)
				}
			}
			if p := load("g", "notification"); p != 0 {
				t.Fatalf("unsaved checkpoint %d, want 0", p)
			}
			save("g", "notification", 5)
			save("g", "template", 9)
			save("h", "notification", 2)
			save("g", "notification", 3) // behind: ignored
			for _, c := range []struct {
				group, topic string
				want         eventstore.Position
			}{{"g", "notification", 5}, {"g", "template", 9}, {"h", "notification", 2}, {"h", "template", 0}} {
				if p := load(c.group, c.topic); p != c.want {
					t.Errorf("%s/%s = %d, want %d", c.group, c.topic, p, c.want)
				}
			}
			save("g", "notification", 1<<40)
			if p := load("g", "notification"); p != 1<<40 {
				t.Errorf("large position read back as %d", p)
			}
		})
	}
}

func TestSQLiteCheckpointsSurviveReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "checkpoints.db")
	db := openCheckpointDB(t, path)
	cps := newSQLiteCheckpoints(t, db)
	if err := cps.Save(t.Context(), "g", "notification", 42); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db2 := openCheckpointDB(t, path)
	var mode string
	if err := db2.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal mode %q (%v), want wal", mode, err)
	}
	reopened := newSQLiteCheckpoints(t, db2) // creating the table again is harmless
	if p, err := reopened.Load(t.Context(), "g", "notification"); err != nil || p != 42 {
		t.Fatalf("after reopen: %d, %v; want 42", p, err)
	}
	if _, err := logbus.NewSQLiteCheckpoints(t.Context(), nil); err == nil {
		t.Fatal("NewSQLiteCheckpoints(nil) succeeded")
	}
}
