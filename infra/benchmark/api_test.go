package benchmark

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// After the last batch, the figures say how far behind the projections
// were and wait until none is: the status is read again until every lag
// is 0, and the rate with the views counts that wait.
func TestWaitForViewsWaitsForEveryProjection(t *testing.T) {
	lags := [][2]int{{900, 300}, {400, 0}, {0, 0}}
	var reads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/admin/projections" || r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "wrong request", http.StatusTeapot)
			return
		}
		l := lags[min(int(reads.Add(1))-1, len(lags)-1)]
		fmt.Fprintf(w, `{"projections":[{"name":"a","lag_events":%d},{"name":"b","lag_events":%d}]}`, l[0], l[1])
	}))
	defer srv.Close()

	f := BatchFigures{ItemsPerRequest: 1000, Notifications: 10_000, NotificationsPerSec: 10_000, Elapsed: time.Second}
	if err := f.WaitForViews(t.Context(), srv.URL, "k"); err != nil {
		t.Fatal(err)
	}
	if !f.Views || f.ViewsLagEvents != 900 {
		t.Errorf("views %v, lag %d: want true, 900 (the furthest behind, at the first read)", f.Views, f.ViewsLagEvents)
	}
	if got := reads.Load(); got != 3 {
		t.Errorf("read the status %d times, want 3 (until every lag is 0)", got)
	}
	if f.ViewsCaughtUp < 20*time.Millisecond {
		t.Errorf("caught up after %v, want at least the two waits between reads", f.ViewsCaughtUp)
	}
	if f.ViewsNotificationsPerSec >= f.NotificationsPerSec || f.ViewsNotificationsPerSec <= 0 {
		t.Errorf("rate with views %.0f, want below the intake rate %.0f", f.ViewsNotificationsPerSec, f.NotificationsPerSec)
	}
	if s := f.String(); !strings.Contains(s, " views_lag_events=900 ") {
		t.Errorf("line %q does not report the lag", s)
	}
}

// A server whose status cannot be read fails the case, with the answer's
// status, rather than printing figures without the views.
func TestWaitForViewsFailsWithoutAStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no projections here", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	f := BatchFigures{ItemsPerRequest: 1000, Notifications: 1000, NotificationsPerSec: 1000, Elapsed: time.Second}
	err := f.WaitForViews(t.Context(), srv.URL, "k")
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err %v, want the 503", err)
	}
}
