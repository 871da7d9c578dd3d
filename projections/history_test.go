package projections_test

import (
	"context"
	"sync/atomic"
	"testing"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
)

// countingHistory counts the reads a fold makes.
type countingHistory struct {
	*viewstoretest.Recorder
	reads atomic.Int32
}

func (h *countingHistory) ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error) {
	h.reads.Add(1)
	return h.Recorder.ReadStream(ctx, stream, after, limit)
}

// A stream longer than a page of history folds across pages, to the
// version asked for (FoldHistory) or to its end (FoldLatest), skipping the
// events the domain does not decode; asking past its end is an error.
func TestFoldHistoryAcrossPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := &countingHistory{Recorder: &viewstoretest.Recorder{}}
	s := viewstoretest.SimpleStream("n-long", "user-1", domain.ChannelEmail, domain.PriorityNormal, viewstoretest.Base)
	// Requested and planned, 1,000 events of a newer version's type, then
	// the attempt and its success: versions 1-2, 3-1002, 1003-1004.
	h.Record(s.ID, s.Events[0])
	h.Record(s.ID, s.Events[1])
	for range 1000 {
		h.RecordUnknown(s.ID, "delivery_frobnicated")
	}
	h.Record(s.ID, s.Events[2])
	h.Record(s.ID, s.Events[3])

	planned, err := projections.FoldHistory(ctx, h, s.ID, 1002)
	if err != nil {
		t.Fatal(err)
	}
	if d := planned.Deliveries(); len(d) != 1 || d[0].Status() != domain.DeliveryStatusPlanned {
		t.Errorf("folded to version 1002: deliveries %+v, want one planned", d)
	}

	h.reads.Store(0)
	latest, err := projections.FoldLatest(ctx, h, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if latest.Status() != domain.StatusDelivered {
		t.Errorf("folded to the end: status %s, want delivered", latest.Status())
	}
	// Pages of 512: a full one and a short one, which ends the fold.
	if n := h.reads.Load(); n != 2 {
		t.Errorf("folding 1,004 events took %d reads, want 2 (512 + 492)", n)
	}
	if _, err := projections.FoldHistory(ctx, h, s.ID, 1005); err == nil {
		t.Error("folding to version 1005 of a stream of 1,004 events succeeded")
	}
}
