package cassandra

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gocql/gocql"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// readWork reads the live work table after reading the checkpoint it is
// at least as new as. Cassandra has no snapshot across the two, so a row
// may already reflect events after the checkpoint; the roles follow the
// log from the checkpoint and meet those events again, which they take
// as no news (a delivery is queued once, and the domain refuses an
// attempt or a release that is no longer due). Nothing is missed.
func (v *Views) readWork(ctx context.Context, fn func(id domain.NotificationID, delivery, channel, priority, status, address string, due int64) error) (eventstore.Position, error) {
	p, err := v.readPointer(ctx, projections.ProjectionNotifications)
	if err != nil {
		return 0, err
	}
	pos, err := v.readCheckpoint(ctx, projections.ProjectionNotifications, p.live)
	if err != nil {
		return 0, err
	}
	t := tableName(v.ks, "work", p.live)
	for shard := range workShards {
		iter := v.s.Query(`SELECT notification_id, delivery_id, channel, priority, status, address, due FROM `+t+` WHERE shard = ?`, shard).
			WithContext(ctx).PageSize(5000).Iter()
		var (
			nid, did, ch, prio, status, address string
			due                                 int64
		)
		for iter.Scan(&nid, &did, &ch, &prio, &status, &address, &due) {
			if err := fn(domain.NotificationID(nid), did, ch, prio, status, address, due); err != nil {
				iter.Close()
				return 0, err
			}
		}
		if err := iter.Close(); err != nil {
			return 0, fmt.Errorf("read work: %w", err)
		}
	}
	return pos, nil
}

// PendingDeliveries implements projections.DeliveryBacklog.
func (v *Views) PendingDeliveries(ctx context.Context, fn func(projections.PendingDelivery) error) (eventstore.Position, error) {
	return v.readWork(ctx, func(id domain.NotificationID, delivery, ch, prio, status, address string, due int64) error {
		if delivery == "" {
			return nil
		}
		p := projections.PendingDelivery{NotificationID: id, DeliveryID: domain.DeliveryID(delivery),
			Channel: domain.Channel(ch), Priority: domain.Priority(prio), Status: domain.DeliveryStatus(status), Address: address}
		if due != 0 {
			p.DueAt = fromNanos(due)
		}
		return fn(p)
	})
}

// ScheduledNotifications lists the notifications waiting for their
// scheduled_at, for the scheduler's recovery.
func (v *Views) ScheduledNotifications(ctx context.Context, fn func(id domain.NotificationID, due time.Time) error) (eventstore.Position, error) {
	return v.readWork(ctx, func(id domain.NotificationID, delivery, _, _, _, _ string, due int64) error {
		if delivery != "" {
			return nil
		}
		return fn(id, fromNanos(due))
	})
}

// AcquireLease takes or renews the lease name for owner for ttl (a
// lightweight transaction; the row's TTL expires a dead holder's lease).
func (v *Views) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	secs := max(1, int(ttl.Seconds()))
	var holder string
	applied, err := v.s.Query(fmt.Sprintf(`INSERT INTO %s.leases (name, owner) VALUES (?, ?) IF NOT EXISTS USING TTL %d`, v.ks, secs),
		name, owner).WithContext(ctx).ScanCAS(&name, &holder)
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	if applied {
		return true, nil
	}
	if holder != owner {
		return false, nil
	}
	applied, err = v.s.Query(fmt.Sprintf(`UPDATE %s.leases USING TTL %d SET owner = ? WHERE name = ? IF owner = ?`, v.ks, secs),
		owner, name, owner).WithContext(ctx).ScanCAS(&holder)
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return applied, nil
}

// LeaseHolder returns the owner of the lease name, or "" when no one
// holds it.
func (v *Views) LeaseHolder(ctx context.Context, name string) (string, error) {
	var owner string
	err := v.s.Query(fmt.Sprintf(`SELECT owner FROM %s.leases WHERE name = ?`, v.ks), name).
		SerialConsistency(gocql.LocalSerial).WithContext(ctx).Scan(&owner)
	if errors.Is(err, gocql.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease holder %s: %w", name, err)
	}
	return owner, nil
}

// ReleaseLease gives the lease up if owner holds it.
func (v *Views) ReleaseLease(ctx context.Context, name, owner string) error {
	var holder string
	_, err := v.s.Query(fmt.Sprintf(`DELETE FROM %s.leases WHERE name = ? IF owner = ?`, v.ks), name, owner).
		WithContext(ctx).ScanCAS(&holder)
	if err != nil && !errors.Is(err, gocql.ErrNotFound) {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
