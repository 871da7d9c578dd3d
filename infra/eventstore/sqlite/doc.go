// Package sqlite is the embedded event log: one SQLite file in WAL mode with
// synchronous=FULL, so an append is on disk (fsync'd) before it returns.
//
// One goroutine owns the only write connection and does group commit: it
// takes every append queued while the previous transaction was committing,
// checks each against its own expected version, writes the accepted ones with
// multi-row INSERTs and commits them with a single fsync. Each caller still
// gets its own result or its own WrongVersionError.
//
// Driver: github.com/mattn/go-sqlite3 (cgo). Both it and the pure-Go
// modernc.org/sqlite were measured with this package's own code (build tag
// `modernc` swaps the driver; see `herald bench`); the figures are in the
// driver_*.go files.
//
// Several Store values, in one process or several, may share a file:
// SQLite's locks serialise their writers, each writer's cache of stream
// versions is dropped when PRAGMA data_version shows another connection
// committed, and subscriptions notice other writers' appends within
// Options.PollInterval.
package sqlite
