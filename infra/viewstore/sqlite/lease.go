package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AcquireLease takes or renews the lease name for owner until now+ttl and
// reports whether owner holds it: it does when the lease is free, expired,
// or already owner's. Processes sharing the views file use it so that one
// of them at a time runs the projections (the others stand by). The lease
// is only an agreement between honest processes: Apply itself stays safe
// if two writers overlap, because it checks and moves the checkpoint in
// the same transaction.
func (v *Views) AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if err := v.leaseTable(ctx); err != nil {
		return false, err
	}
	now := time.Now()
	res, err := v.writeDB.ExecContext(ctx, `INSERT INTO leases (name, owner, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
		WHERE leases.owner = excluded.owner OR leases.expires_at < ?`,
		name, owner, now.Add(ttl).UnixNano(), now.UnixNano())
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease gives the lease up if owner holds it, so a standby need not
// wait for it to expire after a clean shutdown.
func (v *Views) ReleaseLease(ctx context.Context, name, owner string) error {
	if err := v.leaseTable(ctx); err != nil {
		return err
	}
	if _, err := v.writeDB.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// LeaseHolder returns the owner of the lease name, or "" when no one
// holds it (never taken, given up or expired).
func (v *Views) LeaseHolder(ctx context.Context, name string) (string, error) {
	if err := v.leaseTable(ctx); err != nil {
		return "", err
	}
	var owner string
	err := v.writeDB.QueryRowContext(ctx, `SELECT owner FROM leases WHERE name = ? AND expires_at >= ?`, name, time.Now().UnixNano()).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lease holder %s: %w", name, err)
	}
	return owner, nil
}

// leaseTable creates the leases table on first use: it is not a view, so
// it is not part of the projections' schema and never rebuilt.
func (v *Views) leaseTable(ctx context.Context) error {
	if v.leasesReady.Load() {
		return nil
	}
	if _, err := v.writeDB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS leases (
		name       TEXT PRIMARY KEY,
		owner      TEXT NOT NULL,
		expires_at INTEGER NOT NULL -- Unix ns
	) WITHOUT ROWID`); err != nil {
		return fmt.Errorf("create leases table: %w", err)
	}
	v.leasesReady.Store(true)
	return nil
}
