package cassandra

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gocql/gocql"

	"herald/infra/eventstore"
	"herald/projections"
)

var (
	_ projections.Store            = (*Views)(nil)
	_ projections.NotificationView = (*Views)(nil)
	_ projections.Search           = (*Views)(nil)
	_ projections.Inbox            = (*Views)(nil)
	_ projections.Analytics        = (*Views)(nil)
)

// NewCluster returns a gocql cluster configuration with the settings this
// store is written for: protocol v4, token-aware routing (each write goes
// straight to a replica of its partition), LOCAL_QUORUM reads and writes
// (so a query sees what Apply wrote), LOCAL_SERIAL, and generous timeouts
// for the DDL of Migrate and rebuilds. Callers may change it before
// CreateSession.
func NewCluster(hosts ...string) *gocql.ClusterConfig {
	c := gocql.NewCluster(hosts...)
	c.ProtoVersion = 4
	c.Consistency = gocql.LocalQuorum
	c.SerialConsistency = gocql.LocalSerial
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.Timeout = 20 * time.Second
	c.ConnectTimeout = 10 * time.Second
	c.MaxWaitSchemaAgreement = time.Minute
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 2}
	return c
}

// Options tune Views. The zero value of every field but Keyspace is the
// production default.
type Options struct {
	// Keyspace holds the tables Migrate created.
	Keyspace string
	// History is the event log the views follow (required): no
	// projection stores notification states; each folds from it those
	// it does not hold in memory (see projections.History).
	History projections.History
	// Concurrency bounds the statements one Apply has in flight
	// (default 64).
	Concurrency int
	// PointerTTL is how long queries trust the generation pointer they
	// last read before reading it again (default 1s). A rebuild swapped
	// in by another process shows within it; this process's own swaps
	// show at once.
	PointerTTL time.Duration
	// StateCacheSize bounds the notification states a projection keeps
	// in memory between batches (default 100,000 per projection).
	StateCacheSize int
}

func (o *Options) setDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.PointerTTL <= 0 {
		o.PointerTTL = time.Second
	}
	if o.StateCacheSize <= 0 {
		o.StateCacheSize = 100_000
	}
}

// Views is the Cassandra view store. It is safe for concurrent use. It does
// not own the session: close the session after the last call.
//
// Each projection's tables exist in numbered generations (`search_g3`); the
// generations table holds, per projection, a pointer row naming the live
// generation and the shadow being rebuilt. Queries read the live
// generation; Apply writes the one its name designates. A rebuild fills a
// fresh generation and CompleteRebuild flips the pointer in one single-row
// write, which Cassandra applies atomically: readers see the old tables or
// the new ones, never a mix, and the checkpoint (kept per generation) moves
// with them. The replaced generation stays readable until the next
// BeginRebuild of that projection drops it, so a reader that fetched the
// pointer just before the swap still finishes its query.
type Views struct {
	s    *gocql.Session
	ks   string
	opts Options

	mu       sync.Mutex
	pointers map[string]pointerEntry
	writers  map[writerKey]*writer
}

type pointerEntry struct {
	p       pointer
	fetched time.Time
}

// pointer is a projection's row of the generations table (0 = none).
type pointer struct{ live, shadow, retired int }

type writerKey struct {
	projection string
	gen        int
}

// Open returns the view store in opts.Keyspace over session. It does no
// DDL: the keyspace must have been migrated to SchemaVersion (Migrate), or
// Open fails with ErrSchemaVersion.
func Open(ctx context.Context, session *gocql.Session, opts Options) (*Views, error) {
	if session == nil {
		return nil, errors.New("open cassandra view store: nil session")
	}
	if opts.History == nil {
		return nil, errors.New("open cassandra view store: no History (the event log) to fold states from")
	}
	opts.setDefaults()
	if !identifier.MatchString(opts.Keyspace) {
		return nil, fmt.Errorf("open cassandra view store: keyspace %q is not a valid name", opts.Keyspace)
	}
	v, err := migratedVersion(ctx, session, opts.Keyspace)
	if err != nil {
		return nil, fmt.Errorf("open cassandra view store %s: %w", opts.Keyspace, err)
	}
	if v != SchemaVersion {
		return nil, fmt.Errorf("open cassandra view store %s: keyspace at version %d, want %d (run herald migrate): %w",
			opts.Keyspace, v, SchemaVersion, ErrSchemaVersion)
	}
	return &Views{s: session, ks: opts.Keyspace, opts: opts, pointers: map[string]pointerEntry{}, writers: map[writerKey]*writer{}}, nil
}

// migratedVersion is the keyspace's schema version, 0 when the keyspace
// or its schema_version table does not exist.
func migratedVersion(ctx context.Context, s *gocql.Session, ks string) (int, error) {
	var name string
	err := s.Query(`SELECT table_name FROM system_schema.tables WHERE keyspace_name = ? AND table_name = 'schema_version'`, ks).
		WithContext(ctx).Scan(&name)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return schemaVersionOf(ctx, s, ks)
}

// target resolves a projection name, or its Shadow, to the projection and
// whether the shadow is meant.
func target(name string) (projection string, shadow bool, err error) {
	base, isShadow := strings.CutSuffix(name, projections.Shadow(""))
	if _, ok := viewTables[base]; !ok {
		return "", false, fmt.Errorf("%q: %w", name, projections.ErrUnknownProjection)
	}
	return base, isShadow, nil
}

// readPointer reads a projection's generation pointer from Cassandra and
// caches it.
func (v *Views) readPointer(ctx context.Context, projection string) (pointer, error) {
	var live, shadow, retired int
	err := v.s.Query(fmt.Sprintf(`SELECT live, shadow, retired FROM %s.generations WHERE projection = ?`, v.ks), projection).
		WithContext(ctx).Scan(&live, &shadow, &retired)
	if errors.Is(err, gocql.ErrNotFound) || (err == nil && live == 0) {
		return pointer{}, fmt.Errorf("projection %s has no generation (run herald migrate): %w", projection, ErrSchemaVersion)
	}
	if err != nil {
		return pointer{}, err
	}
	p := pointer{live, shadow, retired}
	v.mu.Lock()
	v.pointers[projection] = pointerEntry{p, time.Now()}
	v.mu.Unlock()
	return p, nil
}

// livePointer returns the cached pointer while it is fresh.
func (v *Views) livePointer(ctx context.Context, projection string) (pointer, error) {
	v.mu.Lock()
	e, ok := v.pointers[projection]
	v.mu.Unlock()
	if ok && time.Since(e.fetched) < v.opts.PointerTTL {
		return e.p, nil
	}
	return v.readPointer(ctx, projection)
}

// liveTable is the qualified name of the live generation of a table.
func (v *Views) liveTable(ctx context.Context, projection, name string) (string, error) {
	p, err := v.livePointer(ctx, projection)
	if err != nil {
		return "", err
	}
	return tableName(v.ks, name, p.live), nil
}

// writerFor returns the writer of the generation that name designates.
// The pointer is read from the cache: this process is the projection's
// single writer, and its own BeginRebuild/CompleteRebuild update the cache.
func (v *Views) writerFor(ctx context.Context, name string) (*writer, error) {
	p, shadow, err := target(name)
	if err != nil {
		return nil, err
	}
	v.mu.Lock()
	e, ok := v.pointers[p]
	v.mu.Unlock()
	ptr := e.p
	if !ok {
		if ptr, err = v.readPointer(ctx, p); err != nil {
			return nil, err
		}
	}
	gen := ptr.live
	if shadow {
		if ptr.shadow == 0 {
			// Another process may have begun it: look again.
			if ptr, err = v.readPointer(ctx, p); err != nil {
				return nil, err
			}
			if ptr.shadow == 0 {
				return nil, nil
			}
		}
		gen = ptr.shadow
	}
	key := writerKey{p, gen}
	v.mu.Lock()
	defer v.mu.Unlock()
	w, ok := v.writers[key]
	if !ok {
		w = newWriter(v, p, gen)
		v.writers[key] = w
	}
	return w, nil
}

// Checkpoint implements projections.Store. It reads the pointer and the
// checkpoint from Cassandra (not from cache): the Runner calls it when it
// (re)starts a projection, and then it must see what is stored.
func (v *Views) Checkpoint(ctx context.Context, name string) (eventstore.Position, error) {
	p, shadow, err := target(name)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	ptr, err := v.readPointer(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	gen := ptr.live
	if shadow {
		if ptr.shadow == 0 {
			return 0, nil
		}
		gen = ptr.shadow
	}
	pos, err := v.readCheckpoint(ctx, p, gen)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	return pos, nil
}

func (v *Views) readCheckpoint(ctx context.Context, projection string, gen int) (eventstore.Position, error) {
	var pos int64
	err := v.s.Query(fmt.Sprintf(`SELECT position FROM %s.checkpoints WHERE projection = ? AND generation = ?`, v.ks), projection, gen).
		WithContext(ctx).Scan(&pos)
	if errors.Is(err, gocql.ErrNotFound) {
		return 0, nil
	}
	return eventstore.Position(pos), err
}

func (v *Views) writeCheckpoint(ctx context.Context, projection string, gen int, pos eventstore.Position) error {
	return v.s.Query(fmt.Sprintf(`INSERT INTO %s.checkpoints (projection, generation, position) VALUES (?, ?, ?)`, v.ks),
		projection, gen, int64(pos)).WithContext(ctx).Idempotent(true).Exec()
}

// Apply implements projections.Store. Cassandra has no transaction over a
// batch, so Apply makes every write replay-safe instead and orders them:
// first the view rows, then the checkpoint. After a crash anywhere in
// between, re-applying the batch (the Runner resumes from the checkpoint)
// rewrites the same absolute values: the notification states it starts
// from are folded from the log up to the checkpoint, and each analytics row
// remembers the last log position counted into it.
func (v *Views) Apply(ctx context.Context, projection string, events []eventstore.RecordedEvent, checkpoint eventstore.Position) error {
	w, err := v.writerFor(ctx, projection)
	if err != nil {
		return fmt.Errorf("apply to %s: %w", projection, err)
	}
	if w == nil {
		return fmt.Errorf("apply to %s: no rebuild begun", projection)
	}
	if err := w.apply(ctx, events, checkpoint); err != nil {
		return fmt.Errorf("apply to %s: %w", projection, err)
	}
	return nil
}

// BeginRebuild implements projections.Store: it drops the projection's
// leftover shadow and its retired generation (the one the previous
// rebuild replaced), creates a fresh generation with checkpoint 0 and
// points the shadow at it. Like Migrate, it must not run concurrently with
// another BeginRebuild or CompleteRebuild of the same projection (the
// Runner never does that).
func (v *Views) BeginRebuild(ctx context.Context, projection string) error {
	p, shadow, err := target(projection)
	if err != nil || shadow {
		return fmt.Errorf("begin rebuild: %q: %w", projection, projections.ErrUnknownProjection)
	}
	ptr, err := v.readPointer(ctx, p)
	if err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	gen := max(ptr.live, ptr.shadow, ptr.retired) + 1
	m := &migrator{ctx: ctx, s: v.s}
	for _, old := range []int{ptr.shadow, ptr.retired} {
		if old != 0 && old != ptr.live {
			m.dropGeneration(v.ks, p, old)
			v.forgetWriter(p, old)
		}
	}
	m.createGeneration(v.ks, p, gen)
	if m.err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, m.err)
	}
	if err := v.writeCheckpoint(ctx, p, gen, 0); err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	if err := v.s.Query(fmt.Sprintf(`UPDATE %s.generations SET shadow = ?, retired = null WHERE projection = ?`, v.ks), gen, p).
		WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	if _, err := v.readPointer(ctx, p); err != nil {
		return fmt.Errorf("begin rebuild %s: %w", p, err)
	}
	return nil
}

// CompleteRebuild implements projections.Store: one write of the pointer
// row makes the shadow generation live (with its checkpoint) and retires
// the old one.
func (v *Views) CompleteRebuild(ctx context.Context, projection string) error {
	p, shadow, err := target(projection)
	if err != nil || shadow {
		return fmt.Errorf("complete rebuild: %q: %w", projection, projections.ErrUnknownProjection)
	}
	ptr, err := v.readPointer(ctx, p)
	if err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	if ptr.shadow == 0 {
		return fmt.Errorf("complete rebuild %s: no rebuild begun", p)
	}
	if err := v.s.Query(fmt.Sprintf(`UPDATE %s.generations SET live = ?, shadow = null, retired = ? WHERE projection = ?`, v.ks),
		ptr.shadow, ptr.live, p).WithContext(ctx).Exec(); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	v.forgetWriter(p, ptr.live)
	if _, err := v.readPointer(ctx, p); err != nil {
		return fmt.Errorf("complete rebuild %s: %w", p, err)
	}
	return nil
}

func (v *Views) forgetWriter(projection string, gen int) {
	v.mu.Lock()
	delete(v.writers, writerKey{projection, gen})
	v.mu.Unlock()
}
