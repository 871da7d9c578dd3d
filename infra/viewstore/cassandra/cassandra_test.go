package cassandra_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gocql/gocql"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/viewstore/cassandra"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// The tests run against the Cassandra named by HERALD_CASSANDRA_HOSTS
// (host:port, comma-separated), as `scripts/cassandra.sh run` sets it, each
// on fresh keyspaces that they drop when done.
const hostsEnv = "HERALD_CASSANDRA_HOSTS"

var (
	sessionOnce sync.Once
	session     *gocql.Session
	sessionErr  error
	keyspaces   atomic.Int64
	// ddlMu makes the parallel tests create and drop their keyspaces one at
	// a time: schema changes are serialized in Cassandra anyway, and a pile
	// of concurrent ones on a loaded two-core machine is what times out.
	ddlMu sync.Mutex
)

func testSession(t testing.TB) *gocql.Session {
	t.Helper()
	hosts := os.Getenv(hostsEnv)
	if hosts == "" {
		t.Skipf("Cassandra view store tests skipped: %s is not set (make test sets it via scripts/cassandra.sh run)", hostsEnv)
	}
	sessionOnce.Do(func() {
		c := cassandra.NewCluster(strings.Split(hosts, ",")...)
		c.Consistency = gocql.LocalOne // one node
		session, sessionErr = c.CreateSession()
		if sessionErr != nil {
			return
		}
		var release string
		if sessionErr = session.Query(`SELECT release_version FROM system.local`).Scan(&release); sessionErr == nil {
			fmt.Printf("cassandra view store tests: Apache Cassandra %s at %s\n", release, hosts)
			t.Logf("Apache Cassandra %s at %s", release, hosts)
		}
	})
	if sessionErr != nil {
		t.Fatalf("connect to Cassandra at %s: %v", hosts, sessionErr)
	}
	return session
}

// newViews migrates a fresh keyspace and opens the store on it.
func newViews(t testing.TB, opts cassandra.Options) *cassandra.Views {
	t.Helper()
	v, _ := newKeyspace(t, opts)
	return v
}

// newKeyspace is newViews that also names the keyspace.
func newKeyspace(t testing.TB, opts cassandra.Options) (*cassandra.Views, string) {
	t.Helper()
	s := testSession(t)
	ks := fmt.Sprintf("herald_test_%d_%d", time.Now().UnixNano()%1e9, keyspaces.Add(1))
	ctx := context.Background()
	ddlMu.Lock()
	err := cassandra.Migrate(ctx, s, cassandra.MigrateOptions{Keyspace: ks})
	ddlMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ddlMu.Lock()
		defer ddlMu.Unlock()
		if err := s.Query(`DROP KEYSPACE IF EXISTS ` + ks).Exec(); err != nil {
			t.Logf("drop keyspace %s: %v", ks, err)
		}
	})
	opts.Keyspace = ks
	v, err := cassandra.Open(ctx, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v, ks
}

func TestContract(t *testing.T) {
	s := testSession(t)
	var mu sync.Mutex
	keyspaceOf := map[viewstoretest.Views]string{}
	viewstoretest.Run(t, func(t *testing.T, h projections.History) viewstoretest.Views {
		v, ks := newKeyspace(t, cassandra.Options{History: h})
		mu.Lock()
		keyspaceOf[v] = ks
		mu.Unlock()
		return v
	}, func(t *testing.T, v viewstoretest.Views, h projections.History) viewstoretest.Views {
		// A process restarting on the same keyspace: a new store with
		// nothing in memory (Views holds no connections of its own).
		mu.Lock()
		ks := keyspaceOf[v]
		mu.Unlock()
		w, err := cassandra.Open(context.Background(), s, cassandra.Options{Keyspace: ks, History: h})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		keyspaceOf[w] = ks
		mu.Unlock()
		return w
	})
}

func TestMigrate(t *testing.T) {
	s := testSession(t)
	ctx := context.Background()
	var rec viewstoretest.Recorder
	v, ks := newKeyspace(t, cassandra.Options{History: &rec})
	viewstoretest.ApplyAll(t, v, rec.RecordAll(viewstoretest.Scenario()...))

	// Re-running Migrate on a migrated keyspace changes nothing.
	if err := cassandra.Migrate(ctx, s, cassandra.MigrateOptions{Keyspace: ks}); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	if d, err := v.Notification(ctx, viewstoretest.N1); err != nil || d.Status != domain.StatusDelivered {
		t.Fatalf("n-1 after second migrate = %+v, %v", d, err)
	}
	if _, err := cassandra.Open(ctx, s, cassandra.Options{Keyspace: "herald_never_migrated", History: &rec}); !errors.Is(err, cassandra.ErrSchemaVersion) {
		t.Fatalf("open of an unmigrated keyspace: %v, want ErrSchemaVersion", err)
	}
	bad := cassandra.MigrateOptions{Keyspace: "Bad-Name", ReplicationClass: "NetworkTopologyStrategy"}
	if err := cassandra.Migrate(ctx, s, bad); err == nil || !strings.Contains(err.Error(), "keyspace") || !strings.Contains(err.Error(), "replication map") {
		t.Fatalf("invalid options: %v", err)
	}
}

// BenchmarkRebuild measures Apply throughput the way a rebuild drives it:
// a fresh generation filled from position 0 in pages of BatchSize.
func BenchmarkRebuild(b *testing.B) {
	var rec viewstoretest.Recorder
	events := benchEvents(&rec, 10_000)
	v := newViews(b, cassandra.Options{History: &rec})
	ctx := context.Background()
	for _, p := range projections.Names() {
		b.Run(p, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := v.BeginRebuild(ctx, p); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for page := events; len(page) > 0; {
					n := min(len(page), projections.BatchSize)
					if err := v.Apply(ctx, projections.Shadow(p), page[:n], page[n-1].Position); err != nil {
						b.Fatal(err)
					}
					page = page[n:]
				}
			}
			b.ReportMetric(float64(len(events)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// benchEvents returns the log of n notifications (4 events each, on four
// channels, 1,000 recipients, 10 ms apart), interleaved in rounds of 100
// notifications as concurrent sends would append them.
func benchEvents(rec *viewstoretest.Recorder, n int) []eventstore.RecordedEvent {
	channels := []domain.Channel{domain.ChannelWebhook, domain.ChannelEmail, domain.ChannelInApp, domain.ChannelSMS}
	prios := []domain.Priority{domain.PriorityNormal, domain.PriorityHigh, domain.PriorityLow}
	var out []eventstore.RecordedEvent
	for base := 0; base < n; base += 100 {
		var streams []viewstoretest.Stream
		for i := base; i < min(n, base+100); i++ {
			streams = append(streams, viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("b-%06d", i)),
				fmt.Sprintf("user-%d", i%1000), channels[i%len(channels)], prios[i%len(prios)],
				viewstoretest.Base.Add(time.Duration(i)*10*time.Millisecond)))
		}
		for k := 0; k < 4; k++ {
			for _, s := range streams {
				out = append(out, rec.Record(s.ID, s.Events[k]))
			}
		}
	}
	return out
}

// A keyspace at schema version 2 (the layout that stored states, and a
// work table without addresses) comes to the current version: its state
// tables and the status view's state columns go, the work table gains its
// address column, and its views still answer.
func TestMigrateFromVersion2(t *testing.T) {
	s := testSession(t)
	ctx := context.Background()
	var rec viewstoretest.Recorder
	v, ks := newKeyspace(t, cassandra.Options{History: &rec})
	viewstoretest.ApplyAll(t, v, rec.RecordAll(viewstoretest.Scenario()...))
	ddlMu.Lock()
	for _, stmt := range []string{
		`ALTER TABLE ` + ks + `.notifications_g1 ADD (snapshot text, stream_version bigint)`,
		`CREATE TABLE ` + ks + `.inbox_state_g1 (notification_id text PRIMARY KEY, stream_version bigint, snapshot text)`,
		`CREATE TABLE ` + ks + `.analytics_state_g1 (notification_id text PRIMARY KEY, stream_version bigint, snapshot text)`,
		`ALTER TABLE ` + ks + `.work_g1 DROP address`,
		`UPDATE ` + ks + `.schema_version SET version = 2 WHERE component = 'viewstore'`,
	} {
		if err := s.Query(stmt).Exec(); err != nil {
			ddlMu.Unlock()
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	err := cassandra.Migrate(ctx, s, cassandra.MigrateOptions{Keyspace: ks})
	ddlMu.Unlock()
	if err != nil {
		t.Fatalf("migrate from version 2: %v", err)
	}
	var tables, columns []string
	var name string
	iter := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?`, ks).Iter()
	for iter.Scan(&name) {
		tables = append(tables, name)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	iter = s.Query(`SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'notifications_g1'`, ks).Iter()
	for iter.Scan(&name) {
		columns = append(columns, name)
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"inbox_state_g1", "analytics_state_g1"} {
		if slices.Contains(tables, gone) {
			t.Errorf("table %s still there after migrating: %v", gone, tables)
		}
	}
	for _, gone := range []string{"snapshot", "stream_version"} {
		if slices.Contains(columns, gone) {
			t.Errorf("column %s still in notifications_g1 after migrating: %v", gone, columns)
		}
	}
	var address string
	if err := s.Query(`SELECT column_name FROM system_schema.columns WHERE keyspace_name = ? AND table_name = 'work_g1' AND column_name = 'address'`,
		ks).Scan(&address); err != nil {
		t.Errorf("work_g1 has no address column after migrating to version 4: %v", err)
	}
	w, err := cassandra.Open(ctx, s, cassandra.Options{Keyspace: ks, History: &rec})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := w.Notification(ctx, viewstoretest.N1); err != nil || d.Status != domain.StatusDelivered {
		t.Fatalf("n-1 after migrating = %+v, %v", d, err)
	}
}

// Two processes take turns writing a projection (a standby taking over and
// handing back): the one that resumes must not build on the states it
// cached before the other wrote, which are behind the checkpoint.
func TestWritersTakingTurns(t *testing.T) {
	s := testSession(t)
	ctx := context.Background()
	var rec viewstoretest.Recorder
	a, ks := newKeyspace(t, cassandra.Options{History: &rec})
	b, err := cassandra.Open(ctx, s, cassandra.Options{Keyspace: ks, History: &rec})
	if err != nil {
		t.Fatal(err)
	}
	straight := newViews(t, cassandra.Options{History: &rec})
	// The streams interleaved, so that each spans the three turns.
	var evs []eventstore.RecordedEvent
	streams := viewstoretest.Scenario()
	for k, more := 0, true; more; k++ {
		more = false
		for _, st := range streams {
			if k < len(st.Events) {
				evs = append(evs, rec.Record(st.ID, st.Events[k]))
				more = true
			}
		}
	}
	third := len(evs) / 3
	viewstoretest.ApplyAll(t, a, evs[:third])
	viewstoretest.ApplyAll(t, b, evs[third:2*third])
	viewstoretest.ApplyAll(t, a, evs[2*third:])
	viewstoretest.ApplyAll(t, straight, evs)
	ids := []domain.NotificationID{viewstoretest.N1, viewstoretest.N2, viewstoretest.N3}
	recipients := []string{"user-1", "user-2", "nobody"}
	got := viewstoretest.Capture(t, a, ids, recipients)
	want := viewstoretest.Capture(t, straight, ids, recipients)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("taking turns and one writer differ:\n%+v\n%+v", got, want)
	}
}
