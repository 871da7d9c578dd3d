package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"herald/infra/eventstore/sqlite"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/projections"
)

// roleProcess is one herald process of the multi-process test.
type roleProcess struct {
	name string
	cmd  *exec.Cmd
	base string
}

// startRole starts `herald <role>` as a child process sharing dir's event
// log and views, and waits for its listening line.
func startRole(t *testing.T, role, dir string, extra ...string) *roleProcess {
	t.Helper()
	args := []string{role, "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "info",
		"--api-key", "app:" + testSendKey + ":send+read+admin",
		"--webhook-allow-hosts", "127.0.0.1", "--webhook-secret", testWebhookSecret,
		"--retry-initial", "50ms", "--retry-max", "1s", "--retry-attempts", "50"}
	args = append(args, extra...)
	cmd := exec.Command(heraldBinary(t), args...)
	cmd.Env = append(os.Environ(), "HERALD_TEST_RUN_MAIN=1")
	dieWithTest(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.log", role, cmd.Process.Pid)))
	go func() {
		re := regexp.MustCompile(`msg=listening addr=(\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		logf.Close()
	}()
	p := &roleProcess{name: role, cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start", role)
	}
	return p
}

func (p *roleProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

// TestMultiProcess runs the roles as separate processes on one machine —
// 2 api, 2 project (one active, one standby), 2 deliver — sharing the
// SQLite event log and views, accepts 20,000 notifications through both
// API processes, SIGKILLs the active projector and one dispatcher midway,
// and checks that every notification reaches the sink (a repeat only with
// the same idempotency key) and the views agree with a fresh rebuild.
func TestMultiProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("six processes and 20,000 notifications: skipped with -short")
	}
	sink := newWebhookSink(t)
	dir := t.TempDir()
	// The views live in Cassandra when the suite has one (make test starts
	// it), else in a SQLite file the processes share.
	var views []string
	if hosts := os.Getenv("HERALD_CASSANDRA_HOSTS"); hosts != "" {
		views = []string{"--views", fmt.Sprintf("cassandra://%s/herald_mp_%d", hosts, time.Now().UnixNano()%1e9)}
		migrate := exec.Command(heraldBinary(t), append([]string{"migrate", "--data", dir}, views...)...)
		migrate.Env = append(os.Environ(), "HERALD_TEST_RUN_MAIN=1")
		if out, err := migrate.CombinedOutput(); err != nil {
			t.Fatalf("herald migrate: %v\n%s", err, out)
		}
		t.Logf("views in Cassandra: %s", views[1])
	}
	api := []*roleProcess{startRole(t, "api", dir, views...), startRole(t, "api", dir, views...)}
	project := []*roleProcess{startRole(t, "project", dir, views...), startRole(t, "project", dir, views...)}
	deliver := []*roleProcess{startRole(t, "deliver", dir, views...), startRole(t, "deliver", dir, views...)}

	const total, batch = 20000, 500
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ids []string
	errs := make(chan error, 2)
	for k, a := range api {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client{t: t, base: a.base, http: http.DefaultClient}
			for i := 0; i < total/2; i += batch {
				items := make([]map[string]any, batch)
				for j := range items {
					items[j] = map[string]any{
						"recipient": map[string]any{"id": fmt.Sprintf("user-%d", (k*total+i+j)%997), "webhook_url": sink.URL + "/hook"},
						"channels":  []string{"webhook"}, "content": map[string]any{"body": "multi"},
					}
				}
				code, m := c.do("POST", "/v1/notifications/batch", map[string]any{"items": items})
				if code != http.StatusAccepted {
					errs <- fmt.Errorf("api %d batch = %d %v", k, code, m)
					return
				}
				mu.Lock()
				for _, it := range m["items"].([]any) {
					ids = append(ids, it.(map[string]any)["id"].(string))
				}
				mu.Unlock()
			}
		}()
	}
	// Midway: kill the projector that holds the lease (whichever it is,
	// killing the first is enough when it started first) and a dispatcher.
	waitUntil(t, 120*time.Second, "deliveries under way", func() bool { u, _, _ := sink.counts(); return u >= total/4 })
	project[0].kill(t)
	deliver[0].kill(t)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(ids) != total {
		t.Fatalf("accepted %d of %d", len(ids), total)
	}
	waitUntil(t, 300*time.Second, "every notification at the sink", func() bool { u, _, _ := sink.counts(); return u == total })
	u, calls, bad := sink.counts()
	if bad != 0 {
		t.Fatalf("%d badly signed calls", bad)
	}
	t.Logf("%d delivered, %d calls (repeats only under the same webhook-id)", u, calls)

	// The surviving projector caught up: every notification reads as
	// delivered through either API process. A webhook reaches the sink
	// before its success is appended and projected, so the whole search
	// is waited for, not a sample (with one notification in 997 sampled,
	// a fresh-clone make test once compared a live "in_progress" that was
	// still to be projected).
	c := client{t: t, base: api[1].base, http: http.DefaultClient}
	for i := 0; i < total; i += 997 {
		id := ids[i]
		waitUntil(t, 60*time.Second, "status of "+id, func() bool {
			st, _ := c.status(id)
			return st == "delivered"
		})
	}
	var live map[string]string
	waitUntil(t, 120*time.Second, "every notification delivered in the live search", func() bool {
		live = searchAll(t, c)
		if len(live) != total {
			return false
		}
		for _, st := range live {
			if st != "delivered" {
				time.Sleep(200 * time.Millisecond) // a full search is 20,000 rows: poll gently
				return false
			}
		}
		return true
	})
	// And the views the processes built (with a projector killed midway)
	// equal a fresh rebuild from the log.
	fresh := rebuildSearch(t, filepath.Join(dir, "events.db"))
	if len(fresh) != len(live) {
		t.Fatalf("rebuild has %d notifications, live views %d", len(fresh), len(live))
	}
	for id, st := range fresh {
		if live[id] != st {
			t.Fatalf("%s: live view %q, rebuild %q", id, live[id], st)
		}
	}
}

// rebuildSearch projects the whole log into fresh views and returns the
// search index as id → status.
func rebuildSearch(t *testing.T, logPath string) map[string]string {
	t.Helper()
	ctx := t.Context()
	events, err := sqlite.Open(ctx, logPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	views, err := viewsqlite.Open(ctx, filepath.Join(t.TempDir(), "fresh.db"), viewsqlite.Options{History: events})
	if err != nil {
		t.Fatal(err)
	}
	defer views.Close()
	runner, err := projections.NewRunner(events, views, projections.RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = runner.Run(rctx) }()
	waitUntil(t, 120*time.Second, "the fresh rebuild", func() bool {
		sts, err := runner.Status(ctx)
		if err != nil {
			return false
		}
		for _, st := range sts {
			if st.Name == projections.ProjectionNotifications {
				return st.LagEvents == 0
			}
		}
		return false
	})
	cancel()
	<-done
	out := map[string]string{}
	q := projections.SearchQuery{Limit: projections.MaxLimit}
	for {
		page, err := views.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			out[string(it.ID)] = string(it.Status)
		}
		if page.NextCursor == "" {
			return out
		}
		q.Cursor = page.NextCursor
	}
}

var (
	binaryOnce sync.Once
	binaryPath string
)

// heraldBinary is herald built without the race detector, for the tests
// that run it as several processes: under -race each process is ten times
// slower and the machine has two cores. When the build is not possible
// (no go tool), the test binary itself serves (HERALD_TEST_RUN_MAIN).
func heraldBinary(t *testing.T) string {
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "herald-bin-")
		if err != nil {
			return
		}
		out := filepath.Join(dir, "herald")
		build := exec.Command("go", "build", "-o", out, ".")
		if msg, err := build.CombinedOutput(); err != nil {
			t.Logf("building herald without -race failed, using the test binary: %v %s", err, msg)
			return
		}
		binaryPath = out
	})
	if binaryPath == "" {
		return os.Args[0]
	}
	return binaryPath
}

// searchAll pages through the search index and returns id → status.
func searchAll(t *testing.T, c client) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := ""
	for {
		path := fmt.Sprintf("/v1/notifications?limit=%d", projections.MaxLimit)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		code, m := c.do("GET", path, nil)
		if code != http.StatusOK {
			t.Fatalf("search = %d %v", code, m)
		}
		for _, it := range m["items"].([]any) {
			it := it.(map[string]any)
			out[it["id"].(string)] = it["status"].(string)
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
}
