package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/viewstore/viewstoretest"
)

// The checkpointer keeps the WAL short while the writer writes without
// pause, as a rebuild does: its passive passes copy the frames, and its
// restarts start the WAL over, so the file's high-water mark is a few
// restart thresholds, not the size of everything written. Without the
// checkpointer (the connections never checkpoint by themselves) the WAL
// would hold every page written, more than the database file.
func TestCheckpointerBoundsTheWAL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "views.db")
	v, rec := openRecorded(t, path)
	// Passes every 10 ms, a restart past 256 frames (1 MiB).
	if err := v.ckpt.close(); err != nil {
		t.Fatal(err)
	}
	ckpt, err := startCheckpointer(path, v.writeDB, 10*time.Millisecond, 256)
	if err != nil {
		t.Fatal(err)
	}
	v.ckpt = ckpt
	// (12,000 made 12 MB when each status row held the notification's
	// JSON snapshot; 4 MB since.)
	const notifications = 30000
	for start := 0; start < notifications; start += 250 {
		var streams []viewstoretest.Stream
		for i := start; i < start+250; i++ {
			streams = append(streams, viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("n-%05d", i)),
				fmt.Sprintf("user-%d", i%50), domain.ChannelInApp, domain.PriorityNormal, viewstoretest.Base.Add(time.Duration(i)*time.Second)))
		}
		viewstoretest.ApplyAll(t, v, rec.RecordAll(streams...))
	}
	db, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	wal, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("database %d bytes, WAL high-water mark %d bytes", db.Size(), wal.Size())
	if db.Size() < 8<<20 {
		t.Fatalf("database is %d bytes: the test wrote too little to tell a bounded WAL", db.Size())
	}
	// Unbounded, the WAL reaches about 0.9 of the database here; bounded,
	// 0.2 on an idle machine and up to 0.35 when the suite keeps both
	// cores busy (the passes run late then).
	if wal.Size() > db.Size()/2 {
		t.Errorf("WAL reached %d bytes beside a database of %d: the checkpointer does not keep it short", wal.Size(), db.Size())
	}
	var n int
	if err := v.readDB.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE status = 'delivered'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != notifications {
		t.Fatalf("%d notifications delivered in the view, want %d", n, notifications)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	// The last connection to close checkpoints the rest and removes the WAL.
	if _, err := os.Stat(path + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WAL still there after Close (stat: %v)", err)
	}
	v, err = Open(ctx, path, Options{History: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.readDB.QueryRowContext(ctx, `SELECT count(*) FROM notifications WHERE status = 'delivered'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != notifications {
		t.Fatalf("after reopening: %d notifications delivered in the view, want %d", n, notifications)
	}
}

// openRecorded opens the views at path over a fresh Recorder, the log the
// test writes its events to.
func openRecorded(t *testing.T, path string) (*Views, *viewstoretest.Recorder) {
	t.Helper()
	rec := &viewstoretest.Recorder{}
	v, err := Open(context.Background(), path, Options{History: rec})
	if err != nil {
		t.Fatal(err)
	}
	return v, rec
}
