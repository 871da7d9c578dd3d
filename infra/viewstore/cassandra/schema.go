package cassandra

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"

	"herald/projections"
)

// SchemaVersion is the version of the keyspace layout this package reads
// and writes. Migrate brings a keyspace up to it; Open refuses any other.
const SchemaVersion = 4

// schemaComponent is this package's row in the schema_version table (the
// keyspace may one day hold other components' tables too).
const schemaComponent = "viewstore"

// ErrSchemaVersion means the keyspace's schema is not the one this build
// expects: run Migrate (`herald migrate`) first, or upgrade the binary.
var ErrSchemaVersion = errors.New("view store schema version mismatch")

// MigrateOptions say where and how to create the view store's keyspace.
type MigrateOptions struct {
	// Keyspace is the keyspace name: lower-case letters, digits and
	// underscores, starting with a letter, at most 48 characters.
	Keyspace string
	// ReplicationClass is "SimpleStrategy" (default) or
	// "NetworkTopologyStrategy".
	ReplicationClass string
	// ReplicationFactor is SimpleStrategy's factor (default 1).
	ReplicationFactor int
	// Replication maps datacenter to factor for NetworkTopologyStrategy
	// (required with it, refused with SimpleStrategy).
	Replication map[string]int
}

var identifier = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)

func (o *MigrateOptions) setDefaults() {
	if o.ReplicationClass == "" {
		o.ReplicationClass = "SimpleStrategy"
	}
	if o.ReplicationClass == "SimpleStrategy" && o.ReplicationFactor == 0 {
		o.ReplicationFactor = 1
	}
}

// Validate reports every problem of the options at once.
func (o MigrateOptions) Validate() error {
	var errs []error
	if !identifier.MatchString(o.Keyspace) {
		errs = append(errs, fmt.Errorf("keyspace %q: want [a-z][a-z0-9_]*, at most 48 characters", o.Keyspace))
	}
	switch o.ReplicationClass {
	case "SimpleStrategy":
		if o.ReplicationFactor < 1 {
			errs = append(errs, fmt.Errorf("replication factor %d: must be at least 1", o.ReplicationFactor))
		}
		if len(o.Replication) > 0 {
			errs = append(errs, errors.New("replication map: only with NetworkTopologyStrategy"))
		}
	case "NetworkTopologyStrategy":
		if len(o.Replication) == 0 {
			errs = append(errs, errors.New("replication map: required with NetworkTopologyStrategy"))
		}
		for dc, rf := range o.Replication {
			if !regexp.MustCompile(`^[A-Za-z0-9_.-]+$`).MatchString(dc) || rf < 1 {
				errs = append(errs, fmt.Errorf("replication map entry %q: %d", dc, rf))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("replication class %q: want SimpleStrategy or NetworkTopologyStrategy", o.ReplicationClass))
	}
	return errors.Join(errs...)
}

func (o MigrateOptions) replication() string {
	if o.ReplicationClass == "SimpleStrategy" {
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", o.ReplicationFactor)
	}
	parts := []string{"'class': 'NetworkTopologyStrategy'"}
	for _, dc := range slices.Sorted(maps.Keys(o.Replication)) {
		parts = append(parts, fmt.Sprintf("'%s': %d", dc, o.Replication[dc]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// Migrate creates the view store's keyspace and tables, or brings an older
// layout up to SchemaVersion. It is idempotent and safe to re-run after a
// failure midway (every statement is IF NOT EXISTS, and the version row is
// written last), but it must not run concurrently with itself or with
// BeginRebuild/CompleteRebuild. An existing keyspace keeps its replication:
// Migrate does not ALTER it.
//
// It is what `herald migrate` runs against the scale-out engines; Open
// does no DDL and refuses a keyspace that was not migrated.
func Migrate(ctx context.Context, session *gocql.Session, opts MigrateOptions) error {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("migrate view store: %w", err)
	}
	ks := opts.Keyspace
	m := &migrator{ctx: ctx, s: session}
	m.ddl(fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS %s WITH replication = %s`, ks, opts.replication()))
	m.ddl(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_version (
		component  text PRIMARY KEY,
		version    int,
		applied_at timestamp)`, ks))
	if m.err != nil {
		return fmt.Errorf("migrate view store %s: %w", ks, m.err)
	}
	current, err := schemaVersionOf(ctx, session, ks)
	if err != nil {
		return fmt.Errorf("migrate view store %s: %w", ks, err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("migrate view store %s: keyspace is at version %d, this build knows %d: %w", ks, current, SchemaVersion, ErrSchemaVersion)
	}
	for v := current + 1; v <= SchemaVersion; v++ {
		migrations[v-1](m, ks)
		if m.err != nil {
			return fmt.Errorf("migrate view store %s to version %d: %w", ks, v, m.err)
		}
		if err := session.Query(fmt.Sprintf(`INSERT INTO %s.schema_version (component, version, applied_at) VALUES (?, ?, ?)`, ks),
			schemaComponent, v, time.Now()).WithContext(ctx).Exec(); err != nil {
			return fmt.Errorf("migrate view store %s to version %d: %w", ks, v, err)
		}
	}
	return nil
}

// migrations[i] brings a keyspace from version i to i+1.
var migrations = []func(m *migrator, ks string){
	// 1: the bookkeeping tables and generation 1 of every projection.
	func(m *migrator, ks string) {
		m.ddl(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.generations (
			projection text PRIMARY KEY,
			live       int,
			shadow     int,
			retired    int)`, ks))
		m.ddl(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.checkpoints (
			projection text,
			generation int,
			position   bigint,
			PRIMARY KEY ((projection), generation))`, ks))
		for _, p := range projections.Names() {
			if m.err != nil {
				return
			}
			var live int
			err := m.s.Query(fmt.Sprintf(`SELECT live FROM %s.generations WHERE projection = ?`, ks), p).WithContext(m.ctx).Scan(&live)
			switch {
			case err == nil && live > 0:
				continue
			case err != nil && !errors.Is(err, gocql.ErrNotFound):
				m.err = err
				return
			}
			m.createGeneration(ks, p, 1)
			if m.err == nil {
				m.err = m.s.Query(fmt.Sprintf(`INSERT INTO %s.generations (projection, live) VALUES (?, ?)`, ks), p, 1).WithContext(m.ctx).Exec()
			}
		}
	},
	// 2: the work table (deliveries owed an attempt, scheduled
	// notifications owed a release) in every existing generation of the
	// notifications projection, and the leases table.
	func(m *migrator, ks string) {
		m.ddl(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.leases (
			name  text PRIMARY KEY,
			owner text)`, ks))
		var live, shadow int
		err := m.s.Query(fmt.Sprintf(`SELECT live, shadow FROM %s.generations WHERE projection = ?`, ks),
			projections.ProjectionNotifications).WithContext(m.ctx).Scan(&live, &shadow)
		if err != nil {
			if m.err == nil {
				m.err = err
			}
			return
		}
		for _, gen := range []int{live, shadow} {
			if gen > 0 {
				m.ddl(strings.ReplaceAll(workTable, "{t}", tableName(ks, "work", gen)))
			}
		}
	},
	// 3: the projections store no notification states any more, in any
	// generation: they fold the states they do not hold in memory from
	// the log (projections.History). The inbox and analytics state tables
	// go, and so do the snapshot and stream_version columns of the status
	// view.
	func(m *migrator, ks string) {
		for _, gen := range m.generations(ks, projections.ProjectionNotifications) {
			m.dropColumns(ks, "notifications", gen, "snapshot", "stream_version")
		}
		for p, table := range map[string]string{projections.ProjectionInbox: "inbox_state", projections.ProjectionAnalytics: "analytics_state"} {
			for _, gen := range m.generations(ks, p) {
				m.ddl(`DROP TABLE IF EXISTS ` + tableName(ks, table, gen))
			}
		}
	},
	// 4: the work table keeps each delivery's address, so that the
	// dispatcher's limits per address hold for the work it recovers at
	// start. Rows written before have none until the notification
	// changes again or the projection is rebuilt.
	func(m *migrator, ks string) {
		for _, gen := range m.generations(ks, projections.ProjectionNotifications) {
			m.addColumns(ks, "work", gen, map[string]string{"address": "text"})
		}
	},
}

func schemaVersionOf(ctx context.Context, s *gocql.Session, ks string) (int, error) {
	var v int
	err := s.Query(fmt.Sprintf(`SELECT version FROM %s.schema_version WHERE component = ?`, ks), schemaComponent).WithContext(ctx).Scan(&v)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	return v, err
}

// migrator runs DDL until the first error, waiting for schema agreement
// after each statement so the next one (and the first write) finds it on
// every node.
type migrator struct {
	ctx context.Context
	s   *gocql.Session
	err error
}

func (m *migrator) ddl(stmt string) {
	if m.err != nil {
		return
	}
	// Every statement Migrate runs is idempotent (IF [NOT] EXISTS), so a
	// statement whose answer timed out is tried again once the nodes agree
	// on the schema: a busy node often applies the change but answers
	// late, and the retry then finds it done.
	var err error
	for attempt := 1; ; attempt++ {
		err = m.s.Query(stmt).WithContext(m.ctx).Exec()
		if err == nil || attempt == ddlAttempts || !isTimeout(err) {
			break
		}
		if err := m.s.AwaitSchemaAgreement(m.ctx); err != nil {
			break
		}
	}
	if err != nil {
		m.err = fmt.Errorf("%s: %w", firstLine(stmt), err)
		return
	}
	if err := m.s.AwaitSchemaAgreement(m.ctx); err != nil {
		m.err = fmt.Errorf("%s: schema agreement: %w", firstLine(stmt), err)
	}
}

// ddlAttempts bounds the tries of one schema statement whose answer timed
// out.
const ddlAttempts = 3

// isTimeout reports whether err says a statement's answer did not arrive
// in time (on the client or between the coordinator and the replicas),
// not that the statement was refused.
func isTimeout(err error) bool {
	var wt *gocql.RequestErrWriteTimeout
	return errors.Is(err, gocql.ErrTimeoutNoResponse) || errors.As(err, &wt)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

func (m *migrator) createGeneration(ks, projection string, gen int) {
	for _, t := range viewTables[projection] {
		for _, stmt := range t.stmts {
			m.ddl(strings.NewReplacer("{t}", tableName(ks, t.name, gen), "{i}", indexName(t.name, gen)).Replace(stmt))
		}
	}
}

// generations returns the projection's live, shadow and retired
// generations, those that exist.
func (m *migrator) generations(ks, projection string) []int {
	if m.err != nil {
		return nil
	}
	var live, shadow, retired int
	err := m.s.Query(fmt.Sprintf(`SELECT live, shadow, retired FROM %s.generations WHERE projection = ?`, ks), projection).
		WithContext(m.ctx).Scan(&live, &shadow, &retired)
	if err != nil {
		m.err = err
		return nil
	}
	var out []int
	for _, gen := range []int{live, shadow, retired} {
		if gen > 0 {
			out = append(out, gen)
		}
	}
	return out
}

// columns returns the columns generation gen of table has (none when the
// table does not exist).
func (m *migrator) columns(ks, table string, gen int) map[string]bool {
	if m.err != nil {
		return nil
	}
	iter := m.s.Query(`SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ?`,
		ks, fmt.Sprintf("%s_g%d", table, gen)).WithContext(m.ctx).Iter()
	has := map[string]bool{}
	var name string
	for iter.Scan(&name) {
		has[name] = true
	}
	if err := iter.Close(); err != nil {
		m.err = err
		return nil
	}
	return has
}

// dropColumns drops those of cols that generation gen of table has (ALTER
// TABLE DROP has no IF EXISTS: a re-run after a failure midway must skip
// what is gone).
func (m *migrator) dropColumns(ks, table string, gen int, cols ...string) {
	has := m.columns(ks, table, gen)
	for _, c := range cols {
		if has[c] {
			m.ddl(fmt.Sprintf(`ALTER TABLE %s DROP %s`, tableName(ks, table, gen), c))
		}
	}
}

// addColumns adds those of cols (name → CQL type) that generation gen of
// table lacks, if the table exists (a re-run after a failure midway skips
// what is there).
func (m *migrator) addColumns(ks, table string, gen int, cols map[string]string) {
	has := m.columns(ks, table, gen)
	if len(has) == 0 {
		return
	}
	for _, c := range slices.Sorted(maps.Keys(cols)) {
		if !has[c] {
			m.ddl(fmt.Sprintf(`ALTER TABLE %s ADD %s %s`, tableName(ks, table, gen), c, cols[c]))
		}
	}
}

func (m *migrator) dropGeneration(ks, projection string, gen int) {
	for _, t := range viewTables[projection] {
		m.ddl(`DROP TABLE IF EXISTS ` + tableName(ks, t.name, gen))
	}
}

// tableName is the physical name of generation gen of a view table.
func tableName(ks, name string, gen int) string { return fmt.Sprintf("%s.%s_g%d", ks, name, gen) }

// indexName prefixes the SAI index names of a table generation (index
// names are unique per keyspace).
func indexName(name string, gen int) string { return fmt.Sprintf("%s_g%d", name, gen) }

// viewTable is one table of a projection, created once per generation:
// {t} is its qualified physical name, {i} the prefix of its index names.
type viewTable struct {
	name  string
	stmts []string
}

// Partition spans, in nanoseconds, aligned on the Unix epoch: a search day,
// and the spans that keep analytics partitions to a few thousand rows.
const (
	day         = int64(24 * time.Hour)
	minuteSpan  = day       // minute buckets: one partition per UTC day
	hourSpan    = 16 * day  // hour buckets, latency and failures
	daySpanSize = 256 * day // day buckets
)

// viewTables lists each projection's tables. Every table belongs to one
// projection and one generation, so a rebuild writes into tables nobody
// else writes, and swapping generations is a pointer flip.
//
// Times are Unix nanoseconds in bigint columns (timestamp keeps only
// milliseconds). Columns that a summary lists in order are frozen lists,
// written whole; no table has counters or list appends: every write is an
// absolute value, so writing it twice leaves the same row.
var viewTables = map[string][]viewTable{
	projections.ProjectionNotifications: {
		// The status view: one partition per notification.
		{"notifications", []string{`CREATE TABLE IF NOT EXISTS {t} (
			id             text PRIMARY KEY,
			status         text,
			priority       text,
			category       text,
			recipient_id   text,
			batch_id       text,
			channels       frozen<list<text>>,
			created_at     bigint,
			updated_at     bigint,
			version        int,
			recipient      text,   -- domain.Recipient JSON
			deliveries     text    -- []projections.DeliveryView JSON
		)`}},
		// The search index: one partition per UTC day of created_at,
		// newest first, with SAI indexes for the filters. A query walks
		// the days newest first (search_days lists them) until a page
		// is full; the filters run inside one partition at a time.
		{"search", []string{`CREATE TABLE IF NOT EXISTS {t} (
			day          int,
			created_at   bigint,
			id           text,
			status       text,
			priority     text,
			category     text,
			recipient_id text,
			batch_id     text,
			channels     set<text>,
			channel_list frozen<list<text>>,
			updated_at   bigint,
			version      int,
			PRIMARY KEY ((day), created_at, id)
		) WITH CLUSTERING ORDER BY (created_at DESC, id DESC)`,
			`CREATE INDEX IF NOT EXISTS {i}_status ON {t} (status) USING 'sai'`,
			`CREATE INDEX IF NOT EXISTS {i}_priority ON {t} (priority) USING 'sai'`,
			`CREATE INDEX IF NOT EXISTS {i}_category ON {t} (category) USING 'sai'`,
			`CREATE INDEX IF NOT EXISTS {i}_recipient ON {t} (recipient_id) USING 'sai'`,
			`CREATE INDEX IF NOT EXISTS {i}_batch ON {t} (batch_id) USING 'sai'`,
			`CREATE INDEX IF NOT EXISTS {i}_channels ON {t} (values(channels)) USING 'sai'`,
		}},
		{"search_days", []string{`CREATE TABLE IF NOT EXISTS {t} (
			shard int,
			day   int,
			PRIMARY KEY ((shard), day)
		) WITH CLUSTERING ORDER BY (day DESC)`}},
		{"work", []string{workTable}},
	},
	projections.ProjectionInbox: {
		// Every shown in-app item of a recipient, newest first.
		{"inbox_items", []string{inboxTable}},
		// The unread ones only (same rows, deleted when read): the unread
		// page and count never scan read items.
		{"inbox_unread", []string{inboxTable}},
	},
	projections.ProjectionAnalytics: {
		// count is the absolute number of deliveries that entered status;
		// through is the highest log position counted into it, so a
		// re-applied event is recognised and not counted twice.
		{"analytics_deliveries", []string{`CREATE TABLE IF NOT EXISTS {t} (
			bucket   text,
			span     bigint,
			start    bigint,
			channel  text,
			status   text,
			priority text,
			count    bigint,
			through  bigint,
			PRIMARY KEY ((bucket, span), start, channel, status, priority))`}},
		{"analytics_latency", []string{`CREATE TABLE IF NOT EXISTS {t} (
			span    bigint,
			start   bigint, -- hour bucket
			channel text,
			le      int,    -- index into projections.LatencyBoundsMillis
			count   bigint,
			through bigint,
			PRIMARY KEY ((span), start, channel, le))`}},
		{"analytics_failures", []string{`CREATE TABLE IF NOT EXISTS {t} (
			span    bigint,
			start   bigint, -- hour bucket
			channel text,
			reason  text,
			count   bigint,
			through bigint,
			PRIMARY KEY ((span), start, channel, reason))`}},
		// Which partitions of the tables above exist, per kind, so queries
		// without a time range know where to look.
		{"analytics_spans", []string{`CREATE TABLE IF NOT EXISTS {t} (
			kind text,
			span bigint,
			PRIMARY KEY ((kind), span))`}},
	},
}

// workTable holds what the roles owe: a row per delivery still owed an
// attempt (planned, retry scheduled, in flight) and, with delivery_id "",
// a row per scheduled notification owed its release. The dispatcher and
// the scheduler read it at start instead of replaying the log; rows leave
// when the work is done (one delete each: a notification's settled
// deliveries are never deleted again). Spread over workShards partitions.
const workTable = `CREATE TABLE IF NOT EXISTS {t} (
	shard           int,
	notification_id text,
	delivery_id     text,
	channel         text,
	priority        text,
	status          text,
	due             bigint,
	address         text,
	PRIMARY KEY ((shard), notification_id, delivery_id))`

const inboxTable = `CREATE TABLE IF NOT EXISTS {t} (
	recipient_id    text,
	created_at      bigint,
	item_key        text, -- notification_id "/" delivery_id
	notification_id text,
	delivery_id     text,
	status          text,
	read            boolean,
	category        text,
	priority        text,
	subject         text,
	body            text,
	template        text,
	updated_at      bigint,
	PRIMARY KEY ((recipient_id), created_at, item_key)
) WITH CLUSTERING ORDER BY (created_at DESC, item_key DESC)`
