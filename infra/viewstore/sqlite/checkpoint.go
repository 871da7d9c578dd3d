package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3" // cgo SQLite driver, as the event log uses

	"herald/infra/internal/sqlitedb"
)

// The view store's connections never checkpoint the WAL by themselves
// (wal_autocheckpoint=0): a checkpointer goroutine does, on a connection of
// its own, beside the single writer connection instead of inside its
// commits.
//
// With SQLite's automatic checkpoint, the commit that crossed 1,000 WAL
// pages copied them into the database file and fsynced both files before
// it returned, on the writer's time: in a rebuild from zero (300,000
// events, 308 MB of views) the writer connection was held 5.3 s of 5.6 s,
// 2.9 s of them in commits, and the process used under one of the two
// cores. Without any checkpoint the same rebuild took 3.2 s. A PASSIVE
// checkpoint copies and fsyncs while the writer keeps writing. The views'
// durability is unchanged (synchronous=NORMAL: commits are not fsynced,
// checkpoints are).
//
// The event log keeps SQLite's checkpoint on purpose (see its writer): it
// fsyncs every commit, and there a WAL that kept growing made each
// fdatasync journal a change of file size.
const viewsDriver = "sqlite3-herald-views"

func init() {
	sql.Register(viewsDriver, &sqlite3.SQLiteDriver{
		ConnectHook: func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec("PRAGMA wal_autocheckpoint=0", nil)
			return err
		},
	})
}

const (
	// checkpointEvery is how often the checkpointer runs a passive
	// checkpoint. A pass with frames to copy fsyncs the WAL and the
	// database file, and the event log's group commits wait behind those
	// fsyncs on the same disk: with a pass every 250 ms, api_batch took
	// 12,063 and 14,864 notifications/s against 14,136 and 15,681 with
	// SQLite's own checkpoint; every second, 17,182 and 16,451 against
	// 14,666 and 15,113 at 250 ms (interleaved runs), and the rebuild
	// lost nothing. A rebuild writes up to about 100 MB between two
	// passes. A pass with nothing to copy does no I/O. Polling, rather
	// than being told of commits, also covers every write path and other
	// processes sharing the file.
	checkpointEvery = time.Second
	// restartFrames bounds the WAL: 64 MiB of 4 KiB pages. A passive
	// checkpoint copies frames but cannot start the WAL over; the writer
	// does that by itself only when it begins a transaction with every
	// frame copied and no reader on the WAL, which never happens while
	// a rebuild writes without pause and plans on the read pool. Past
	// this size the checkpointer runs a RESTART on the writer connection,
	// taking its turn between two applies: it copies what the passive
	// passes left, waits for the readers that still use the WAL to finish
	// (new readers read the database file) and lets the next write start
	// the WAL over. In the rebuild above a restart held the writer 30 to
	// 290 ms, once per 64 MiB.
	restartFrames = 16384
)

// checkpointer runs the view store's checkpoints until stop is closed.
type checkpointer struct {
	db     *sql.DB // one connection of its own, for the passive passes
	writer *sql.DB // the store's writer, for restarts
	every  time.Duration
	// restartAt is restartFrames; tests lower it.
	restartAt int
	stop      chan struct{}
	done      chan struct{}
	closing   sync.Once
}

func startCheckpointer(path string, writer *sql.DB, every time.Duration, restartAt int) (*checkpointer, error) {
	db, err := sqlitedb.OpenOne(viewsDriver, dsn(path, false))
	if err != nil {
		return nil, err
	}
	c := &checkpointer{db: db, writer: writer, every: every, restartAt: restartAt, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	restarted := -1 // the WAL size the last restart saw
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		// An error (a closing store, say) is left for the next pass: the
		// WAL only grows meanwhile, nothing is lost.
		frames, err := sqlitedb.Checkpoint(context.Background(), c.db, "PASSIVE")
		// Until the next write starts the WAL over, a pass still sees the
		// frames the last restart copied: no second restart for them.
		if err == nil && frames >= c.restartAt && frames != restarted {
			if n, err := sqlitedb.Checkpoint(context.Background(), c.writer, "RESTART"); err == nil {
				restarted = n
			}
		}
	}
}

// close stops the checkpointer. The store's last connection to close
// checkpoints what is left, as SQLite does whatever wal_autocheckpoint
// says. Calls after the first do nothing.
func (c *checkpointer) close() error {
	var err error
	c.closing.Do(func() {
		close(c.stop)
		<-c.done
		err = c.db.Close()
	})
	return err
}
