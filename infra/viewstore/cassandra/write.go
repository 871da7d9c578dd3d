package cassandra

import (
	"context"
	"sync"

	"github.com/gocql/gocql"
)

// Bounds of one unlogged batch. Cassandra warns above 5 KiB per batch and
// refuses above 50 KiB by default; a batch only ever holds rows of one
// partition, so it costs the coordinator one mutation.
const (
	maxBatchStatements = 100
	maxBatchBytes      = 40 << 10
)

// stmt is one write. Statements with the same non-empty group write the
// same partition and may share an unlogged batch.
type stmt struct {
	group string
	cql   string
	args  []any
}

func (s stmt) size() int {
	n := 16
	for _, a := range s.args {
		switch a := a.(type) {
		case string:
			n += len(a) + 4
		case []string:
			for _, e := range a {
				n += len(e) + 4
			}
		default:
			n += 8
		}
	}
	return n
}

// execAll runs the statements, batching each group into unlogged batches
// and keeping up to concurrency requests in flight. Every statement is an
// idempotent upsert or delete, so the driver may retry it. It returns the
// first error after every started request has finished.
func execAll(ctx context.Context, s *gocql.Session, concurrency int, stmts []stmt) error {
	var units [][]stmt
	open := map[string]int{}
	sizes := map[string]int{}
	for _, st := range stmts {
		if st.group == "" {
			units = append(units, []stmt{st})
			continue
		}
		i, ok := open[st.group]
		if ok && (len(units[i]) >= maxBatchStatements || sizes[st.group]+st.size() > maxBatchBytes) {
			ok = false
		}
		if !ok {
			i = len(units)
			units = append(units, nil)
			open[st.group] = i
			sizes[st.group] = 0
		}
		units[i] = append(units[i], st)
		sizes[st.group] += st.size()
	}
	return parallel(ctx, concurrency, len(units), func(ctx context.Context, i int) error {
		u := units[i]
		if len(u) == 1 {
			return s.Query(u[0].cql, u[0].args...).WithContext(ctx).Idempotent(true).Exec()
		}
		b := s.NewBatch(gocql.UnloggedBatch).WithContext(ctx)
		for _, st := range u {
			b.Entries = append(b.Entries, gocql.BatchEntry{Stmt: st.cql, Args: st.args, Idempotent: true})
		}
		return s.ExecuteBatch(b)
	})
}

// parallel calls fn(ctx, i) for i in [0, n) with at most limit calls at
// once, stops starting new ones after the first error, and returns that
// error once the running ones have returned.
func parallel(parent context.Context, limit, n int, fn func(ctx context.Context, i int) error) error {
	if n == 1 {
		return fn(parent, 0)
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		wg   sync.WaitGroup
		once sync.Once
		err  error
		sem  = make(chan struct{}, max(1, limit))
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if e := fn(ctx, i); e != nil {
				once.Do(func() { err = e; cancel() })
			}
		})
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return parent.Err()
}
