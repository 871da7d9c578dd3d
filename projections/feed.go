package projections

import (
	"context"
	"math"
	"sync"
	"time"

	"herald/infra/eventstore"
)

// feedBatches bounds the live batches the feed keeps for projectors that
// apply more slowly than the others; it drops sooner the batches every
// projector has applied. A subscription batch holds at most 1,024 events
// (some 2 MB with their decoded events and folds); a projector further
// behind reads pages of the log instead, and is back on the feed once it
// reaches what the feed holds.
const feedBatches = 16

// liveFeed is the one subscription the projectors following live appends
// share: each asks for the batch after its checkpoint and gets the same
// *Batch as the others, so each run of events is read, decoded, grouped
// and folded once, not once per projection. With a subscription each,
// the projectors drifted apart (each read what had arrived when it came
// back from its own apply), and under api_batch every projection read,
// decoded and folded most events on its own.
//
// The feed reads on demand: when a projector waits for the batch after the
// last one read and no read is under way, a goroutine takes the next batch
// from the subscription, first waiting out the linger after a small batch
// (see DefaultLinger) so that all of them gather the appends of the
// linger together. A read runs on the Runner's context: a projector that
// stops waiting (a rebuild's handoff) leaves the subscription intact.
type liveFeed struct {
	log       Log
	ctx       context.Context // the Runner's: reads end with it
	linger    time.Duration
	followers int // how many projectors may ask

	mu      sync.Mutex
	at      map[string]eventstore.Position // where each projector asked last
	started bool
	batches []*Batch            // contiguous, oldest first
	end     eventstore.Position // where the next batch starts
	sub     eventstore.Subscription
	read    *feedRead // the read under way, or nil
	// smallAt is when the last batch, if it was a small one, was read:
	// the next read waits for the linger to pass from then.
	smallAt time.Time

	reads sync.WaitGroup
}

// feedRead is one read of the subscription; done closes when it ends,
// with err set if it failed.
type feedRead struct {
	done chan struct{}
	err  error
}

func newLiveFeed(ctx context.Context, log Log, linger time.Duration, followers int) *liveFeed {
	return &liveFeed{log: log, ctx: ctx, linger: linger, followers: followers, at: map[string]eventstore.Position{}}
}

// next returns the live batch that starts right after cp, the checkpoint
// of projector name, waiting for the subscription when cp is the end of
// what the feed has read. When cp falls inside a batch it returns the rest
// of that batch (a Batch of its own); when cp is older than anything the
// feed holds it returns nil: the caller reads the log from cp itself. It
// returns ctx's error when ctx ends first, and a failed read's error to the
// projectors that waited for it (the next call reads again, on a new
// subscription).
func (f *liveFeed) next(ctx context.Context, name string, cp eventstore.Position) (*Batch, error) {
	f.mu.Lock()
	f.at[name] = cp
	f.trimLocked()
	for {
		if !f.started || (cp > f.end && f.read == nil) {
			// The first projector to follow, or one ahead of the
			// feed (after a rebuild's swap, say) while no read is
			// under way: the feed follows from there, and those
			// behind it read the log until they reach it.
			f.restartLocked(cp)
		}
		if b, ok := f.findLocked(cp); ok {
			f.mu.Unlock()
			return b, nil
		}
		if cp < f.end {
			f.mu.Unlock()
			return nil, nil // older than the feed holds
		}
		// cp is the end (or ahead of it while a read is under way):
		// wait for the next batch.
		rd := f.read
		if rd == nil {
			rd = f.startReadLocked()
		}
		f.mu.Unlock()
		select {
		case <-rd.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if rd.err != nil {
			return nil, rd.err
		}
		f.mu.Lock()
	}
}

// trimLocked drops the batches every projector has applied, once each has
// asked: one that has not asked yet (still catching up, or slow to start)
// may need the first of them.
func (f *liveFeed) trimLocked() {
	if len(f.at) < f.followers {
		return
	}
	oldest := eventstore.Position(math.MaxUint64)
	for _, cp := range f.at {
		oldest = min(oldest, cp)
	}
	i := 0
	for i < len(f.batches) && f.batches[i].Last() <= oldest {
		i++
	}
	f.dropLocked(i)
}

// dropLocked forgets the oldest n batches (none when n <= 0).
func (f *liveFeed) dropLocked(n int) {
	if n <= 0 {
		return
	}
	kept := copy(f.batches, f.batches[n:])
	clear(f.batches[kept:])
	f.batches = f.batches[:kept]
}

// findLocked returns the batch that starts at cp, or the rest of the batch
// that cp falls inside.
func (f *liveFeed) findLocked(cp eventstore.Position) (*Batch, bool) {
	for _, b := range f.batches {
		after, _ := b.Page()
		switch {
		case cp == after:
			return b, true
		case cp > after && cp < b.Last():
			evs := b.Records()
			i := 0
			for i < len(evs) && evs[i].Position <= cp {
				i++
			}
			return NewLogPage(cp, evs[i:]), true
		}
	}
	return nil, false
}

func (f *liveFeed) restartLocked(cp eventstore.Position) {
	if f.sub != nil {
		_ = f.sub.Close()
		f.sub = nil
	}
	f.started, f.batches, f.end, f.smallAt = true, nil, cp, time.Time{}
}

// startReadLocked starts reading the batch after f.end.
func (f *liveFeed) startReadLocked() *feedRead {
	rd := &feedRead{done: make(chan struct{})}
	f.read = rd
	after, sub := f.end, f.sub
	var wait time.Duration
	if !f.smallAt.IsZero() && f.linger > 0 {
		wait = time.Until(f.smallAt.Add(f.linger))
	}
	f.reads.Add(1)
	go func() {
		defer f.reads.Done()
		evs, sub, err := f.readAfter(after, sub, wait)
		f.mu.Lock()
		defer f.mu.Unlock()
		f.read = nil
		if err != nil {
			if sub != nil {
				_ = sub.Close()
			}
			f.sub = nil
			rd.err = err
			close(rd.done)
			return
		}
		f.sub = sub
		b := NewLogPage(after, evs)
		f.dropLocked(len(f.batches) + 1 - feedBatches)
		f.batches = append(f.batches, b)
		f.end = b.Last()
		f.smallAt = time.Time{}
		if len(evs) < lingerBelow {
			f.smallAt = time.Now()
		}
		close(rd.done)
	}()
	return rd
}

// readAfter waits wait, then returns the next events of sub, a new
// subscription after after when sub is nil.
func (f *liveFeed) readAfter(after eventstore.Position, sub eventstore.Subscription, wait time.Duration) ([]eventstore.RecordedEvent, eventstore.Subscription, error) {
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-f.ctx.Done():
			t.Stop()
			return nil, sub, f.ctx.Err()
		}
	}
	if sub == nil {
		var err error
		if sub, err = f.log.Subscribe(f.ctx, after); err != nil {
			return nil, nil, err
		}
	}
	evs, err := sub.Next(f.ctx)
	return evs, sub, err
}

// close waits for the read under way, which ends with the Runner's
// context, and closes the subscription.
func (f *liveFeed) close() {
	f.reads.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sub != nil {
		_ = f.sub.Close()
		f.sub = nil
	}
}
