package projections

import (
	"context"
	"fmt"
	"math"

	"herald/domain"
	"herald/infra/eventstore"
)

// History is the part of the event log a view store reads a
// notification's past from when it holds no state for it;
// eventstore.Store has it.
//
// A projection needs, for each notification a batch touches, the state the
// notification's earlier events fold to. The stores keep the states they
// computed last in memory; each projection used to store a copy as well,
// written with every change. Folding from the log the few states memory
// does not hold (after a restart, or for a notification untouched for a
// long time) replaced those copies; the SQLite store's status view was the
// last to keep one (a JSON snapshot with every row), and encoding and
// writing it was a fifth of a rebuild's time.
type History interface {
	ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error)
}

// historyPage is how many events FoldHistory reads at a time.
const historyPage = 512

// FoldHistory returns notification id's state after the events of its
// stream up to and including stream version through, folded from the log
// (events this domain does not decode are skipped, as everywhere else).
// It fails when the log holds fewer than through events of the stream.
func FoldHistory(ctx context.Context, h History, id domain.NotificationID, through uint64) (domain.Notification, error) {
	n, last, err := fold(ctx, h, id, through)
	if err != nil {
		return domain.Notification{}, err
	}
	if last < through {
		return domain.Notification{}, fmt.Errorf("fold %s from the log: the log holds %d events of its stream, the view has applied %d", id, last, through)
	}
	return n, nil
}

// FoldLatest returns notification id's state after every event of its
// stream the log holds now.
func FoldLatest(ctx context.Context, h History, id domain.NotificationID) (domain.Notification, error) {
	n, _, err := fold(ctx, h, id, math.MaxUint64)
	return n, err
}

// fold folds the stream's events up to version through and returns the
// state with the version of the last event it read.
func fold(ctx context.Context, h History, id domain.NotificationID, through uint64) (domain.Notification, uint64, error) {
	var n domain.Notification
	var after uint64
	for after < through {
		limit := int(min(through-after, historyPage))
		recs, err := h.ReadStream(ctx, domain.NotificationStream(id), after, limit)
		if err != nil {
			return domain.Notification{}, after, fmt.Errorf("fold %s from the log: %w", id, err)
		}
		for _, rec := range recs {
			if rec.Version > through {
				break
			}
			after = rec.Version
			if _, ev, ok := DecodeNotificationEvent(rec); ok {
				n = domain.EvolveNotification(n, ev)
			}
		}
		if len(recs) < limit {
			break // the stream's end: no need to ask for the empty page after it
		}
	}
	return n, after, nil
}
