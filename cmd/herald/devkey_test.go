package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"herald/infra/config"
)

// Processes starting together on a fresh data folder without configured
// keys (make run twice, an api and a deliver role) must serve one
// development key, the one the file holds: otherwise a process checks
// requests against a key nobody can read any more.
//
// One round loses the race only now and then; several rounds on fresh
// folders make a lost race all but certain to show.
func TestDevKeyAgreesAcrossConcurrentStarts(t *testing.T) {
	t.Parallel()
	for round := range 10 {
		devKeyStartTogether(t, config.Serve{Addr: "127.0.0.1:0", DataDir: filepath.Join(t.TempDir(), fmt.Sprintf("data-%d", round))})
	}
}

// devKeyStartTogether has 16 starters take the development key of cfg's
// fresh data folder at once, and checks that they agree with the file.
func devKeyStartTogether(t *testing.T, cfg config.Serve) {
	t.Helper()
	const starters = 16
	secrets := make([]string, starters)
	hashes := make([][32]byte, starters)
	created := make([]bool, starters)
	errs := make([]error, starters)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range starters {
		wg.Go(func() {
			<-start
			var k config.APIKey
			k, secrets[i], created[i], errs[i] = developmentKey(cfg)
			hashes[i] = k.Hash
		})
	}
	close(start)
	wg.Wait()

	path := filepath.Join(cfg.DataDir, devKeyFile)
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(onDisk))
	winners := 0
	for i := range starters {
		if errs[i] != nil || secrets[i] != want {
			t.Fatalf("starter %d serves %q, %v; the file holds %q", i, secrets[i], errs[i], want)
		}
		if hashes[i] != hashes[0] {
			t.Fatalf("starter %d checks requests against another key", i)
		}
		if created[i] {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("%d starters say they created the key, want exactly one", winners)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 1 {
		t.Fatalf("data folder holds %d files, want the key alone (no temporary files left)", len(entries))
	}

	// A restart keeps the key and says so.
	_, again, made, err := developmentKey(cfg)
	if err != nil || again != want || made {
		t.Fatalf("restart: %q, created=%v, %v; want %q kept", again, made, err, want)
	}
}
