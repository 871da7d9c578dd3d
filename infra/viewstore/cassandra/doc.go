// Package cassandra is the scale-out view store: the projections' tables
// in an Apache Cassandra keyspace (5.0, for its Storage-Attached Indexes).
// It implements projections.Store (the Runner's write side) and the query
// ports NotificationView, Search, Inbox and Analytics, and passes the same
// contract suite (viewstoretest) as the embedded SQLite store, with the
// same answers.
//
// Migrate creates or upgrades the keyspace (a schema_version table records
// how far it got); `herald migrate` is meant to call it, and Open refuses a
// keyspace that was not migrated. NewCluster gives the driver settings the
// store is written for.
//
// Cassandra has no multi-row transaction, so instead of committing a batch
// with its checkpoint this store makes every write replay-safe: rows are
// absolute values (no counters, no list appends), no projection stores the
// notification states it computes (after a restart they are folded again
// from the log up to the checkpoint, projections.History), analytics rows
// record the last log position counted into them, and the checkpoint is
// written after everything else. One writer per projection (the Runner)
// is assumed: it computes aggregates by read-modify-write.
//
// Rebuilds fill a new generation of the projection's tables and swap it in
// by rewriting one pointer row (see Views).
//
// Status is never derived here: projectors fold the domain's state with
// domain.EvolveNotification and store what the domain says.
// It must not be imported by readapi or domain.
package cassandra
