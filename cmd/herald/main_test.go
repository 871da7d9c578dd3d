package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// TestMain lets the tests run this package's main as a real process: the
// test binary re-executes itself with HERALD_TEST_RUN_MAIN=1. Before any
// test runs, it makes the process trust the local web push services
// (trustPushServices).
func TestMain(m *testing.M) {
	if os.Getenv("HERALD_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	cleanup, err := trustPushServices()
	if err != nil {
		fmt.Fprintln(os.Stderr, "trust the local push services:", err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeAnswersHealthAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	started := make(chan net.Addr, 1)
	done := make(chan error, 1)
	env := map[string]string{"HERALD_DATA": t.TempDir(), "HERALD_LOG_LEVEL": "warn"}
	go func() {
		done <- serve(ctx, []string{"--addr", "127.0.0.1:0"}, io.Discard, io.Discard, func(k string) string { return env[k] }, started)
	}()
	var addr net.Addr
	select {
	case addr = <-started:
	case err := <-done:
		t.Fatalf("serve ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start listening")
	}
	base := "http://" + addr.String()
	if code, body := get(t, base+"/healthz"); code != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("/healthz = %d %s", code, body)
	}
	if code, body := get(t, base+"/"); code != 200 || !strings.Contains(body, "<title>Herald</title>") {
		t.Fatalf("dashboard = %d %.80s", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 200 || !strings.Contains(body, `"ready"`) {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
}

func TestServeProcessExitsZeroOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0], "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Env = append(os.Environ(), "HERALD_TEST_RUN_MAIN=1")
	dieWithTest(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addrRe := regexp.MustCompile(`msg=listening addr=(\S+)`)
	addrc := make(chan string, 1)
	logDone := make(chan string, 1)
	go func() {
		var all strings.Builder
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if m := addrRe.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		logDone <- all.String()
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-time.After(20 * time.Second):
		t.Fatal("process did not log its listening address")
	}
	if code, _ := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	logs := <-logDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logs)
	}
	if !strings.Contains(logs, "stopped cleanly") {
		t.Fatalf("no clean stop in the log:\n%s", logs)
	}
}

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "no command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"bad addr", []string{"serve", "--addr", "nonsense"}, "addr"},
		{"bad key", []string{"serve", "--api-key", "ops:short:send"}, "shorter than 16"},
		{"bad scope", []string{"serve", "--api-key", "ops:0123456789abcdef:send+fly"}, `unknown scope "fly"`},
		{"stray argument", []string{"serve", "extra"}, "unexpected arguments"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), c.args, io.Discard, io.Discard, env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("run(%q) = %v, want an error containing %q", c.args, err, c.want)
			}
		})
	}
}

// startTestServer runs serve with args in this process and returns its base
// URL and stop, which waits for the server to end and fails the test on an
// unclean stop. A server the test has not stopped is stopped when it ends.
func startTestServer(t *testing.T, args []string) (base string, stop func()) {
	t.Helper()
	base, stopServer, err := startInProcess(context.Background(), args, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			if err := stopServer(); err != nil {
				t.Errorf("stop server: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return base, stop
}

// logEvents returns every event of the log a stopped server left in dir.
func logEvents(t *testing.T, dir string) []eventstore.RecordedEvent {
	t.Helper()
	events := openEventLog(t, dir)
	var all []eventstore.RecordedEvent
	var after eventstore.Position
	for {
		recs, err := events.ReadAll(t.Context(), after, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return all
		}
		all = append(all, recs...)
		after = recs[len(recs)-1].Position
	}
}

// openEventLog opens the event log a stopped server left in dir, closed
// when the test ends.
func openEventLog(t *testing.T, dir string) *sqlite.Store {
	t.Helper()
	events, err := sqlite.Open(t.Context(), filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { events.Close() })
	return events
}
