package projections_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	eventsqlite "herald/infra/eventstore/sqlite"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// BenchmarkCatchUp measures how fast a fresh view store catches up with a
// log of simple notifications (4 events each), every projection at once,
// which is what a rebuild from zero does.
func BenchmarkCatchUp(b *testing.B) {
	for _, names := range [][]string{projections.Names(), {projections.ProjectionNotifications}, {projections.ProjectionInbox}, {projections.ProjectionAnalytics}} {
		b.Run(fmt.Sprint(names), func(b *testing.B) { benchmarkCatchUp(b, names) })
	}
}

func benchmarkCatchUp(b *testing.B, names []string) {
	const notifications = 10_000
	ctx := context.Background()
	dir := b.TempDir()
	log, err := eventsqlite.Open(ctx, filepath.Join(dir, "events.db"), eventsqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	var reqs []eventstore.AppendRequest
	chans := []domain.Channel{domain.ChannelInApp, domain.ChannelWebhook, domain.ChannelEmail}
	for i := range notifications {
		s := viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("b-%06d", i)), fmt.Sprintf("user-%d", i%100),
			chans[i%3], domain.PriorityNormal, viewstoretest.Base.Add(time.Duration(i)*time.Second))
		reqs = append(reqs, s.AppendNew())
		if len(reqs) == 500 || i == notifications-1 {
			if _, errs := log.AppendMany(ctx, reqs); errs != nil {
				for _, err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			reqs = reqs[:0]
		}
	}
	head, _ := log.Head(ctx)
	b.ResetTimer()
	for i := range b.N {
		views, err := viewsqlite.Open(ctx, filepath.Join(dir, fmt.Sprintf("views-%d.db", i)), viewsqlite.Options{History: log})
		if err != nil {
			b.Fatal(err)
		}
		r, _ := projections.NewRunner(log, views, projections.RunnerOptions{Projections: names})
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		for !caughtUp(b, r) {
			time.Sleep(10 * time.Millisecond) // poll interval
		}
		cancel()
		<-done
		views.Close()
	}
	b.ReportMetric(float64(head)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkLiveLatency measures append → visible in the status view under
// light load (one append at a time), reporting p50 and p99.
func BenchmarkLiveLatency(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	log, err := eventsqlite.Open(ctx, filepath.Join(dir, "events.db"), eventsqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	views, err := viewsqlite.Open(ctx, filepath.Join(dir, "views.db"), viewsqlite.Options{History: log})
	if err != nil {
		b.Fatal(err)
	}
	defer views.Close()
	r, _ := projections.NewRunner(log, views, projections.RunnerOptions{})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	defer func() { cancel(); <-done }()

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		s := viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("l-%d", i)), "u", domain.ChannelWebhook, domain.PriorityNormal, viewstoretest.Base)
		start := time.Now()
		appendStreams(b, log, s)
		for {
			if _, err := views.Notification(ctx, s.ID); err == nil {
				break
			}
			time.Sleep(100 * time.Microsecond) // poll interval
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
