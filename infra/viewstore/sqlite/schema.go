package sqlite

import (
	"fmt"
	"strings"

	"herald/projections"
)

// shadowSuffix marks the tables of a rebuild in progress.
const shadowSuffix = "__shadow"

// table is one view table: its name and its CREATE statements, written with
// {t} for the table's physical name and {g} for a generation that keeps
// index names unique across rebuilds (a renamed table keeps its indexes'
// names). The first statement creates the table, the others its secondary
// indexes, which a table created empty gets only once its projection has
// caught up (see Views.FinishCatchUp).
type table struct {
	name  string
	stmts []string
}

// tables lists, per projection, the tables it owns. Every table is dropped
// and recreated by a rebuild, so no table is shared between projections.
var tables = map[string][]table{
	projections.ProjectionNotifications: {
		{"notifications", []string{
			`CREATE TABLE {t} (
				id           TEXT PRIMARY KEY,
				status       TEXT NOT NULL,
				priority     TEXT NOT NULL,
				category     TEXT NOT NULL,
				recipient_id TEXT NOT NULL,
				batch_id     TEXT NOT NULL,
				channels     TEXT NOT NULL, -- ",email,sms," for instr() filters
				created_at   INTEGER NOT NULL, -- Unix ns
				updated_at   INTEGER NOT NULL,
				version      INTEGER NOT NULL,
				recipient    TEXT NOT NULL -- JSON
			)`,
			`CREATE INDEX {t}_created_{g} ON {t} (created_at, id)`,
			`CREATE INDEX {t}_status_{g} ON {t} (status, created_at, id)`,
			`CREATE INDEX {t}_recipient_{g} ON {t} (recipient_id, created_at, id)`,
			`CREATE INDEX {t}_batch_{g} ON {t} (batch_id, created_at, id)`,
			// Category and priority filters ride on the created_at index:
			// they are rarely selective alone, and every index costs the
			// projector a b-tree write per notification change.
		}},
		{"notification_deliveries", []string{
			`CREATE TABLE {t} (
				notification_id     TEXT NOT NULL,
				seq                 INTEGER NOT NULL,
				delivery_id         TEXT NOT NULL,
				channel             TEXT NOT NULL,
				address             TEXT NOT NULL,
				status              TEXT NOT NULL,
				attempts            INTEGER NOT NULL,
				last_error          TEXT NOT NULL,
				provider_message_id TEXT NOT NULL,
				next_attempt_at     INTEGER NOT NULL,
				repeats             TEXT NOT NULL,
				suppression_reason  TEXT NOT NULL,
				PRIMARY KEY (notification_id, seq)
			) WITHOUT ROWID`,
			// The dispatcher's recovery scan (PendingDeliveries) reads only
			// the deliveries still owed an attempt.
			`CREATE INDEX {t}_pending_{g} ON {t} (status) WHERE status IN ('planned', 'retry_scheduled', 'in_flight')`,
		}},
	},
	projections.ProjectionInbox: {
		{"inbox_items", []string{
			`CREATE TABLE {t} (
				recipient_id    TEXT NOT NULL,
				item_key        TEXT NOT NULL, -- notification_id "/" delivery_id
				notification_id TEXT NOT NULL,
				delivery_id     TEXT NOT NULL,
				status          TEXT NOT NULL,
				read            INTEGER NOT NULL,
				category        TEXT NOT NULL,
				priority        TEXT NOT NULL,
				subject         TEXT NOT NULL,
				body            TEXT NOT NULL,
				template        TEXT NOT NULL,
				created_at      INTEGER NOT NULL,
				updated_at      INTEGER NOT NULL,
				PRIMARY KEY (recipient_id, item_key)
			) WITHOUT ROWID`,
			`CREATE INDEX {t}_page_{g} ON {t} (recipient_id, created_at, item_key)`,
			`CREATE INDEX {t}_notification_{g} ON {t} (notification_id)`,
		}},
		{"inbox_unread", []string{
			`CREATE TABLE {t} (recipient_id TEXT PRIMARY KEY, unread INTEGER NOT NULL) WITHOUT ROWID`,
		}},
	},
	projections.ProjectionAnalytics: {
		{"analytics_deliveries", []string{
			`CREATE TABLE {t} (
				bucket   TEXT NOT NULL,
				start    INTEGER NOT NULL, -- Unix ns of the bucket's start
				channel  TEXT NOT NULL,
				status   TEXT NOT NULL,
				priority TEXT NOT NULL,
				count    INTEGER NOT NULL,
				PRIMARY KEY (bucket, start, channel, status, priority)
			) WITHOUT ROWID`,
		}},
		{"analytics_latency", []string{
			`CREATE TABLE {t} (
				start   INTEGER NOT NULL, -- hour bucket, Unix ns
				channel TEXT NOT NULL,
				le      INTEGER NOT NULL, -- index into projections.LatencyBoundsMillis
				count   INTEGER NOT NULL,
				PRIMARY KEY (start, channel, le)
			) WITHOUT ROWID`,
		}},
		{"analytics_failures", []string{
			`CREATE TABLE {t} (
				start   INTEGER NOT NULL, -- hour bucket, Unix ns
				channel TEXT NOT NULL,
				reason  TEXT NOT NULL,
				count   INTEGER NOT NULL,
				PRIMARY KEY (start, channel, reason)
			) WITHOUT ROWID`,
		}},
	},
}

// retiredTables are tables earlier versions kept: the inbox and analytics
// projections' copies of every notification's state, now folded from the
// log when not in memory (projections.History). Open drops them.
var retiredTables = []string{"inbox_state", "analytics_state"}

// retiredColumns are columns earlier versions wrote: the status
// view's JSON snapshot of every notification's domain state, which its
// projection resumed from and the scheduler's recovery read; both fold the
// state from the log now when memory does not hold it. Open drops them
// (from a rebuild's shadow too): the new insert leaves them out, and they
// were NOT NULL.
var retiredColumns = []struct{ table, column string }{{"notifications", "snapshot"}}

// createTable returns the statement that creates t as physical.
func createTable(t table, physical string) string {
	return strings.ReplaceAll(t.stmts[0], "{t}", physical)
}

// createIndexes returns the statements that create t's secondary indexes
// on physical, named with generation gen.
func createIndexes(t table, physical string, gen int64) []string {
	out := make([]string, 0, len(t.stmts)-1)
	r := strings.NewReplacer("{t}", physical, "{g}", fmt.Sprint(gen))
	for _, s := range t.stmts[1:] {
		out = append(out, r.Replace(s))
	}
	return out
}

// names maps a projection's logical table names to the physical ones of the
// live tables or of the shadow.
type names map[string]string

func tableNames(projection string, shadow bool) names {
	n := names{}
	for _, t := range tables[projection] {
		if shadow {
			n[t.name] = t.name + shadowSuffix
		} else {
			n[t.name] = t.name
		}
	}
	return n
}

// q replaces {name} placeholders in a statement by physical table names.
func (n names) q(stmt string) string {
	for logical, physical := range n {
		stmt = strings.ReplaceAll(stmt, "{"+logical+"}", physical)
	}
	return stmt
}
