package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// leaser is a view store that can hold a named lease (the SQLite and
// Cassandra view stores can).
type leaser interface {
	AcquireLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
	LeaseHolder(ctx context.Context, name string) (string, error)
}

// processID names this process as a lease owner: host/pid/random.
func processID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

// goneFromThisHost reports whether owner (a processID) names a process of
// this host that no longer exists: a Herald that was killed and whose lease
// has not expired yet. A process restarted after a crash takes such a lease
// over at once instead of standing by for its predecessor's ttl. Anything
// uncertain — another or an unnamed host, a pid that is alive (perhaps
// reused), a malformed owner — counts as not gone, and the lease is left
// to expire.
func goneFromThisHost(owner string) bool {
	host, rest, ok := strings.Cut(owner, "/")
	if !ok {
		return false
	}
	pidText, _, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	me, err := os.Hostname()
	if err != nil || host == "" || host == "localhost" || host != me {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// acquireLease is AcquireLease that first frees a lease whose holder is gone
// from this host (goneFromThisHost).
func acquireLease(ctx context.Context, l leaser, name, owner string, ttl time.Duration, log *slog.Logger) (bool, error) {
	held, err := l.AcquireLease(ctx, name, owner, ttl)
	if held || err != nil {
		return held, err
	}
	holder, err := l.LeaseHolder(ctx, name)
	if err != nil || !goneFromThisHost(holder) {
		return false, err
	}
	log.Info("lease holder is gone from this host: taking over", "lease", name, "holder", holder)
	if err := l.ReleaseLease(ctx, name, holder); err != nil {
		return false, err
	}
	return l.AcquireLease(ctx, name, owner, ttl)
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
		held, err := acquireLease(ctx, l, name, owner, ttl, log)
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
