// Package sqlite is the embedded event log: one SQLite file in WAL mode with
// synchronous=FULL, so an append is on disk (fsync'd) before it returns.
//
// One goroutine owns the only write connection and does group commit: it
// takes every append queued while the previous transaction was committing,
// checks each against its own expected version, writes the accepted ones with
// multi-row INSERTs and commits them with a single fsync. Each caller still
// gets its own result or its own WrongVersionError.
//
// Driver: github.com/mattn/go-sqlite3 (cgo), chosen by measurement against
// the pure-Go modernc.org/sqlite with this package's own code (build tag
// `modernc` swaps the driver). `herald bench eventstore`, median of 3, same
// machine (2 cores), back to back:
//
//	                    mattn      modernc
//	append, 16 writers  21,338/s   21,905/s
//	append, 64 writers  54,494/s   50,629/s
//	readall             435,096/s  356,346/s
//
// Appends are bound by fsync and group forming, so the drivers tie there;
// reads decide it.
//
// The Makefile builds SQLite with HAVE_FDATASYNC, so that commits sync the
// WAL with fdatasync(2): it writes the data and, when the file grew, its
// size, and skips only the modification time, which SQLite never reads.
// Without it (a plain `go build`) SQLite calls fsync(2): just as durable,
// and a commit costs more (16 writers, three runs each: a commit took 0.36
// to 0.39 ms against 0.40 to 0.45 ms). An append returns only after the
// commit's sync either way. It also sets SQLITE_DEFAULT_MEMSTATUS=0: no
// memory statistics, so SQLite's allocator takes no process-wide mutex
// (readall, two runs each: 556k and 587k against 548k and 522k events/s).
//
// Several Store values, in one process or several, may share a file:
// SQLite's locks serialise their writers, each writer's cache of stream
// versions is dropped when PRAGMA data_version shows another connection
// committed, and subscriptions notice other writers' appends within
// Options.PollInterval.
package sqlite
