package sqlite

import (
	"sync"

	"herald/infra/eventstore"
)

// tail holds the events this Store's writer committed last, in position
// order with no gaps, so that the followers of the log — in one Herald
// process the projections, the send counter, the scheduler, the template
// index, fan-out and recurring sends all read the same new events moments
// after their commit — copy them from memory instead of each asking SQLite
// for the same rows.
//
// It only ever holds a contiguous run of positions: when another process
// sharing the file commits, the writer empties it (it could not fill the
// other process's positions), and ReadAll answers from SQLite whenever the
// events asked for do not all start inside the run.
//
// Readers share the events' Data: RecordedEvent.Data is read-only for
// everyone, as the port says.
type tail struct {
	mu    sync.RWMutex
	max   int
	evs   []eventstore.RecordedEvent // evs[i].Position == evs[0].Position + i
	first eventstore.Position        // evs[0].Position, when evs is not empty
}

func newTail(max int) *tail { return &tail{max: max} }

// add appends committed events, which must have consecutive positions
// (otherwise the tail is emptied) and follow the last one held (otherwise
// the run starts over with them).
func (t *tail) add(evs []eventstore.RecordedEvent) {
	if t.max <= 0 || len(evs) == 0 {
		return
	}
	for i := range evs {
		if evs[i].Position != evs[0].Position+eventstore.Position(i) {
			t.reset() // never index a run with a hole in it
			return
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.evs) > 0 && evs[0].Position != t.first+eventstore.Position(len(t.evs)) {
		t.evs = t.evs[:0]
	}
	if len(evs) >= t.max {
		evs = evs[len(evs)-t.max:]
		t.evs = t.evs[:0]
	}
	if over := len(t.evs) + len(evs) - t.max; over > 0 {
		// Drop the oldest quarter (at least what is needed) in one move,
		// not a few events on every commit.
		drop := min(len(t.evs), max(over, t.max/4))
		n := copy(t.evs, t.evs[drop:])
		clear(t.evs[n:])
		t.evs = t.evs[:n]
	}
	t.evs = append(t.evs, evs...)
	t.first = t.evs[0].Position
}

// reset forgets every event held.
func (t *tail) reset() {
	t.mu.Lock()
	clear(t.evs)
	t.evs = t.evs[:0]
	t.mu.Unlock()
}

// read returns up to limit events after position after, and true, when the
// first of them is held; otherwise false (the caller reads SQLite).
func (t *tail) read(after eventstore.Position, limit int) ([]eventstore.RecordedEvent, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if len(t.evs) == 0 || after+1 < t.first {
		return nil, false
	}
	i := int(after + 1 - t.first)
	if i >= len(t.evs) {
		return nil, false // past what we hold: another process may have written more
	}
	n := min(limit, len(t.evs)-i)
	out := make([]eventstore.RecordedEvent, n)
	copy(out, t.evs[i:i+n])
	return out, true
}

// holdsUpTo reports whether the last event held is at position pos: a
// reader that has read up to there has read everything this Store's writer
// committed so far.
func (t *tail) holdsUpTo(pos eventstore.Position) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.evs) > 0 && t.first+eventstore.Position(len(t.evs)-1) == pos
}
