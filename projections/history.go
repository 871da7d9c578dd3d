package projections

import (
	"context"
	"fmt"

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
// long time) replaced those copies. (The SQLite store's status view keeps
// a snapshot, which its notifications projection resumes from and its
// scheduled-release query reads.)
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
	var n domain.Notification
	var after uint64
	for after < through {
		recs, err := h.ReadStream(ctx, domain.NotificationStream(id), after, int(min(through-after, historyPage)))
		if err != nil {
			return domain.Notification{}, fmt.Errorf("fold %s from the log: %w", id, err)
		}
		if len(recs) == 0 {
			break
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
	}
	if after < through {
		return domain.Notification{}, fmt.Errorf("fold %s from the log: the log holds %d events of its stream, the view has applied %d", id, after, through)
	}
	return n, nil
}
