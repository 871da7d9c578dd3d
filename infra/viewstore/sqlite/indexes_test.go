package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	eventsqlite "herald/infra/eventstore/sqlite"
	"herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// secondaryIndexes counts, per table, the indexes created by SQL (not those
// SQLite makes for primary keys) in the views file at path.
func secondaryIndexes(t *testing.T, path string) map[string]int {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT m.name, count(i.name) FROM sqlite_master m
		LEFT JOIN sqlite_master i ON i.type = 'index' AND i.tbl_name = m.name AND i.sql IS NOT NULL
		WHERE m.type = 'table' GROUP BY m.name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// indexedTables are the tables that have secondary indexes once caught up,
// with how many.
var indexedTables = map[string]int{"notifications": 4, "notification_deliveries": 1, "inbox_items": 2}

func wantIndexes(t *testing.T, path, suffix string, built bool) {
	t.Helper()
	got := secondaryIndexes(t, path)
	for table, n := range indexedTables {
		want := 0
		if built {
			want = n
		}
		if got[table+suffix] != want {
			t.Errorf("%s%s has %d secondary indexes, want %d (all: %v)", table, suffix, got[table+suffix], want, got)
		}
	}
}

// A new store's tables start without their secondary indexes; the Runner's
// catch-up ends by building them, before Status shows the projections
// caught up, and a rebuild's shadow gets them before it is swapped in.
func TestIndexesBuiltWhenCaughtUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	log, err := eventsqlite.Open(ctx, filepath.Join(dir, "events.db"), eventsqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	appendSimple(t, log, 0, 300)
	path := filepath.Join(dir, "views.db")
	v, err := sqlite.Open(ctx, path, sqlite.Options{History: log})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	wantIndexes(t, path, "", false)

	r, err := projections.NewRunner(log, v, projections.RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	waitFollowing(t, r)
	wantIndexes(t, path, "", true)

	// Finishing again adds nothing.
	if err := v.FinishCatchUp(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, path, "", true)

	// A rebuild's shadow starts bare and is swapped in with its indexes.
	if err := v.BeginRebuild(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatal(err)
	}
	if got := secondaryIndexes(t, path)["notifications__shadow"]; got != 0 {
		t.Fatalf("new shadow has %d secondary indexes, want 0", got)
	}
	if err := v.CompleteRebuild(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, path, "", true)
	if err := r.Rebuild(ctx, projections.ProjectionInbox); err != nil {
		t.Fatal(err)
	}
	wantIndexes(t, path, "", true)
	if _, ok := secondaryIndexes(t, path)["inbox_items__shadow"]; ok {
		t.Fatal("the inbox shadow outlived its swap")
	}
}

// The answers of views that caught up without their indexes, then built
// them, are those of views that had them all along.
func TestIndexesLateEqualsEarly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rec viewstoretest.Recorder
	streams := viewstoretest.Scenario()
	var ids []domain.NotificationID
	for i := range 40 {
		s := viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("x-%03d", i)), fmt.Sprintf("user-%d", i%4),
			[]domain.Channel{domain.ChannelInApp, domain.ChannelWebhook}[i%2], domain.PriorityNormal,
			viewstoretest.Base.Add(time.Duration(i)*time.Minute))
		streams = append(streams, s)
		ids = append(ids, s.ID)
	}
	evs := rec.RecordAll(streams...)
	open := func(name string) *sqlite.Views {
		v, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), name), sqlite.Options{History: &rec})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	}
	finish := func(v *sqlite.Views) {
		for _, p := range projections.Names() {
			if err := v.FinishCatchUp(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	early, late := open("early.db"), open("late.db")
	finish(early)
	viewstoretest.ApplyAll(t, early, evs)
	viewstoretest.ApplyAll(t, late, evs)
	recipients := []string{"user-0", "user-1", "user-2", "user-3"}
	bare := viewstoretest.Capture(t, late, ids, recipients)
	finish(late)
	want := viewstoretest.Capture(t, early, ids, recipients)
	if got := viewstoretest.Capture(t, late, ids, recipients); !reflect.DeepEqual(got, want) {
		t.Fatalf("views indexed after catching up differ from views indexed from the start:\n%+v\nwant\n%+v", got, want)
	}
	if !reflect.DeepEqual(bare, want) {
		t.Fatalf("views without their indexes answer differently:\n%+v\nwant\n%+v", bare, want)
	}
}

func waitFollowing(t *testing.T, r *projections.Runner) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		sts, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		following := true
		for _, st := range sts {
			if st.CatchingUp || st.Checkpoint < st.Head {
				following = false
			}
		}
		if following {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections still catching up after 20 s: %+v", sts)
		}
		time.Sleep(5 * time.Millisecond) // polling the runner's status
	}
}

// appendSimple appends the simple streams of notifications from to to-1 to
// log.
func appendSimple(t *testing.T, log *eventsqlite.Store, from, to int) {
	t.Helper()
	var reqs []eventstore.AppendRequest
	for i := from; i < to; i++ {
		s := viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("s-%06d", i)), fmt.Sprintf("user-%d", i%10),
			[]domain.Channel{domain.ChannelInApp, domain.ChannelWebhook}[i%2], domain.PriorityNormal,
			viewstoretest.Base.Add(time.Duration(i)*time.Second))
		reqs = append(reqs, s.AppendNew())
	}
	_, errs := log.AppendMany(context.Background(), reqs)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
