package projections

import (
	"context"
	"sync"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// Event is a recorded event of a notification stream with its domain event
// decoded: what every projection reads of it.
type Event struct {
	Position eventstore.Position
	// StreamVersion is the event's version in its stream; 1 is the first
	// event, so a projection knows it holds nothing yet for that stream.
	StreamVersion uint64
	RecordedAt    time.Time
	Notification  domain.NotificationID
	Event         domain.Event
}

// Batch is a run of log events, decoded once however many projections
// apply it. Decoding the JSON of every event once per projection was the
// largest single cost of catching up (three projections, three decodes:
// 6.3 s of 20.8 s of projection CPU in a rebuild of 300,000 events).
//
// A Batch read from the log as "every event after position after" (see
// NewLogPage) also lets the projections share the notification states they
// compute (Fold): every projection holds, for each notification, the state
// folded from the log up to its checkpoint (nothing while the notification
// does not exist), so two projections applying the same page from the same
// checkpoint start from and arrive at the same states. The first one loads
// and evolves them; the others only write. (Were a
// projection's stored states ever to disagree with the log, say written by
// an older domain, sharing would make it continue from the states the
// current domain gives, as a rebuild would.) A Batch and the values it hands
// out must not be modified.
type Batch struct {
	events []eventstore.RecordedEvent
	after  eventstore.Position
	page   bool

	once    sync.Once
	decoded []Event

	groupOnce sync.Once
	groups    []Stream

	mu    sync.Mutex
	folds map[domain.NotificationID]*Fold

	folding sync.Mutex // see LockFolds
}

// NewBatch returns a Batch of events in log order, with no claim about the
// events around them: stores apply it as they apply events.
func NewBatch(events []eventstore.RecordedEvent) *Batch {
	return &Batch{events: events}
}

// NewLogPage returns a Batch of events that are every event the log holds
// after position after, up to the last of them, in log order.
func NewLogPage(after eventstore.Position, events []eventstore.RecordedEvent) *Batch {
	return &Batch{events: events, after: after, page: true}
}

// Records returns the batch's events as recorded.
func (b *Batch) Records() []eventstore.RecordedEvent { return b.events }

// Page returns the position the batch was read after, and false when it is
// not a page of the log (NewBatch).
func (b *Batch) Page() (after eventstore.Position, ok bool) { return b.after, b.page }

// Last returns the position of the batch's last event (0 when empty).
func (b *Batch) Last() eventstore.Position {
	if len(b.events) == 0 {
		return 0
	}
	return b.events[len(b.events)-1].Position
}

// Decoded returns the events of notification streams decoded, in log
// order, without those DecodeNotificationEvent skips. It decodes on the
// first call; it is safe for concurrent use.
func (b *Batch) Decoded() []Event {
	b.once.Do(func() {
		out := make([]Event, 0, len(b.events))
		for i := range b.events {
			rec := &b.events[i]
			id, ev, ok := DecodeNotificationEvent(*rec)
			if !ok {
				continue
			}
			out = append(out, Event{Position: rec.Position, StreamVersion: rec.Version,
				RecordedAt: rec.RecordedAt, Notification: id, Event: ev})
		}
		b.decoded = out
	})
	return b.decoded
}

// Stream is the events of one notification in a batch, in log order.
type Stream struct {
	Notification domain.NotificationID
	Events       []Event
}

// Streams groups events by notification, in order of first appearance.
func Streams(events []Event) []Stream {
	var out []Stream
	at := map[domain.NotificationID]int{}
	for _, e := range events {
		i, seen := at[e.Notification]
		if !seen {
			i = len(out)
			at[e.Notification] = i
			out = append(out, Stream{Notification: e.Notification})
		}
		out[i].Events = append(out[i].Events, e)
	}
	return out
}

// Streams returns Streams(b.Decoded()), grouping once for every projection.
func (b *Batch) Streams() []Stream {
	b.groupOnce.Do(func() { b.groups = Streams(b.Decoded()) })
	return b.groups
}

// Fold is one notification's state before a page and after it, as the
// first projection to apply the page computed it.
type Fold struct {
	Before, After domain.Notification
}

// LockFolds lets one projection at a time compute and share its folds of
// the page, and returns the unlock. The projections following the live
// feed receive a batch at the same moment: resolving at once, each missed
// the folds the others were computing and computed all of them itself.
// Under the lock the first computes them and the others take them.
func (b *Batch) LockFolds() (unlock func()) {
	if !b.page {
		return func() {}
	}
	b.folding.Lock()
	return b.folding.Unlock
}

// SharedFold returns the fold of notification id another projection left,
// if any. Only a projection whose checkpoint is the page's After may use
// it: its states are then the ones the fold started from.
func (b *Batch) SharedFold(id domain.NotificationID) (*Fold, bool) {
	if !b.page {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, ok := b.folds[id]
	return f, ok
}

// ShareFold records the fold of id a projection at the page's After
// computed, and returns the fold to use: the first one recorded.
func (b *Batch) ShareFold(id domain.NotificationID, before, after domain.Notification) *Fold {
	f := &Fold{Before: before, After: after}
	if !b.page {
		return f
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if old, ok := b.folds[id]; ok {
		return old
	}
	if b.folds == nil {
		b.folds = map[domain.NotificationID]*Fold{}
	}
	b.folds[id] = f
	return f
}

// BatchStore is a Store that applies a Batch. The Runner uses it when the
// store has it, so that each event is decoded once for every projection;
// ApplyBatch must give exactly what Apply(ctx, projection,
// batch.Records(), checkpoint) gives.
type BatchStore interface {
	ApplyBatch(ctx context.Context, projection string, batch *Batch, checkpoint eventstore.Position) error
}
