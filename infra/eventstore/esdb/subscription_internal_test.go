package esdb

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"herald/infra/eventstore"
)

// fakeFeed plays a scripted server subscription: the messages sent to it,
// then a drop when its script is closed or it is closed.
type fakeFeed struct {
	msgs      chan *esdb.SubscriptionEvent
	closed    chan struct{}
	closeOnce sync.Once
}

func newFakeFeed() *fakeFeed {
	return &fakeFeed{msgs: make(chan *esdb.SubscriptionEvent, 64), closed: make(chan struct{})}
}

func (f *fakeFeed) Recv() *esdb.SubscriptionEvent {
	dropped := &esdb.SubscriptionEvent{SubscriptionDropped: &esdb.SubscriptionDropped{Error: errors.New("dropped")}}
	select {
	case m, ok := <-f.msgs:
		if !ok {
			return dropped
		}
		return m
	case <-f.closed:
		return dropped
	}
}

func (f *fakeFeed) Close() error {
	f.closeOnce.Do(func() { close(f.closed) })
	return nil
}

// event sends an event of type typ at position pos.
func (f *fakeFeed) event(typ string, pos uint64) {
	f.msgs <- &esdb.SubscriptionEvent{EventAppeared: &esdb.ResolvedEvent{Event: &esdb.RecordedEvent{
		EventID: uuid.Must(uuid.NewV7()), EventType: typ, StreamID: "s", EventNumber: pos,
		Position: esdb.Position{Commit: pos, Prepare: pos}, CreatedDate: time.Now(),
		Data: []byte(`{}`), UserMetadata: []byte(`{"schemaVersion":1}`),
	}}}
}

func (f *fakeFeed) checkpoint(pos uint64) {
	f.msgs <- &esdb.SubscriptionEvent{CheckPointReached: &esdb.Position{Commit: pos, Prepare: pos}}
}

// drop ends the feed as a server drop would.
func (f *fakeFeed) drop() { close(f.msgs) }

// opener hands out scripted feeds and errors in turn and records the
// positions it was asked to start after.
type opener struct {
	mu     sync.Mutex
	next   []any // *fakeFeed or error
	afters []eventstore.Position
	asked  chan struct{}
}

func newOpener(next ...any) *opener {
	return &opener{next: next, asked: make(chan struct{}, 16)}
}

func (o *opener) open(ctx context.Context, after eventstore.Position) (feed, error) {
	o.mu.Lock()
	o.afters = append(o.afters, after)
	var n any = errors.New("no more feeds scripted")
	if len(o.next) > 0 {
		n, o.next = o.next[0], o.next[1:]
	}
	o.mu.Unlock()
	o.asked <- struct{}{}
	if err, ok := n.(error); ok {
		return nil, err
	}
	return n.(*fakeFeed), nil
}

func (o *opener) startedAfter() []eventstore.Position {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.afters)
}

func startFollowing(t *testing.T, ctx context.Context, first feed, after eventstore.Position, o *opener, batch int) *subscription {
	t.Helper()
	subCtx, cancel := context.WithCancelCause(ctx)
	exited := make(chan struct{})
	s := follow(subCtx, cancel, first, after, o.open, followConfig{batch: batch, backoffMin: time.Millisecond, backoffMax: 4 * time.Millisecond}, func() { close(exited) })
	t.Cleanup(func() {
		s.Close()
		<-exited
	})
	return s
}

// collectUntil calls Next until it has seen position upTo.
func collectUntil(t *testing.T, s *subscription, upTo eventstore.Position) []eventstore.Position {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []eventstore.Position
	for len(got) == 0 || got[len(got)-1] < upTo {
		evs, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("Next after %v: %v", got, err)
		}
		if len(evs) == 0 {
			t.Fatal("Next returned an empty batch")
		}
		for _, e := range evs {
			got = append(got, e.Position)
		}
	}
	return got
}

func TestFollowDeliversInOrderWithoutSystemEvents(t *testing.T) {
	t.Parallel()
	f := newFakeFeed()
	s := startFollowing(t, t.Context(), f, 0, newOpener(), 2)
	f.event("Queued", 100)
	f.event("$metadata", 150)
	f.checkpoint(160)
	f.event("Sent", 200)
	f.event("Delivered", 300)
	if got := collectUntil(t, s, 300); !slices.Equal(got, []eventstore.Position{100, 200, 300}) {
		t.Errorf("delivered %v, want [100 200 300]", got)
	}
}

func TestFollowBatchesWhatIsWaiting(t *testing.T) {
	t.Parallel()
	f := newFakeFeed()
	s := startFollowing(t, t.Context(), f, 0, newOpener(), 3)
	for p := uint64(1); p <= 5; p++ {
		f.event("Queued", p*10)
	}
	// Wait until the follower has queued all five.
	deadline := time.Now().Add(10 * time.Second)
	for len(s.events) < 5 && time.Now().Before(deadline) {
		select {
		case <-time.After(time.Millisecond):
		case <-t.Context().Done():
		}
	}
	evs, err := s.Next(t.Context())
	if err != nil || len(evs) != 3 {
		t.Fatalf("first Next: %d events, %v; want a batch of 3", len(evs), err)
	}
	evs, err = s.Next(t.Context())
	if err != nil || len(evs) != 2 {
		t.Fatalf("second Next: %d events, %v; want the remaining 2", len(evs), err)
	}
}

func TestFollowResubscribesWithoutGapOrDuplicate(t *testing.T) {
	t.Parallel()
	first, second, third := newFakeFeed(), newFakeFeed(), newFakeFeed()
	o := newOpener(errors.New("unavailable"), second, errors.New("unavailable"), third)
	s := startFollowing(t, t.Context(), first, 50, o, 10)

	first.event("Queued", 100)
	first.event("Sent", 200)
	first.drop()
	// A resubscription from 200 may start at the event at 200 again.
	second.event("Sent", 200)
	second.event("Delivered", 300)
	second.drop()
	third.event("Delivered", 300)
	third.event("Read", 400)

	got := collectUntil(t, s, 400)
	if !slices.Equal(got, []eventstore.Position{100, 200, 300, 400}) {
		t.Errorf("delivered %v, want [100 200 300 400] once each", got)
	}
	if afters := o.startedAfter(); !slices.Equal(afters, []eventstore.Position{200, 200, 300, 300}) {
		t.Errorf("resubscribed after %v, want [200 200 300 300]", afters)
	}
}

func TestFollowResubscribesFromWhereItStartedWhenNothingWasDelivered(t *testing.T) {
	t.Parallel()
	first, second := newFakeFeed(), newFakeFeed()
	o := newOpener(second)
	s := startFollowing(t, t.Context(), first, 70, o, 10)
	first.event("Old", 70) // at the start position: not after it
	first.drop()
	second.event("New", 80)
	if got := collectUntil(t, s, 80); !slices.Equal(got, []eventstore.Position{80}) {
		t.Errorf("delivered %v, want [80]", got)
	}
	if afters := o.startedAfter(); !slices.Equal(afters, []eventstore.Position{70}) {
		t.Errorf("resubscribed after %v, want [70]", afters)
	}
}

func TestFollowStopsOnPermanentError(t *testing.T) {
	t.Parallel()
	first := newFakeFeed()
	denied := clientError(esdb.ErrorCodeAccessDenied, errors.New("no"))
	s := startFollowing(t, t.Context(), first, 0, newOpener(denied), 10)
	first.drop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err := s.Next(ctx)
	if !errors.Is(err, denied) {
		t.Fatalf("Next after a refused resubscription: %v, want the access denied error", err)
	}
	if _, err2 := s.Next(ctx); !errors.Is(err2, denied) {
		t.Errorf("second Next: %v, want the same error", err2)
	}
}

func TestFollowEnds(t *testing.T) {
	t.Parallel()
	t.Run("Close", func(t *testing.T) {
		t.Parallel()
		s := startFollowing(t, t.Context(), newFakeFeed(), 0, newOpener(), 10)
		res := make(chan error, 1)
		go func() {
			_, err := s.Next(t.Context())
			res <- err
		}()
		s.Close()
		if err := <-res; !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("blocked Next after Close: %v, want ErrClosed", err)
		}
		if _, err := s.Next(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Next after Close: %v, want ErrClosed", err)
		}
		s.Close()
	})
	t.Run("SubscribeContext", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		s := startFollowing(t, ctx, newFakeFeed(), 0, newOpener(), 10)
		cancel()
		<-s.ended
		if _, err := s.Next(t.Context()); !errors.Is(err, context.Canceled) {
			t.Errorf("Next after the Subscribe context ended: %v, want context.Canceled", err)
		}
	})
	t.Run("NextContext", func(t *testing.T) {
		t.Parallel()
		f := newFakeFeed()
		s := startFollowing(t, t.Context(), f, 0, newOpener(), 10)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if _, err := s.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Next with nothing to read: %v, want DeadlineExceeded", err)
		}
		// A cancelled Next takes nothing: the event is still there.
		f.event("Queued", 5)
		done, cancelDone := context.WithCancel(t.Context())
		cancelDone()
		if evs, err := s.Next(done); err == nil {
			t.Errorf("Next with a cancelled context returned %d events", len(evs))
		}
		if got := collectUntil(t, s, 5); !slices.Equal(got, []eventstore.Position{5}) {
			t.Errorf("after a cancelled Next: %v, want [5]", got)
		}
	})
	t.Run("StoreClosed", func(t *testing.T) {
		t.Parallel()
		s := startFollowing(t, t.Context(), newFakeFeed(), 0, newOpener(), 10)
		s.cancel(eventstore.ErrClosed) // what the store's Close does
		<-s.ended
		if _, err := s.Next(t.Context()); !errors.Is(err, eventstore.ErrClosed) {
			t.Errorf("Next after the store closed: %v, want ErrClosed", err)
		}
	})
}
