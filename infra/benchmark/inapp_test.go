package benchmark

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"herald/infra/eventstore/sqlite"
)

// TestInAppPush runs the workload briefly: its producers append at once,
// and every message appended must reach its client (InAppPush fails when
// one does not arrive within 30 s), none dropped.
func TestInAppPush(t *testing.T) {
	ctx := context.Background()
	log, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "inapp.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	f, err := InAppPush(ctx, log, 20, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if f.Messages < inAppProducers*250 || f.Messages%250 != 0 {
		t.Errorf("%d messages, want whole chunks of 250 from each of %d producers", f.Messages, inAppProducers)
	}
	if f.Dropped != 0 || f.MessagesPerSec <= 0 || f.P99 < f.P50 || f.P50 <= 0 {
		t.Errorf("figures %+v", f)
	}
	// The log holds each message's four events.
	head, err := log.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(head) != 4*f.Messages {
		t.Errorf("log head %d, want %d events for %d messages", head, 4*f.Messages, f.Messages)
	}
}
