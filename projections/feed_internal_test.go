package projections

import (
	"context"
	"errors"
	"testing"
	"time"

	"herald/infra/eventstore"
)

// scriptedLog is a Log whose subscriptions hand out the batches of runs,
// one per Next, whatever position they start after.
type scriptedLog struct {
	runs chan []eventstore.RecordedEvent
}

func (l scriptedLog) ReadAll(context.Context, eventstore.Position, int) ([]eventstore.RecordedEvent, error) {
	return nil, errors.New("scripted log: no pages")
}

func (l scriptedLog) Head(context.Context) (eventstore.Position, error) { return 0, nil }

func (l scriptedLog) Subscribe(context.Context, eventstore.Position) (eventstore.Subscription, error) {
	return scriptedSub(l), nil
}

type scriptedSub scriptedLog

func (s scriptedSub) Next(ctx context.Context) ([]eventstore.RecordedEvent, error) {
	select {
	case evs := <-s.runs:
		return evs, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (scriptedSub) Close() error { return nil }

func run(from, to eventstore.Position) []eventstore.RecordedEvent {
	var evs []eventstore.RecordedEvent
	for p := from; p <= to; p++ {
		evs = append(evs, eventstore.RecordedEvent{Position: p})
	}
	return evs
}

// The feed keeps a batch until every projector has asked past it: one
// that asks late, still at the start, gets the batch the others applied
// rather than a page of the log. Once all have passed a batch, it goes.
func TestFeedKeepsBatchesUntilEveryProjectorPassedThem(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	log := scriptedLog{runs: make(chan []eventstore.RecordedEvent, 2)}
	f := newLiveFeed(ctx, log, -1, 3)
	defer f.close() // after cancel, which ends the read still waiting
	defer cancel()
	log.runs <- run(1, 3)
	log.runs <- run(4, 5)

	first, err := f.next(ctx, "a", 0)
	if err != nil || first.Last() != 3 {
		t.Fatalf("a's first batch: %v, %v", first, err)
	}
	if b, err := f.next(ctx, "b", 0); err != nil || b != first {
		t.Fatalf("b's first batch: %v, %v; want a's", b, err)
	}
	second, err := f.next(ctx, "a", 3)
	if err != nil || second.Last() != 5 {
		t.Fatalf("a's second batch: %v, %v", second, err)
	}
	if _, err := f.next(ctx, "b", 3); err != nil {
		t.Fatal(err)
	}
	// c asks late, at the start: a and b have passed the first batch.
	if c, err := f.next(ctx, "c", 0); err != nil || c != first {
		t.Fatalf("c's first batch: %v, %v; want the one a and b applied", c, err)
	}
	if c, err := f.next(ctx, "c", 3); err != nil || c != second {
		t.Fatalf("c's second batch: %v, %v", c, err)
	}
	// Everyone has passed the first batch: it is dropped, and a projector
	// back at the start reads the log (nil).
	waitCtx, stop := context.WithTimeout(ctx, 10*time.Millisecond)
	defer stop()
	_, _ = f.next(waitCtx, "c", 5) // c passes both; waits for a third
	if b, err := f.next(ctx, "a", 0); err != nil || b != nil {
		t.Fatalf("a back at the start: %v, %v; want nil (read the log)", b, err)
	}
}
