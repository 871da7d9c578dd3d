package dispatcher

import (
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"herald/domain"
)

// intakeTopic is the event log topic the dispatcher follows: every
// notification stream.
const intakeTopic = "notification"

// metaEventType is the metadata key under which the log subscriber puts
// the event type (logbus.MetaType; a test holds the two equal).
const metaEventType = "type"

// priorityCacheSize bounds the notifications whose priority the intake
// remembers, those of high and low priority (a ring, oldest forgotten
// first). Planning events carry the priority when it is not normal, so the
// cache only matters for retries, for events written before planning
// events carried it, and for a retry seen after a restart of a
// notification requested long before; those fall back to the normal lane
// for their first attempt, and the attempt, which loads the notification,
// re-queues any retry in the right one.
const priorityCacheSize = 1 << 18

// intake turns the log's notification events into work: a planned
// delivery, a resend and a scheduled retry each queue a delivery. Events
// about attempts and outcomes need nothing: the lanes learn an attempt's
// verdict from the attempt itself.
type intake struct {
	sched   *scheduler
	logger  *slog.Logger
	metrics dispatcherMetrics

	mu         sync.Mutex
	priorities map[domain.NotificationID]domain.Priority
	order      []domain.NotificationID // ring, for eviction
	next       int
}

func newIntake(s *scheduler, logger *slog.Logger, m dispatcherMetrics) *intake {
	return &intake{sched: s, logger: logger, metrics: m, priorities: make(map[domain.NotificationID]domain.Priority)}
}

// Types are the event types the intake reads from what Config.Follow gives
// it; a subscription may leave the others out (logbus.SubscriberConfig.Types).
func Types() []string { return slices.Clone(intakeTypes) }

var intakeTypes = []string{domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeResendRequested, domain.TypeDeliveryRetryScheduled}

// handle is the router handler of the intake. An event it cannot decode is
// logged and skipped: it is the ledger's, and the dispatcher must not stall
// on it.
func (in *intake) handle(msg *message.Message) error {
	typ := msg.Metadata.Get(metaEventType)
	if !slices.Contains(intakeTypes, typ) {
		return nil
	}
	stream := msg.Metadata.Get("stream")
	id, ok := strings.CutPrefix(stream, domain.NotificationStream(""))
	if !ok {
		return nil
	}
	nid := domain.NotificationID(id)
	if typ == domain.TypeNotificationRequested {
		// Only the lane: decoding the whole request was the largest part
		// of the intake's work.
		p, err := domain.RequestedPriority(msg.Payload)
		if err != nil {
			in.logger.Error("dispatcher intake: undecodable event skipped", "stream", stream, "type", typ, "err", err)
			return nil
		}
		in.remember(nid, p)
		return nil
	}
	e, err := domain.UnmarshalEvent(typ, msg.Payload)
	if err != nil {
		in.logger.Error("dispatcher intake: undecodable event skipped", "stream", stream, "type", typ, "err", err)
		return nil
	}
	switch ev := e.(type) {
	case domain.DeliveryPlanned:
		in.queue(work{notification: nid, delivery: ev.DeliveryID, channel: ev.Channel, priority: in.priorityOr(nid, ev.Priority),
			address: ev.Address})
	case domain.ResendRequested:
		for _, r := range ev.Deliveries {
			in.queue(work{notification: nid, delivery: r.DeliveryID, channel: r.Channel, priority: in.priorityOr(nid, ev.Priority),
				address: r.Address})
		}
	case domain.DeliveryRetryScheduled:
		in.queue(work{notification: nid, delivery: ev.DeliveryID, channel: channelOf(ev.DeliveryID), priority: in.priority(nid), due: ev.DueAt})
	}
	return nil
}

func (in *intake) queue(w work) {
	if !in.sched.add(w) {
		in.metrics.unroutable.WithLabelValues(string(w.channel)).Inc()
	}
}

// channelOf reads the channel out of a delivery id, "<channel>-<n>".
func channelOf(id domain.DeliveryID) domain.Channel {
	s := string(id)
	if i := strings.LastIndexByte(s, '-'); i > 0 {
		return domain.Channel(s[:i])
	}
	return ""
}

// remember keeps the priority of a notification that is not normal (the
// one priority answers for a notification it does not know): most are
// normal, and the cache then holds only the few that are not, instead of
// a map entry for every notification seen lately (262,144 of them, live
// heap that every garbage collection marked).
func (in *intake) remember(id domain.NotificationID, p domain.Priority) {
	if p == "" || p == domain.PriorityNormal {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.priorities[id]; ok {
		return
	}
	if len(in.order) < priorityCacheSize {
		in.order = append(in.order, id)
	} else {
		delete(in.priorities, in.order[in.next])
		in.order[in.next] = id
		in.next = (in.next + 1) % priorityCacheSize
	}
	in.priorities[id] = p
}

// priorityOr is p, the priority a planning event carries, or, when it
// carries none (normal, or an event written before they carried it), the
// one remembered.
func (in *intake) priorityOr(id domain.NotificationID, p domain.Priority) domain.Priority {
	if p != "" {
		return p
	}
	return in.priority(id)
}

func (in *intake) priority(id domain.NotificationID) domain.Priority {
	in.mu.Lock()
	defer in.mu.Unlock()
	if p, ok := in.priorities[id]; ok {
		return p
	}
	return domain.PriorityNormal
}
