package projections_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	eventsqlite "herald/infra/eventstore/sqlite"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

func openLog(t *testing.T) *eventsqlite.Store {
	t.Helper()
	s, err := eventsqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), eventsqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openViews(t *testing.T, path string, log eventstore.Store) *viewsqlite.Views {
	t.Helper()
	v, err := viewsqlite.Open(context.Background(), path, viewsqlite.Options{History: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func appendStreams(t testing.TB, log eventstore.Store, streams ...viewstoretest.Stream) {
	t.Helper()
	for _, s := range streams {
		data := make([]eventstore.EventData, len(s.Events))
		for i, e := range s.Events {
			data[i] = viewstoretest.EventData(e)
		}
		if _, err := log.Append(context.Background(), domain.NotificationStream(s.ID), eventstore.Any, data...); err != nil {
			t.Fatalf("append %s: %v", s.ID, err)
		}
	}
}

// startRunner runs r until the test ends and checks Run stopped cleanly.
func startRunner(t *testing.T, r *projections.Runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not stop after ctx end")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond until it holds or the deadline passes.
// startRebuild starts a background rebuild of projection on r, which
// startRunner has started: until Run has begun, StartRebuild answers
// ErrNotRunning (seen under a loaded make test), so that is retried.
func startRebuild(t *testing.T, r *projections.Runner, projection string) {
	t.Helper()
	eventually(t, "Run to begin", func() bool {
		err := r.StartRebuild(projection)
		if err != nil && !errors.Is(err, projections.ErrNotRunning) {
			t.Fatalf("StartRebuild(%s): %v", projection, err)
		}
		return err == nil
	})
}

func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // poll interval, not a wait for an outcome
	}
}

// waitFollowing waits until every projection of r follows live appends.
func waitFollowing(t testing.TB, r *projections.Runner) {
	t.Helper()
	eventually(t, "the projections to follow", func() bool {
		st, err := r.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range st {
			if s.CatchingUp {
				return false
			}
		}
		return true
	})
}

func caughtUp(t testing.TB, r *projections.Runner) bool {
	t.Helper()
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Head == 0 || s.Checkpoint != s.Head || s.Rebuilding || s.CatchingUp {
			return false
		}
	}
	return true
}

func newRunner(t *testing.T, log projections.Log, v projections.Store) *projections.Runner {
	t.Helper()
	r, err := projections.NewRunner(log, v, projections.RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var recipients = []string{"user-1", "user-2", "user-r", "nobody"}

func ids(streams []viewstoretest.Stream) []domain.NotificationID {
	var out []domain.NotificationID
	for _, s := range streams {
		out = append(out, s.ID)
	}
	return out
}

func moreStreams(prefix string, n int, start time.Time) []viewstoretest.Stream {
	var out []viewstoretest.Stream
	chans := []domain.Channel{domain.ChannelInApp, domain.ChannelWebhook, domain.ChannelEmail}
	prios := []domain.Priority{domain.PriorityHigh, domain.PriorityNormal, domain.PriorityLow}
	for i := range n {
		out = append(out, viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("%s-%03d", prefix, i)), "user-r",
			chans[i%3], prios[i%3], start.Add(time.Duration(i)*time.Second)))
	}
	return out
}

func TestRunnerFollowsTheLog(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	r := newRunner(t, log, views)

	// Before Run: the status shows the whole log as lag.
	appendStreams(t, log, viewstoretest.Scenario()[0])
	st, err := r.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 || st[0].Name != projections.ProjectionNotifications || st[0].Checkpoint != 0 || st[0].LagEvents != uint64(st[0].Head) || st[0].LagSeconds <= 0 {
		t.Fatalf("status before run = %+v", st)
	}

	startRunner(t, r)
	appendStreams(t, log, viewstoretest.Scenario()[1:]...)
	eventually(t, "catch up", func() bool { return caughtUp(t, r) })

	ctx := context.Background()
	n1, err := views.Notification(ctx, viewstoretest.N1)
	if err != nil || n1.Status != domain.StatusDelivered {
		t.Fatalf("n-1 = %+v, %v", n1, err)
	}
	if in, _ := views.Inbox(ctx, "user-2", projections.InboxQuery{}); in.UnreadCount != 1 {
		t.Fatalf("user-2 inbox = %+v", in)
	}
	st, _ = r.Status(ctx)
	for _, s := range st {
		if s.LagEvents != 0 || s.LagSeconds != 0 || s.Rebuilding || s.LastError != "" {
			t.Errorf("caught-up status = %+v", s)
		}
	}

	// A live append shows up in the view.
	appendStreams(t, log, viewstoretest.SimpleStream("live-1", "user-2", domain.ChannelInApp, domain.PriorityNormal, viewstoretest.Base.Add(3*time.Hour)))
	eventually(t, "live append in the view", func() bool {
		d, err := views.Notification(ctx, "live-1")
		return err == nil && d.Status == domain.StatusDelivered
	})
	eventually(t, "live append in the inbox", func() bool {
		in, _ := views.Inbox(ctx, "user-2", projections.InboxQuery{})
		return in.UnreadCount == 2
	})
}

func TestRunnerRestartsFromCheckpoint(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	path := filepath.Join(t.TempDir(), "views.db")
	views, err := viewsqlite.Open(context.Background(), path, viewsqlite.Options{History: log})
	if err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, log, views)
	stop := startRunner(t, r)
	scenario := viewstoretest.Scenario()
	appendStreams(t, log, scenario...)
	eventually(t, "first catch up", func() bool { return caughtUp(t, r) })
	stop()
	if err := views.Close(); err != nil {
		t.Fatal(err)
	}

	// Appends while nothing projects, then a restart on the same file.
	extra := moreStreams("x", 20, viewstoretest.Base.Add(5*time.Hour))
	appendStreams(t, log, extra...)
	views = openViews(t, path, log)
	r = newRunner(t, log, views)
	startRunner(t, r)
	eventually(t, "catch up after restart", func() bool { return caughtUp(t, r) })

	// A store built from zero in one go must agree: nothing counted twice.
	fresh := openViews(t, filepath.Join(t.TempDir(), "fresh.db"), log)
	rf := newRunner(t, log, fresh)
	startRunner(t, rf)
	eventually(t, "fresh catch up", func() bool { return caughtUp(t, rf) })

	all := append(scenario, extra...)
	got := viewstoretest.Capture(t, views, ids(all), recipients)
	want := viewstoretest.Capture(t, fresh, ids(all), recipients)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("restarted views differ from fresh ones:\n%+v\n%+v", got, want)
	}
	if got.Latency.Count != 3+20 {
		t.Fatalf("latency count %d, want %d", got.Latency.Count, 23)
	}
}

func TestRebuildWhileAppending(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	r := newRunner(t, log, views)
	startRunner(t, r)

	scenario := viewstoretest.Scenario()
	appendStreams(t, log, scenario...)
	initial := moreStreams("a", 300, viewstoretest.Base.Add(6*time.Hour))
	appendStreams(t, log, initial...)
	eventually(t, "catch up", func() bool { return caughtUp(t, r) })

	ctx := context.Background()
	// Appends keep arriving while every projection is rebuilt twice.
	stopAppending := make(chan struct{})
	appending := make(chan struct{})
	var live []viewstoretest.Stream
	go func() {
		defer close(appending)
		// Start once every rebuild is under way, and stop at a cap so that
		// rebuilds on a slow machine (-race) still catch up with the log.
		eventually(t, "rebuilds under way", func() bool {
			st, _ := r.Status(ctx)
			return st[0].Rebuilding && st[1].Rebuilding && st[2].Rebuilding
		})
		for i := range 600 {
			select {
			case <-stopAppending:
				return
			default:
			}
			s := moreStreams(fmt.Sprintf("b%05d", i), 1, viewstoretest.Base.Add(8*time.Hour+time.Duration(i)*time.Second))[0]
			if i%3 != 0 { // moreStreams(…, 1, …) is always in-app; vary it
				s = viewstoretest.SimpleStream(s.ID, "user-r", domain.ChannelWebhook, domain.PriorityLow, viewstoretest.Base.Add(8*time.Hour+time.Duration(i)*time.Second))
			}
			appendStreams(t, log, s)
			live = append(live, s)
		}
	}()
	// Queries keep answering throughout.
	stopReads := make(chan struct{})
	readErrs := make(chan error, 1)
	go func() {
		defer close(readErrs)
		for {
			select {
			case <-stopReads:
				return
			default:
			}
			if _, err := views.Notification(ctx, viewstoretest.N1); err != nil {
				readErrs <- err
				return
			}
			if _, err := views.Search(ctx, projections.SearchQuery{RecipientID: "user-r", Limit: 10}); err != nil {
				readErrs <- err
				return
			}
		}
	}()
	// Rebuild every projection twice while the appends go on.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		rebuilds = map[string]int{}
	)
	for _, p := range projections.Names() {
		wg.Go(func() {
			for range 2 {
				if err := r.Rebuild(ctx, p); err != nil {
					t.Errorf("rebuild %s: %v", p, err)
					return
				}
				mu.Lock()
				rebuilds[p]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stopAppending)
	<-appending
	appended := len(live)
	if appended == 0 {
		t.Fatal("nothing was appended during the rebuilds; the test proves nothing")
	}
	close(stopReads)
	if err := <-readErrs; err != nil {
		t.Fatalf("a query failed during the rebuild: %v", err)
	}
	eventually(t, "catch up after rebuild", func() bool { return caughtUp(t, r) })
	st, _ := r.Status(ctx)
	for _, s := range st {
		if s.Rebuilds != rebuilds[s.Name] || s.Rebuilds < 1 || s.RebuildError != "" {
			t.Errorf("%s: status says %d rebuilds (error %q), %d done", s.Name, s.Rebuilds, s.RebuildError, rebuilds[s.Name])
		}
	}
	t.Logf("rebuilds while appending: %v; %d notifications appended meanwhile", rebuilds, appended)
	// Still live after the swap.
	appendStreams(t, log, viewstoretest.SimpleStream("after", "user-r", domain.ChannelInApp, domain.PriorityHigh, viewstoretest.Base.Add(9*time.Hour)))
	eventually(t, "live after rebuild", func() bool {
		_, err := views.Notification(ctx, "after")
		return err == nil && caughtUp(t, r)
	})

	fresh := openViews(t, filepath.Join(t.TempDir(), "fresh.db"), log)
	rf := newRunner(t, log, fresh)
	startRunner(t, rf)
	eventually(t, "fresh catch up", func() bool { return caughtUp(t, rf) })

	all := append(append(append(scenario, initial...), live...), viewstoretest.Stream{ID: "after"})
	got := viewstoretest.Capture(t, views, ids(all), recipients)
	want := viewstoretest.Capture(t, fresh, ids(all), recipients)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt views differ from incrementally built ones")
	}
	if want := 100 + (appended+2)/3 + 1; got.Inboxes["user-r"].UnreadCount != want {
		t.Fatalf("user-r unread = %d, want %d", got.Inboxes["user-r"].UnreadCount, want)
	}
}

func TestRebuildErrors(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	r := newRunner(t, log, views)
	if err := r.StartRebuild(projections.ProjectionInbox); !errors.Is(err, projections.ErrNotRunning) {
		t.Fatalf("StartRebuild before Run: %v, want ErrNotRunning", err)
	}
	if err := r.Rebuild(context.Background(), projections.ProjectionInbox); !errors.Is(err, projections.ErrNotRunning) {
		t.Fatalf("Rebuild before Run: %v, want ErrNotRunning", err)
	}
	startRunner(t, r)
	if err := r.StartRebuild("nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("unknown projection: %v", err)
	}
	if _, err := projections.NewRunner(log, views, projections.RunnerOptions{Projections: []string{"nope"}}); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("NewRunner with unknown projection: %v", err)
	}
	if _, err := projections.NewRunner(nil, views, projections.RunnerOptions{}); err == nil {
		t.Fatal("NewRunner accepted a nil log")
	}
	appendStreams(t, log, viewstoretest.Scenario()...)
	startRebuild(t, r, projections.ProjectionInbox)

	eventually(t, "background rebuild done", func() bool {
		st, _ := r.Status(context.Background())
		return st[1].Rebuilds >= 1 && !st[1].Rebuilding && caughtUp(t, r)
	})
	if in, _ := views.Inbox(context.Background(), "user-2", projections.InboxQuery{}); in.UnreadCount != 1 {
		t.Fatalf("inbox after background rebuild = %+v", in)
	}
}

// flakyStore fails the first failures Apply calls to the inbox projection.
type flakyStore struct {
	projections.Store
	mu       sync.Mutex
	failures int
}

func (f *flakyStore) Apply(ctx context.Context, projection string, evs []eventstore.RecordedEvent, cp eventstore.Position) error {
	f.mu.Lock()
	fail := projection == projections.ProjectionInbox && f.failures > 0
	if fail {
		f.failures--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("disk on fire")
	}
	return f.Store.Apply(ctx, projection, evs, cp)
}

func TestRunnerRetriesAFailingProjection(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	flaky := &flakyStore{Store: views, failures: 3}
	r, err := projections.NewRunner(log, flaky, projections.RunnerOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	appendStreams(t, log, viewstoretest.Scenario()...)
	startRunner(t, r)
	eventually(t, "catch up despite failures", func() bool { return caughtUp(t, r) })
	st, _ := r.Status(context.Background())
	for _, s := range st {
		wantFailures := 0
		if s.Name == projections.ProjectionInbox {
			wantFailures = 3
		}
		if s.Failures != wantFailures || s.LastError != "" {
			t.Errorf("%s: %d failures, last error %q; want %d, none", s.Name, s.Failures, s.LastError, wantFailures)
		}
	}
	if in, _ := views.Inbox(context.Background(), "user-2", projections.InboxQuery{}); in.UnreadCount != 1 || len(in.Items) != 1 {
		t.Fatalf("inbox after retries = %+v", in)
	}
}

func TestRunnerShowsAPersistentFailure(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	flaky := &flakyStore{Store: views, failures: 1 << 30}
	r, err := projections.NewRunner(log, flaky, projections.RunnerOptions{RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	appendStreams(t, log, viewstoretest.Scenario()...)
	startRunner(t, r)
	eventually(t, "the failure in the status", func() bool {
		st, _ := r.Status(context.Background())
		return st[1].LastError != "" && st[1].Failures >= 2 && st[0].LagEvents == 0
	})
	st, _ := r.Status(context.Background())
	if st[1].Checkpoint != 0 || st[1].LagEvents != uint64(st[1].Head) || st[1].LastError == "" {
		t.Fatalf("failing inbox status = %+v", st[1])
	}
}

// gatedStore holds BeginRebuild until gate is closed.
type gatedStore struct {
	projections.Store
	gate chan struct{}
}

func (g *gatedStore) BeginRebuild(ctx context.Context, projection string) error {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Store.BeginRebuild(ctx, projection)
}

func TestOneRebuildAtATime(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	gated := &gatedStore{Store: views, gate: make(chan struct{})}
	r := newRunner(t, log, gated)
	startRunner(t, r)
	appendStreams(t, log, viewstoretest.Scenario()...)
	startRebuild(t, r, projections.ProjectionAnalytics)
	if err := r.StartRebuild(projections.ProjectionAnalytics); !errors.Is(err, projections.ErrRebuildInProgress) {
		t.Fatalf("second StartRebuild: %v, want ErrRebuildInProgress", err)
	}
	if err := r.Rebuild(context.Background(), projections.ProjectionAnalytics); !errors.Is(err, projections.ErrRebuildInProgress) {
		t.Fatalf("Rebuild during StartRebuild: %v, want ErrRebuildInProgress", err)
	}
	st, _ := r.Status(context.Background())
	if !st[2].Rebuilding || st[0].Rebuilding || st[1].Rebuilding {
		t.Fatalf("status while rebuilding analytics = %+v", st)
	}
	close(gated.gate)
	eventually(t, "rebuild done", func() bool {
		st, _ := r.Status(context.Background())
		return st[2].Rebuilds == 1 && !st[2].Rebuilding && caughtUp(t, r)
	})
	// A rebuild that cannot finish (its ctx ends) leaves the live view as it was.
	gated.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Rebuild(ctx, projections.ProjectionAnalytics) }()
	eventually(t, "second rebuild under way", func() bool {
		st, _ := r.Status(context.Background())
		return st[2].Rebuilding
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled rebuild: %v", err)
	}
	if fails, err := views.Failures(context.Background(), projections.FailuresQuery{}); err != nil || len(fails) != 2 {
		t.Fatalf("failures after a cancelled rebuild = %+v, %v", fails, err)
	}
}

// TestRunnerDoesNotLingerWhileBehind: a projection lingers after a small
// batch, to gather the next, but not after a large one: that means it is
// behind, and waiting would only slow its catching up. With a ten-minute
// linger, a backlog of several subscription batches committed at once
// must still be applied at once; lingering after every batch would stall
// it after the first.
func TestRunnerDoesNotLingerWhileBehind(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	r, err := projections.NewRunner(log, views, projections.RunnerOptions{Linger: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	startRunner(t, r)
	// The log is empty: every projection follows before the first batch
	// arrives, so no linger has begun.
	waitFollowing(t, r)
	streams := moreStreams("backlog", 800, viewstoretest.Base)
	reqs := make([]eventstore.AppendRequest, len(streams))
	events := 0
	for i, s := range streams {
		data := make([]eventstore.EventData, len(s.Events))
		for j, e := range s.Events {
			data[j] = viewstoretest.EventData(e)
		}
		reqs[i] = eventstore.AppendRequest{Stream: domain.NotificationStream(s.ID), Expected: eventstore.NoStream, Events: data}
		events += len(data)
	}
	if events < 3*1024 {
		t.Fatalf("%d events: want more than three subscription batches", events)
	}
	_, errs := log.AppendMany(context.Background(), reqs) // one commit
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the backlog applied without lingering", func() bool { return caughtUp(t, r) })
	if n, err := views.Notification(context.Background(), streams[len(streams)-1].ID); err != nil || n.Status == "" {
		t.Fatalf("last of the backlog: %+v, %v", n, err)
	}
}

// recordingStore applies through the SQLite views, holding each
// projection back by its own delay, and records the batches each applied.
type recordingStore struct {
	*viewsqlite.Views
	delay map[string]time.Duration

	mu      sync.Mutex
	applied map[string][]*projections.Batch
}

func (s *recordingStore) ApplyBatch(ctx context.Context, projection string, b *projections.Batch, cp eventstore.Position) error {
	time.Sleep(s.delay[projection])
	s.mu.Lock()
	s.applied[projection] = append(s.applied[projection], b)
	s.mu.Unlock()
	return s.Views.ApplyBatch(ctx, projection, b, cp)
}

// Projections following the log apply the very same batches, however
// unevenly fast they apply them (within the linger): each run of events is
// read, decoded and folded once for all of them (the live feed). With a
// subscription each, the slow projection's batches began and ended
// elsewhere than the others', and few were shared.
func TestFollowingProjectionsShareTheirBatches(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	store := &recordingStore{
		Views:   openViews(t, filepath.Join(t.TempDir(), "views.db"), log),
		delay:   map[string]time.Duration{projections.ProjectionInbox: 15 * time.Millisecond},
		applied: map[string][]*projections.Batch{},
	}
	r, err := projections.NewRunner(log, store, projections.RunnerOptions{Linger: projections.DefaultLinger})
	if err != nil {
		t.Fatal(err)
	}
	startRunner(t, r)
	waitFollowing(t, r)
	streams := moreStreams("shared", 60, viewstoretest.Base)
	for _, s := range streams {
		appendStreams(t, log, s)
		time.Sleep(2 * time.Millisecond) // appends that come one at a time
	}
	eventually(t, "every projection to catch up", func() bool { return caughtUp(t, r) })

	store.mu.Lock()
	defer store.mu.Unlock()
	slow := store.applied[projections.ProjectionInbox]
	if len(slow) == 0 {
		t.Fatal("the inbox applied nothing")
	}
	for _, p := range projections.Names() {
		got := store.applied[p]
		if len(got) != len(slow) {
			t.Errorf("%s applied %d batches, the inbox %d: they did not share them", p, len(got), len(slow))
			continue
		}
		for i := range got {
			if got[i] != slow[i] {
				t.Errorf("%s's batch %d (events after %d) is not the inbox's", p, i, first(got[i]))
				break
			}
		}
	}
}

func first(b *projections.Batch) eventstore.Position {
	after, _ := b.Page()
	return after
}

// Run may start again as soon as the last Run's context has ended, while
// that Run's projectors still wind down: the new Run follows the log on a
// feed of its own (the race detector watches the hand-over).
func TestRunAgainWhileTheLastRunWindsDown(t *testing.T) {
	t.Parallel()
	log := openLog(t)
	views := openViews(t, filepath.Join(t.TempDir(), "views.db"), log)
	r := newRunner(t, log, views)
	firstCtx, cancel := context.WithCancel(context.Background())
	firstDone := make(chan error, 1)
	go func() { firstDone <- r.Run(firstCtx) }()
	waitFollowing(t, r)
	appendStreams(t, log, moreStreams("before", 5, viewstoretest.Base)...)
	eventually(t, "the first Run to apply the appends", func() bool { return caughtUp(t, r) })
	// Run refuses only while the last Run's context is live: once it has
	// ended, a new Run starts at once (startRunner's stop reports a
	// refusal).
	cancel()
	startRunner(t, r)
	if err := <-firstDone; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	after := moreStreams("after", 5, viewstoretest.Base.Add(time.Hour))
	appendStreams(t, log, after...)
	eventually(t, "the second Run to apply new appends", func() bool { return caughtUp(t, r) })
	for _, s := range after {
		if _, err := views.Notification(context.Background(), s.ID); err != nil {
			t.Fatalf("%s after the second Run started: %v", s.ID, err)
		}
	}
}
