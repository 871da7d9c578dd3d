package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// ScheduledNotifications calls fn for every notification waiting for its
// scheduled_at (status scheduled) as of one consistent read, and returns
// the checkpoint of the notifications projection that read reflects: the
// scheduler recovers from it at start and follows the log after it.
//
// The view holds no release time: each one is folded from the log, as the
// stream is now. A notification released or cancelled since the checkpoint
// is left out (there is nothing to release), and one held longer since
// comes with its later time; the scheduler meets those events again after
// the checkpoint and takes them as no news.
func (v *Views) ScheduledNotifications(ctx context.Context, fn func(id domain.NotificationID, due time.Time) error) (eventstore.Position, error) {
	pos, ids, err := v.scheduledIDs(ctx)
	if err != nil {
		return 0, fmt.Errorf("read scheduled notifications: %w", err)
	}
	for _, id := range ids {
		n, err := projections.FoldLatest(ctx, v.history, id)
		if err != nil {
			return 0, fmt.Errorf("read scheduled notification %s: %w", id, err)
		}
		if n.Status() != domain.StatusScheduled || n.Planned() {
			continue
		}
		if err := fn(id, n.ReleaseAt()); err != nil {
			return 0, err
		}
	}
	return pos, nil
}

// scheduledIDs reads the notifications projection's checkpoint and the
// notifications it shows scheduled in one read transaction.
func (v *Views) scheduledIDs(ctx context.Context) (eventstore.Position, []domain.NotificationID, error) {
	tx, err := v.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, nil, err
	}
	defer tx.Rollback()
	pos, err := checkpointIn(ctx, tx, projections.ProjectionNotifications)
	if err != nil {
		return 0, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM notifications WHERE status = ?`, string(domain.StatusScheduled))
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var ids []domain.NotificationID
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return 0, nil, err
		}
		ids = append(ids, domain.NotificationID(id))
	}
	return pos, ids, rows.Err()
}
