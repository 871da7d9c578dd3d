package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// BenchmarkLiveApply measures what following the log live costs: one event
// at a time (an attempt, then a success, of notifications the views already
// hold) applied to every projection. "apply" hands each projection the
// events (Store.Apply); "batch" hands them one shared page, as the Runner
// does (projections.BatchStore).
func BenchmarkLiveApply(b *testing.B) {
	b.Run("apply", func(b *testing.B) { benchmarkLiveApply(b, false) })
	b.Run("batch", func(b *testing.B) { benchmarkLiveApply(b, true) })
}

func benchmarkLiveApply(b *testing.B, batch bool) {
	const notifications = 2000
	ctx := context.Background()
	var rec viewstoretest.Recorder
	v, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "views.db"), sqlite.Options{History: &rec})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	chans := []domain.Channel{domain.ChannelInApp, domain.ChannelWebhook, domain.ChannelEmail}
	var setup, live []eventstore.RecordedEvent
	var streams []viewstoretest.Stream
	for i := range notifications {
		s := viewstoretest.SimpleStream(domain.NotificationID(fmt.Sprintf("n-%05d", i)), fmt.Sprintf("user-%d", i%100),
			chans[i%3], domain.PriorityNormal, viewstoretest.Base.Add(time.Duration(i)*time.Second))
		streams = append(streams, s)
		for _, e := range s.Events[:2] {
			setup = append(setup, rec.Record(s.ID, e))
		}
	}
	for step := 2; step < 4; step++ {
		for _, s := range streams {
			live = append(live, rec.Record(s.ID, s.Events[step]))
		}
	}
	viewstoretest.ApplyAll(b, v, setup)
	b.ResetTimer()
	for i := range b.N {
		if i == len(live) {
			b.Fatalf("benchmark wants more than %d live events: use -benchtime %dx", len(live), len(live))
		}
		evs := live[i : i+1]
		pg := projections.NewLogPage(evs[0].Position-1, evs)
		for _, p := range projections.Names() {
			if batch {
				err = v.ApplyBatch(ctx, p, pg, evs[0].Position)
			} else {
				err = v.Apply(ctx, p, evs, evs[0].Position)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}
