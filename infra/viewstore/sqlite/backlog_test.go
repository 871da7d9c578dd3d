package sqlite_test

import (
	"herald/domain"
	"path/filepath"
	"testing"

	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

func TestBacklogContract(t *testing.T) {
	viewstoretest.RunBacklog(t, func(t *testing.T, h projections.History) viewstoretest.BacklogViews {
		v, err := viewsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "views.db"), viewsqlite.Options{History: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		return v
	})
}

// The SQLite views give the dispatcher each pending delivery's address, so
// that its limits per address hold for work it recovers at start.
func TestPendingDeliveriesHoldTheirAddress(t *testing.T) {
	t.Parallel()
	rec := &viewstoretest.Recorder{}
	v, err := viewsqlite.Open(t.Context(), filepath.Join(t.TempDir(), "views.db"), viewsqlite.Options{History: rec})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	s := viewstoretest.SimpleStream("n-addr", "u-1", domain.ChannelWebhook, domain.PriorityNormal, viewstoretest.Base)
	s.Events = s.Events[:2] // requested and planned: still owed
	viewstoretest.ApplyAll(t, v, rec.RecordAll(s))
	var got []projections.PendingDelivery
	if _, err := v.PendingDeliveries(t.Context(), func(p projections.PendingDelivery) error {
		got = append(got, p)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Address != "https://hooks.example.com/x" {
		t.Fatalf("pending deliveries %+v, want the webhook one with its address", got)
	}
}
