package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Processes starting together on a fresh data folder (an api and a deliver
// role) must end up with one VAPID key pair, or browsers subscribe with a
// key the dispatcher does not sign with.
func TestCreateOnceAgreesAcrossConcurrentStarts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "vapid.json")
	const starters = 16
	got := make([][]byte, starters)
	errs := make([]error, starters)
	var wg sync.WaitGroup
	for i := range starters {
		wg.Go(func() {
			got[i], errs[i] = createOnce(path, func() ([]byte, error) {
				return fmt.Appendf(nil, "contents of starter %d", i), nil
			})
		})
	}
	wg.Wait()
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range starters {
		if errs[i] != nil || !bytes.Equal(got[i], onDisk) {
			t.Fatalf("starter %d got %q, %v; the file holds %q", i, got[i], errs[i], onDisk)
		}
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, %v; want 0600", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("data folder holds %d files, want the one (no temporary files left)", len(entries))
	}

	// A later start reads the file and generates nothing.
	again, err := createOnce(path, func() ([]byte, error) {
		t.Fatal("generated although the file exists")
		return nil, nil
	})
	if err != nil || !bytes.Equal(again, onDisk) {
		t.Fatalf("later start got %q, %v", again, err)
	}
}

func TestVAPIDKeysKeptInTheDataFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pub, priv, err := vapidKeys(dir)
	if err != nil || pub == "" || priv == "" {
		t.Fatalf("first start: %q, %v", pub, err)
	}
	pub2, priv2, err := vapidKeys(dir)
	if err != nil || pub2 != pub || priv2 != priv {
		t.Fatalf("restart gave another pair (%v)", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vapid.json"), []byte(`{"Public":""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := vapidKeys(dir); err == nil {
		t.Fatal("a file without a key pair was accepted")
	}
}
