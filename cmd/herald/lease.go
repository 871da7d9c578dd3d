package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// leaser is a view store that can hold a named lease (the SQLite and
// Cassandra view stores can).
type leaser interface {
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}

// processID names this process as a lease owner.
func processID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// runWithLease runs run only while this process holds the lease name: it
// stands by, trying every ttl/3, until the lease is free (its holder gave it
// up or died and let it expire), then runs, renewing every ttl/3; if a
// renewal fails, it stops run at once and stands by again. It returns when
// ctx ends, after run returned and the lease was released.
func runWithLease(ctx context.Context, l leaser, name string, ttl time.Duration, log *slog.Logger, run func(context.Context) error) error {
	owner := processID()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		held, err := l.AcquireLease(ctx, name, owner, ttl)
		if err != nil && ctx.Err() == nil {
			log.Warn("lease check failed", "lease", name, "err", err)
		}
		if held {
			log.Info("lease acquired: running", "lease", name, "owner", owner)
			if err := holdAndRun(ctx, l, name, owner, ttl, tick, log, run); err != nil {
				return err
			}
			if ctx.Err() == nil {
				log.Warn("lease lost: standing by", "lease", name, "owner", owner)
			}
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			return l.ReleaseLease(rctx, name, owner)
		case <-tick.C:
		}
	}
}

// holdAndRun runs run while renewals succeed.
func holdAndRun(ctx context.Context, l leaser, name, owner string, ttl time.Duration, tick *time.Ticker, log *slog.Logger, run func(context.Context) error) error {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(rctx) }()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-tick.C:
			held, err := l.AcquireLease(ctx, name, owner, ttl)
			if err != nil || !held {
				if err != nil && ctx.Err() == nil {
					log.Warn("lease renewal failed", "lease", name, "err", err)
				}
				cancel()
				<-done
				return nil
			}
		}
	}
}
