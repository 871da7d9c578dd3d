package sqlite

import (
	"context"
	"database/sql"
	"time"

	"herald/infra/internal/sqlitedb"
)

// DefaultBackfillInterval is how often, at most, the backfiller copies
// committed WAL frames into the database file while appends keep coming.
//
// SQLite's own checkpoint runs inside the commit that crosses
// wal_autocheckpoint (see newWriter): that commit copies the whole WAL, 16
// MiB, into the database file and fsyncs it before it returns, and every
// caller of its group, and every caller queued behind it, waits. At 22,000
// sends/s that was a stall of about 20 ms four times a second, in which no
// send was answered, and it set the p99 of api_send (role api): 12.1 and
// 13.0 ms. With a pass at most every 20 ms the commit that crosses the
// threshold finds nearly every frame copied already and only restarts the
// WAL: 7.9 and 8.3 ms (every 100 ms: 10.7 and 10.7 ms). Bare appends, which
// have no such stalls to hide, lose a little: 64 writers 107,739 and
// 100,639 events/s against 113,508 and 113,580, p99 2.2–2.6 ms against
// 1.2–1.4 ms (interleaved runs).
const DefaultBackfillInterval = 20 * time.Millisecond

// backfiller runs passive checkpoints on a connection of its own, after
// commits, at most one per interval. A passive checkpoint never waits for
// the writer nor holds it up: it copies the frames committed before it
// began and fsyncs the database file, while the writer keeps appending to
// the WAL. The writer's in-commit checkpoint stays: it copies what is left
// and lets the next transaction start the WAL over, so the WAL keeps its
// size and a commit's fdatasync never has to grow the file (a backfiller
// alone, without it, made appends 25-40% slower).
type backfiller struct {
	db       *sql.DB
	interval time.Duration
	poke     chan struct{} // capacity 1: a commit happened since the last pass
	stop     chan struct{}
	done     chan struct{}
}

func startBackfiller(path string, opts Options) (*backfiller, error) {
	db, err := sqlitedb.OpenOne(driverName, dsn(path, false, opts.BusyTimeout))
	if err != nil {
		return nil, err
	}
	b := &backfiller{db: db, interval: opts.BackfillInterval,
		poke: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b, nil
}

// committed tells the backfiller that the WAL has new frames. It never
// blocks; a nil backfiller (turned off) ignores it.
func (b *backfiller) committed() {
	if b == nil {
		return
	}
	select {
	case b.poke <- struct{}{}:
	default:
	}
}

func (b *backfiller) run() {
	defer close(b.done)
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-b.poke:
		}
		// An error (the file busy with another process's checkpoint, a
		// closing store) is left for the next pass: nothing depends on
		// this one, the in-commit checkpoint still bounds the WAL.
		_, _ = sqlitedb.Checkpoint(context.Background(), b.db, "PASSIVE")
		wait.Reset(b.interval)
		select {
		case <-b.stop:
			return
		case <-wait.C:
		}
	}
}

// close stops the backfiller and closes its connection. The writer must
// have stopped: no commit comes after it.
func (b *backfiller) close() error {
	if b == nil {
		return nil
	}
	close(b.stop)
	<-b.done
	return b.db.Close()
}
