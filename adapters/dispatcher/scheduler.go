package dispatcher

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"herald/domain"
)

// work is one delivery owed an attempt.
type work struct {
	notification domain.NotificationID
	delivery     domain.DeliveryID
	channel      domain.Channel
	priority     domain.Priority
	due          time.Time // zero: now
}

func (w work) key() string { return w.notification.DeliveryKey(w.delivery) }

// lane returns the priority lane index: 0 high, 1 normal, 2 low.
func lane(p domain.Priority) int {
	switch p {
	case domain.PriorityHigh:
		return 0
	case domain.PriorityLow:
		return 2
	}
	return 1
}

// LaneWeights are the shares of picks the high, normal and low lanes get
// when all three have work ready: high is taken first, and low still
// progresses under sustained high load (smooth weighted round robin, so
// no lane waits more than a few picks for its turn).
type LaneWeights [3]int

// DefaultLaneWeights gives high 8, normal 3 and low 1 pick in 12.
var DefaultLaneWeights = LaneWeights{8, 3, 1}

// scheduler holds the deliveries each channel owes, in priority lanes, and
// the ones not due yet in a timer heap. A delivery is held at most once
// (keyed by its idempotency key) whether it waits, is due or is running;
// news about a running delivery (a retry scheduled by its own attempt) is
// kept and re-queued when the attempt ends.
type scheduler struct {
	mu       sync.Mutex
	clock    func() time.Time
	weights  LaneWeights
	channels map[domain.Channel]*channelQueue
	held     map[string]*held
	delayed  delayedHeap
	wake     chan struct{} // pokes the timer loop when the earliest due time moved
	closed   bool
}

type held struct {
	running bool
	again   *work // news that arrived while running
}

func newScheduler(clock func() time.Time, weights LaneWeights, channels []domain.Channel, limits map[domain.Channel]*limiter) *scheduler {
	s := &scheduler{
		clock:    clock,
		weights:  weights,
		channels: make(map[domain.Channel]*channelQueue, len(channels)),
		held:     make(map[string]*held),
		wake:     make(chan struct{}, 1),
	}
	for _, c := range channels {
		s.channels[c] = &channelQueue{signal: make(chan struct{}, 1), limit: limits[c]}
	}
	return s
}

// add offers a delivery. It is dropped when its channel has no sender (the
// caller logs that), and merged when the delivery is already held.
func (s *scheduler) add(w work) bool {
	s.mu.Lock()
	q := s.channels[w.channel]
	if q == nil || s.closed {
		s.mu.Unlock()
		return false
	}
	k := w.key()
	if h, ok := s.held[k]; ok {
		if h.running {
			h.again = &w
		}
		s.mu.Unlock()
		return true
	}
	s.held[k] = &held{}
	s.placeLocked(q, w)
	s.mu.Unlock()
	return true
}

// placeLocked puts w in its ready lane or, when not due, in the timer heap.
func (s *scheduler) placeLocked(q *channelQueue, w work) {
	if !w.due.IsZero() && w.due.After(s.clock()) {
		heap.Push(&s.delayed, w)
		if s.delayed[0].key() == w.key() {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
		return
	}
	q.lanes[lane(w.priority)].push(w)
	q.notify()
}

// next blocks until channel c has a due delivery that its rate limit lets
// through, marks it running and returns it. It returns false when ctx ends
// or the scheduler closes.
func (s *scheduler) next(ctx context.Context, c domain.Channel) (work, bool) {
	s.mu.Lock()
	q := s.channels[c]
	s.mu.Unlock()
	if q == nil {
		return work{}, false
	}
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			q.notify() // pass the news on to the next waiting worker
			return work{}, false
		}
		if q.ready() > 0 {
			if wait := q.limit.reserve(s.clock()); wait > 0 {
				s.mu.Unlock()
				if !sleep(ctx, wait) {
					return work{}, false
				}
				continue
			}
			w := q.pick(s.weights)
			if h := s.held[w.key()]; h != nil {
				h.running = true
			}
			more := q.ready() > 0
			s.mu.Unlock()
			if more {
				q.notify() // hand the next one to another worker
			}
			return w, true
		}
		s.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return work{}, false
		}
	}
}

// done ends a running delivery. retry, when set, is the attempt's own
// verdict on when to try again; news that arrived meanwhile wins only when
// retry is unset.
func (s *scheduler) done(w work, retry *work) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := w.key()
	h := s.held[k]
	if h == nil {
		return
	}
	next := retry
	if next == nil {
		next = h.again
	}
	if next == nil || s.closed {
		delete(s.held, k)
		return
	}
	h.running, h.again = false, nil
	s.placeLocked(s.channels[w.channel], *next)
}

// run moves deliveries from the timer heap to their lanes as they fall due,
// until ctx ends.
func (s *scheduler) run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		s.mu.Lock()
		now := s.clock()
		for len(s.delayed) > 0 && !s.delayed[0].due.After(now) {
			w := heap.Pop(&s.delayed).(work)
			s.channels[w.channel].lanes[lane(w.priority)].push(w)
			s.channels[w.channel].notify()
		}
		wait := time.Hour
		if len(s.delayed) > 0 {
			wait = s.delayed[0].due.Sub(now)
		}
		s.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.wake:
			if !t.Stop() {
				select {
				case <-t.C:
				default:
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

// close stops handing out work; running deliveries finish normally.
func (s *scheduler) close() {
	s.mu.Lock()
	s.closed = true
	for _, q := range s.channels {
		q.notify()
	}
	s.mu.Unlock()
}

// backlog returns the deliveries held per channel and lane (waiting or
// due, running excluded) and the number not due yet.
func (s *scheduler) backlog() (ready map[domain.Channel][3]int, delayed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ready = make(map[domain.Channel][3]int, len(s.channels))
	for c, q := range s.channels {
		ready[c] = [3]int{q.lanes[0].len(), q.lanes[1].len(), q.lanes[2].len()}
	}
	return ready, len(s.delayed)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// channelQueue is one channel's three lanes.
type channelQueue struct {
	lanes   [3]fifo
	current [3]int        // smooth weighted round robin state
	signal  chan struct{} // capacity 1: wakes one waiting worker
	limit   *limiter      // nil: unlimited
}

func (q *channelQueue) notify() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *channelQueue) ready() int { return q.lanes[0].len() + q.lanes[1].len() + q.lanes[2].len() }

// pick takes from the lane that smooth weighted round robin chooses among
// the non-empty ones. The caller made sure one is non-empty.
func (q *channelQueue) pick(weights LaneWeights) work {
	best, total := -1, 0
	for i := range q.lanes {
		if q.lanes[i].len() == 0 {
			continue
		}
		q.current[i] += weights[i]
		total += weights[i]
		if best < 0 || q.current[i] > q.current[best] {
			best = i
		}
	}
	q.current[best] -= total
	// A lane that empties forgets its credit, so a burst arriving later
	// does not get a head start over the lanes that kept working.
	w := q.lanes[best].pop()
	if q.lanes[best].len() == 0 {
		q.current[best] = 0
	}
	return w
}

// fifo is a queue that reuses its memory.
type fifo struct {
	buf  []work
	head int
}

func (f *fifo) len() int { return len(f.buf) - f.head }

func (f *fifo) push(w work) {
	if f.head > 0 && f.head == len(f.buf) {
		f.buf, f.head = f.buf[:0], 0
	} else if f.head > 1024 && f.head*2 > len(f.buf) {
		n := copy(f.buf, f.buf[f.head:])
		clear(f.buf[n:])
		f.buf, f.head = f.buf[:n], 0
	}
	f.buf = append(f.buf, w)
}

func (f *fifo) pop() work {
	w := f.buf[f.head]
	f.buf[f.head] = work{}
	f.head++
	return w
}

// delayedHeap orders deliveries by due time.
type delayedHeap []work

func (h delayedHeap) Len() int           { return len(h) }
func (h delayedHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h delayedHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *delayedHeap) Push(x any)        { *h = append(*h, x.(work)) }
func (h *delayedHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = work{}
	*h = old[:len(old)-1]
	return w
}
