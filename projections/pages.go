package projections

import (
	"context"
	"sync"

	"herald/infra/eventstore"
)

// pageCacheSize bounds the batches pageCache keeps: the page the slowest
// projection applies, the next ones and the one prefetched. A page of
// BatchSize events takes about 7 MB with its decoded events and states; 12
// pages lifted the peak heap of a rebuild from zero from 138 MB to 340 MB
// (4: 226 MB) for no measurable gain.
const pageCacheSize = 4

// pageCache shares what the projectors read from the log. Projections that
// catch up together (a rebuild from zero, a restart) read and decode each
// page once instead of once each. (Following live, they share the batches
// of the live feed.)
type pageCache struct {
	mu      sync.Mutex
	entries []*pageEntry // oldest first

	prefetches sync.WaitGroup // so that Run returns only once they are done
}

type pageEntry struct {
	after eventstore.Position
	ready chan struct{} // closed once batch or err is set
	batch *Batch
	err   error
}

func (c *pageCache) addLocked(e *pageEntry) {
	if len(c.entries) >= pageCacheSize {
		c.entries = append(c.entries[:0], c.entries[1:]...)
	}
	c.entries = append(c.entries, e)
}

func (c *pageCache) remove(e *pageEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.entries {
		if x == e {
			c.entries = append(c.entries[:i], c.entries[i+1:]...)
			return
		}
	}
}

// read returns the page of up to BatchSize events after after. Only full
// pages are shared: they cannot change, while a short one grows with the
// log. A projector asking for a page another is reading waits for it.
func (c *pageCache) read(ctx context.Context, log Log, after eventstore.Position) (*Batch, error) {
	c.mu.Lock()
	for _, e := range c.entries {
		if e.after != after {
			continue
		}
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil && len(e.batch.events) == BatchSize {
			c.prefetch(ctx, log, e.batch.Last())
			return e.batch, nil
		}
		return readPage(ctx, log, after)
	}
	e := &pageEntry{after: after, ready: make(chan struct{})}
	c.addLocked(e)
	c.mu.Unlock()
	c.fill(ctx, log, e)
	if e.err == nil && len(e.batch.events) == BatchSize {
		c.prefetch(ctx, log, e.batch.Last())
	}
	return e.batch, e.err
}

// fill reads e's page, and forgets it unless it is full.
func (c *pageCache) fill(ctx context.Context, log Log, e *pageEntry) {
	e.batch, e.err = readPage(ctx, log, e.after)
	close(e.ready)
	if e.err != nil || len(e.batch.events) < BatchSize {
		c.remove(e)
	}
}

// prefetch reads and decodes the page after after in the background, unless
// it is cached or on its way. Catching up is then a pipeline: the next page
// is read and decoded while the projections write this one (without it, the
// decode of each page stood alone on the critical path: 35 k events/s
// before, see Batch).
func (c *pageCache) prefetch(ctx context.Context, log Log, after eventstore.Position) {
	c.mu.Lock()
	for _, e := range c.entries {
		if e.after == after {
			c.mu.Unlock()
			return
		}
	}
	e := &pageEntry{after: after, ready: make(chan struct{})}
	c.addLocked(e)
	c.mu.Unlock()
	c.prefetches.Go(func() {
		c.fill(ctx, log, e)
		if e.err == nil {
			e.batch.Decoded()
		}
	})
}

func readPage(ctx context.Context, log Log, after eventstore.Position) (*Batch, error) {
	evs, err := log.ReadAll(ctx, after, BatchSize)
	if err != nil {
		return nil, err
	}
	return NewLogPage(after, evs), nil
}
