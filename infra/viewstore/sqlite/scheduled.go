package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// ScheduledNotifications calls fn for every notification waiting for its
// scheduled_at (status scheduled) as of one consistent read, and returns
// the checkpoint of the notifications projection that read reflects: the
// scheduler recovers from it at start and follows the log after it.
func (v *Views) ScheduledNotifications(ctx context.Context, fn func(id domain.NotificationID, due time.Time) error) (eventstore.Position, error) {
	tx, err := v.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("read scheduled notifications: %w", err)
	}
	defer tx.Rollback()
	pos, err := checkpointIn(ctx, tx, projections.ProjectionNotifications)
	if err != nil {
		return 0, fmt.Errorf("read scheduled notifications: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, snapshot FROM notifications WHERE status = ?`, string(domain.StatusScheduled))
	if err != nil {
		return 0, fmt.Errorf("read scheduled notifications: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, snap string
		if err := rows.Scan(&id, &snap); err != nil {
			return 0, fmt.Errorf("read scheduled notifications: %w", err)
		}
		var s domain.NotificationSnapshot
		if err := fastjson.Unmarshal([]byte(snap), &s); err != nil {
			return 0, fmt.Errorf("read scheduled notification %s: %w", id, err)
		}
		due := domain.RestoreNotification(s).ReleaseAt()
		if err := fn(domain.NotificationID(id), due); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read scheduled notifications: %w", err)
	}
	return pos, nil
}
