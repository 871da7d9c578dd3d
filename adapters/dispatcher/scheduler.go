package dispatcher

import (
	"cmp"
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
	// address is where the delivery goes, when known (from its plan, or
	// learnt from an attempt): on channels with a cap per address, work
	// without one is not counted against any.
	address string
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
	again   *work  // news that arrived while running
	address string // learnt from an attempt, for the work after it
}

// newScheduler returns a scheduler of channels; limits are their rate
// limits and perAddress their caps on attempts at once to one address
// (missing or 0: none).
func newScheduler(clock func() time.Time, weights LaneWeights, channels []domain.Channel, limits map[domain.Channel]*limiter, perAddress map[domain.Channel]int) *scheduler {
	s := &scheduler{
		clock:    clock,
		weights:  weights,
		channels: make(map[domain.Channel]*channelQueue, len(channels)),
		held:     make(map[string]*held),
		wake:     make(chan struct{}, 1),
	}
	for _, c := range channels {
		s.channels[c] = &channelQueue{signal: make(chan struct{}, 1), limit: limits[c], perAddress: perAddress[c],
			running: map[string]int{}, parked: map[string]*laneSet{}}
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
	q.enqueue(w)
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
			if w, ok := q.take(s.weights); ok {
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
			// Every delivery due went to an address at its cap: wait for
			// one of their attempts to end (release) or for new work.
			q.limit.refund()
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
	q := s.channels[w.channel]
	if q != nil {
		q.release(w, s.weights)
	}
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
	if next.address == "" {
		next.address = cmp.Or(w.address, h.address)
	}
	h.running, h.again = false, nil
	s.placeLocked(q, *next)
}

// learn records the address of a running delivery, which an attempt read
// from the ledger, for the work that follows it (a retry) when that work
// names none: work recovered from a backlog row written before the view
// store kept addresses knows none.
func (s *scheduler) learn(w work, address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.held[w.key()]; h != nil {
		h.address = address
	}
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
			s.channels[w.channel].enqueue(w)
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
		var n [3]int
		for i := range n {
			n[i] = q.lanes[i].len() + q.parkedN[i]
		}
		ready[c] = n
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
	laneSet
	signal chan struct{} // capacity 1: wakes one waiting worker
	limit  *limiter      // nil: unlimited
	// perAddress caps the attempts running at once to one address (0: no
	// cap). Due work taken from a lane while its address is at the cap
	// waits in lanes of that address's own, and goes back to the
	// channel's lanes one at a time as that address's attempts end,
	// picked from its lanes as the channel's are: a receiver that hangs
	// holds at most perAddress of the channel's workers, the others keep
	// delivering to everyone else, and a high-priority delivery to a busy
	// address still overtakes that address's low-priority backlog.
	perAddress int
	running    map[string]int      // attempts under way per capped address
	parked     map[string]*laneSet // per address at its cap
	parkedN    [3]int              // parked work per lane
}

// laneSet is three priority lanes, taken from by smooth weighted round
// robin.
type laneSet struct {
	lanes   [3]fifo
	current [3]int // smooth weighted round robin state
}

func (q *channelQueue) notify() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *channelQueue) ready() int { return q.laneSet.len() }

func (l *laneSet) len() int { return l.lanes[0].len() + l.lanes[1].len() + l.lanes[2].len() }

func (l *laneSet) push(w work) { l.lanes[lane(w.priority)].push(w) }

// take picks the next delivery whose address may start another attempt,
// parking those whose address is at its cap, and counts it running. A pick
// that parks starts nothing and uses up no turn of its lane: a backlog of
// high-priority work for one busy address must not hand the high lane's
// turns to the lower lanes while high-priority work for other addresses
// waits behind it.
func (q *channelQueue) take(weights LaneWeights) (work, bool) {
	for q.ready() > 0 {
		turns := q.current
		w := q.pick(weights)
		if !q.capped(w) {
			return w, true
		}
		if q.running[w.address] < q.perAddress {
			q.running[w.address]++
			return w, true
		}
		q.current = turns
		if i := lane(w.priority); q.lanes[i].len() == 0 {
			q.current[i] = 0 // as pick does for a lane it empties
		}
		q.park(w)
	}
	return work{}, false
}

// enqueue makes w due: in its lane, or parked with the work already
// parked for its address, so that it does not overtake the deliveries to
// that address that fell due before it in its lane.
func (q *channelQueue) enqueue(w work) {
	if q.capped(w) && q.parked[w.address] != nil {
		q.park(w)
		return
	}
	q.push(w)
	q.notify()
}

func (q *channelQueue) park(w work) {
	l := q.parked[w.address]
	if l == nil {
		l = &laneSet{}
		q.parked[w.address] = l
	}
	l.push(w)
	q.parkedN[lane(w.priority)]++
}

func (q *channelQueue) capped(w work) bool { return q.perAddress > 0 && w.address != "" }

// release ends an attempt take counted: its address may start another, and
// the delivery its parked lanes give up next goes back to the channel's.
func (q *channelQueue) release(w work, weights LaneWeights) {
	if !q.capped(w) {
		return
	}
	if n := q.running[w.address] - 1; n > 0 {
		q.running[w.address] = n
	} else {
		delete(q.running, w.address)
	}
	l := q.parked[w.address]
	if l == nil {
		return
	}
	p := l.pick(weights)
	if l.len() == 0 {
		delete(q.parked, w.address)
	}
	q.parkedN[lane(p.priority)]--
	// It waited its turn in the lane once already: at the head, it does
	// not wait a second time behind everything that came since.
	q.lanes[lane(p.priority)].pushFront(p)
	q.notify()
}

// pick takes from the lane that smooth weighted round robin chooses among
// the non-empty ones. The caller made sure one is non-empty.
func (l *laneSet) pick(weights LaneWeights) work {
	best, total := -1, 0
	for i := range l.lanes {
		if l.lanes[i].len() == 0 {
			continue
		}
		l.current[i] += weights[i]
		total += weights[i]
		if best < 0 || l.current[i] > l.current[best] {
			best = i
		}
	}
	l.current[best] -= total
	// A lane that empties forgets its credit, so a burst arriving later
	// does not get a head start over the lanes that kept working.
	w := l.lanes[best].pop()
	if l.lanes[best].len() == 0 {
		l.current[best] = 0
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

// pushFront puts w at the head of the queue.
func (f *fifo) pushFront(w work) {
	if f.head == 0 {
		room := len(f.buf)/2 + 16
		buf := make([]work, room+len(f.buf), room+cap(f.buf))
		copy(buf[room:], f.buf)
		f.buf, f.head = buf, room
	}
	f.head--
	f.buf[f.head] = w
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
