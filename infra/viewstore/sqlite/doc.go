// Package sqlite is the embedded view store: one SQLite file (views.db,
// separate from the event log) holding every projection's tables and
// checkpoints. It implements projections.Store (the Runner's write side) and
// the query ports NotificationView, Search, Inbox and Analytics.
//
// Like the event log it runs in WAL mode with one writer connection (the
// projections' single writer) and a pool of read-only connections, so
// queries never wait for a projection batch. Unlike the log it uses
// synchronous=NORMAL: a power cut may lose the last committed batches, but
// never tears one, and the Runner re-applies them from the log since batch
// and checkpoint always commit together.
//
// It also implements projections.BatchStore. An apply plans its writes
// first, without the writer (so the projections plan in parallel), then
// holds the writer only to run them, as multi-row upserts, with the
// checkpoint in one transaction. Projections applying the same log page
// from the same checkpoint share the decoded events and the evolved states
// (projections.Fold).
//
// Status is never derived here: projectors take each notification's domain
// state from memory (the states they computed last) or fold it from the
// log (projections.History), evolve it with domain.EvolveNotification, and
// store what the domain says. No view stores the domain state itself.
//
// Tables created empty (a new store, a rebuild's shadow) get their
// secondary indexes only once their projection has caught up with the log
// (projections.CatchUpFinisher, indexes.go): building them once is cheaper
// than keeping them up to date row by row through a rebuild.
//
// WAL checkpoints run on a goroutine of their own, beside the writer
// (checkpoint.go).
// It must not be imported by readapi or domain.
package sqlite
