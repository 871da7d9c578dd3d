package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// A batch planned but never committed (the write transaction failed) leaves
// its states in the projections' caches; applying the batch again must not
// start from them. The stream holds an event this domain does not decode,
// so a state's own count of applied events is one short of the stream
// version: only the stream version tells the cached state (after the batch)
// from the one the projection holds (before it).
func TestStatesOfAnUncommittedPlanAreNotReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rec viewstoretest.Recorder
	open := func() *Views {
		v, err := Open(ctx, filepath.Join(t.TempDir(), "views.db"), Options{History: &rec})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	s := viewstoretest.SimpleStream("n-retry", "user-1", domain.ChannelEmail, domain.PriorityNormal, viewstoretest.Base)
	before := []eventstore.RecordedEvent{rec.Record(s.ID, s.Events[0]), rec.Record(s.ID, s.Events[1])}
	batch := []eventstore.RecordedEvent{rec.RecordUnknown(s.ID, "delivery_frobnicated"), rec.Record(s.ID, s.Events[2])}

	v := open()
	viewstoretest.ApplyAll(t, v, before)
	for _, p := range projections.Names() {
		// Plan the batch and throw the writes away, as a failed
		// transaction would. (Each on a page of its own: a page shares
		// the states it folded with the next projection applying it.)
		page := projections.NewLogPage(before[len(before)-1].Position, batch)
		cur, err := v.Checkpoint(ctx, p)
		if err == nil {
			_, err = plan(ctx, v.statesOf(p), v.history, p, false, page, page.Decoded(), cur)
		}
		if err != nil {
			t.Fatal(err)
		}
		again := projections.NewLogPage(before[len(before)-1].Position, batch)
		if err := v.ApplyBatch(ctx, p, again, batch[len(batch)-1].Position); err != nil {
			t.Fatal(err)
		}
	}

	once := open()
	viewstoretest.ApplyAll(t, once, append(append([]eventstore.RecordedEvent(nil), before...), batch...))
	ids, recipients := []domain.NotificationID{s.ID}, []string{"user-1"}
	got, want := viewstoretest.Capture(t, v, ids, recipients), viewstoretest.Capture(t, once, ids, recipients)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("applied again after an uncommitted plan:\n%+v\nwant, as applied once:\n%+v", got, want)
	}
	if d := got.Details[s.ID]; len(d.Deliveries) != 1 || d.Deliveries[0].Attempts != 1 {
		t.Errorf("delivery after its attempt: %+v, want one attempt", d.Deliveries)
	}
}

// A view file an earlier version wrote holds the inbox and analytics
// projections' state tables (and maybe a rebuild's shadow of one); Open
// drops them and leaves the rest.
func TestOpenDropsRetiredTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	v, rec := openRecorded(t, path)
	for _, stmt := range []string{
		`CREATE TABLE inbox_state (notification_id TEXT PRIMARY KEY, snapshot TEXT NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE analytics_state (notification_id TEXT PRIMARY KEY, snapshot TEXT NOT NULL) WITHOUT ROWID`,
		`CREATE TABLE analytics_state__shadow (notification_id TEXT PRIMARY KEY, snapshot TEXT NOT NULL) WITHOUT ROWID`,
	} {
		if _, err := v.writeDB.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	v = reopen(t, v, path, rec)
	var tables []string
	rows, err := v.readDB.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	want := []string{"analytics_deliveries", "analytics_failures", "analytics_latency", "inbox_items", "inbox_unread",
		"notification_deliveries", "notifications", "projection_checkpoints"}
	if !reflect.DeepEqual(tables, want) {
		t.Fatalf("tables after reopening: %v, want %v", tables, want)
	}
}

// A view file an earlier version wrote has a snapshot column in the status
// view (and maybe in a rebuild's shadow of it), NOT NULL, which this
// version does not write. Open drops it, keeps the rows, and the
// notifications projection goes on applying (folding from the log the
// states of notifications it shows but does not hold in memory).
func TestOpenDropsRetiredColumns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	v, rec := openRecorded(t, path)
	s := viewstoretest.SimpleStream("n-old", "user-1", domain.ChannelEmail, domain.PriorityNormal, viewstoretest.Base)
	var events []eventstore.RecordedEvent
	for _, e := range s.Events {
		events = append(events, rec.Record(s.ID, e))
	}
	viewstoretest.ApplyAll(t, v, events[:2])
	want := viewstoretest.Capture(t, v, []domain.NotificationID{s.ID}, nil)
	// The shape an earlier version created, with the row it held.
	const oldTable = `(id TEXT PRIMARY KEY, status TEXT NOT NULL, priority TEXT NOT NULL,
			category TEXT NOT NULL, recipient_id TEXT NOT NULL, batch_id TEXT NOT NULL, channels TEXT NOT NULL,
			created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, version INTEGER NOT NULL,
			recipient TEXT NOT NULL, snapshot TEXT NOT NULL)`
	for _, stmt := range []string{
		`ALTER TABLE notifications RENAME TO notifications_new`,
		`CREATE TABLE notifications ` + oldTable,
		`INSERT INTO notifications SELECT *, '{}' FROM notifications_new`,
		`DROP TABLE notifications_new`,
		`CREATE TABLE notifications__shadow ` + oldTable,
	} {
		if _, err := v.writeDB.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	v = reopen(t, v, path, rec)
	for _, table := range []string{"notifications", "notifications__shadow"} {
		var n int
		if err := v.readDB.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = 'snapshot'`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s still has its snapshot column", table)
		}
	}
	if got := viewstoretest.Capture(t, v, []domain.NotificationID{s.ID}, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("after dropping the column:\n%+v\nwant, as before:\n%+v", got, want)
	}
	// The state of n-old is in no cache of this process: the projection
	// folds it from the log to apply the rest of its events.
	viewstoretest.ApplyAll(t, v, events[2:])
	once, _ := openRecorded(t, filepath.Join(t.TempDir(), "views.db"))
	defer once.Close()
	viewstoretest.ApplyAll(t, once, events)
	ids := []domain.NotificationID{s.ID}
	if got, want := viewstoretest.Capture(t, v, ids, nil), viewstoretest.Capture(t, once, ids, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("applied after reopening:\n%+v\nwant, as applied at once:\n%+v", got, want)
	}
}

// reopen closes v and opens the file at path again over rec, closed when
// the test ends: what a restart on a file does.
func reopen(t *testing.T, v *Views, path string, rec *viewstoretest.Recorder) *Views {
	t.Helper()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := Open(context.Background(), path, Options{History: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}
