package sqlite_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// crashChildEnv names the log file a re-executed test binary appends to
// until it is killed; see TestCrashChild.
const crashChildEnv = "HERALD_CRASH_CHILD_LOG"

// TestCrashSafety kills a process that is appending with SIGKILL at random
// moments, over and over, and checks after each kill that every append the
// process saw acknowledged is in the log, intact, at the position it was
// given, that positions have no holes, and that appending goes on.
func TestCrashSafety(t *testing.T) {
	const kills = 24
	path := filepath.Join(t.TempDir(), "events.db")
	acked := make(map[string]ackedEvent)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))

	for i := 0; i < kills; i++ {
		before := len(acked)
		runAndKill(t, path, time.Duration(20+rng.IntN(180))*time.Millisecond, acked)
		if len(acked) == before {
			t.Fatalf("kill %d: the child acknowledged nothing new; appending did not continue after reopen", i)
		}
		verifyLog(t, path, acked)
	}
	t.Logf("%d SIGKILLs, %d acknowledged events verified", kills, len(acked))
}

type ackedEvent struct {
	position eventstore.Position
	stream   string
	sum      string
}

// runAndKill starts the child, lets it append for about d after it reports
// ready, kills it with SIGKILL and records what it acknowledged.
func runAndKill(t *testing.T, path string, d time.Duration, acked map[string]ackedEvent) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	var mu sync.Mutex
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		readyOnce := sync.OnceFunc(func() { close(ready) })
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 1 && f[0] == "ready" {
				readyOnce()
				continue
			}
			// A line cut short by the kill has no trailing newline and
			// fewer fields: it was never a complete acknowledgement.
			if len(f) != 5 || f[0] != "ack" {
				continue
			}
			pos, err := strconv.ParseUint(f[3], 10, 64)
			if err != nil {
				continue
			}
			mu.Lock()
			acked[f[1]] = ackedEvent{position: eventstore.Position(pos), stream: f[2], sum: f[4]}
			mu.Unlock()
		}
		readyOnce()
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("child never became ready")
	}
	// The crash comes at a random moment after the child's first new
	// acknowledgement (the proof that appending continues after a
	// reopen), so a slow start on a busy machine cannot fake a failure.
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); ; {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n > before || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(d) // the random moment of the crash, not a wait for a condition
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	<-lines
}

func verifyLog(t *testing.T, path string, acked map[string]ackedEvent) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	seen := make(map[string]bool, len(acked))
	var after eventstore.Position
	for {
		evs, err := s.ReadAll(ctx, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Position != after+1 {
				t.Fatalf("hole in positions: %d follows %d", e.Position, after)
			}
			after = e.Position
			want, ok := acked[e.ID]
			if !ok {
				continue // committed but killed before it was acknowledged: allowed
			}
			seen[e.ID] = true
			sum := sha256.Sum256(e.Data)
			if e.Position != want.position || e.Stream != want.stream || hex.EncodeToString(sum[:]) != want.sum {
				t.Fatalf("event %s: got position %d stream %s sum %x, acknowledged %+v", e.ID, e.Position, e.Stream, sum, want)
			}
		}
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head != after {
		t.Fatalf("head %d, but $all ends at %d", head, after)
	}
	for id, a := range acked {
		if !seen[id] {
			t.Fatalf("acknowledged event %s at position %d is missing after the crash", id, a.position)
		}
	}
}

// TestCrashChild is the appending process of TestCrashSafety; it does
// nothing unless started by it.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("only runs as the child process of TestCrashSafety")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var outMu sync.Mutex
	fmt.Println("ready")
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			for i := 0; ; i++ {
				stream := fmt.Sprintf("crash-%d-%d", w, rng.IntN(50))
				n := 1 + rng.IntN(3)
				evs := make([]eventstore.EventData, n)
				for j := range evs {
					pad := strings.Repeat("x", rng.IntN(2000))
					evs[j] = eventstore.EventData{
						ID:            uuid.Must(uuid.NewV7()).String(),
						Type:          "CrashTested",
						SchemaVersion: 1,
						Data:          []byte(fmt.Sprintf(`{"writer":%d,"seq":%d,"pad":%q}`, w, i, pad)),
					}
				}
				res, err := s.Append(ctx, stream, eventstore.Any, evs...)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child append:", err)
					os.Exit(3)
				}
				var b strings.Builder
				first := uint64(res.Position) - uint64(n) + 1
				for j, e := range evs {
					sum := sha256.Sum256(e.Data)
					fmt.Fprintf(&b, "ack %s %s %d %x\n", e.ID, stream, first+uint64(j), sum)
				}
				outMu.Lock()
				os.Stdout.WriteString(b.String())
				outMu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}
