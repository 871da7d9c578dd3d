package logbus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"herald/infra/eventstore"
	"herald/infra/logbus"
)

// topicLog appends one event to each of several streams, interleaved, and
// returns them by stream.
func topicLog(t *testing.T, store eventstore.Store) map[string][]eventstore.RecordedEvent {
	t.Helper()
	streams := []string{"notification-a", "notifications-b", "other", "notification", "notification-b", "notificationx", "notification-a-1", "xnotification-c"}
	byStream := map[string][]eventstore.RecordedEvent{}
	for round := 0; round < 2; round++ {
		for i, s := range streams {
			ev := event("Happened", round*100+i)
			ev.Metadata = eventstore.Metadata{CorrelationID: "corr-" + s, CausationID: "cause-" + s, Actor: "actor-" + s}
			byStream[s] = append(byStream[s], appendEvents(t, store, s, ev)...)
		}
	}
	return byStream
}

func TestSubscribeFiltersTopicAndKeepsLogOrder(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	byStream := topicLog(t, store)
	sub := newSubscriber(t, store, logbus.SubscriberConfig{})

	cases := []struct {
		topic   string
		streams []string
	}{
		{"notification", []string{"notification-a", "notification", "notification-b", "notification-a-1"}},
		{"notifications", []string{"notifications-b"}},
		{"other", []string{"other"}},
		{"notification-a", []string{"notification-a", "notification-a-1"}},
		{"xnotification", []string{"xnotification-c"}},
		{"notif", nil},
	}
	for _, tc := range cases {
		t.Run(tc.topic, func(t *testing.T) {
			var want []eventstore.RecordedEvent
			for _, s := range tc.streams {
				want = append(want, byStream[s]...)
			}
			sortByPosition(want)
			ch := subscribe(t, sub, t.Context(), tc.topic)
			for _, w := range want {
				msg := receive(t, ch)
				assertMessageIsEvent(t, msg, w)
				msg.Ack()
			}
			expectQuiet(t, ch)
		})
	}
}

func sortByPosition(evs []eventstore.RecordedEvent) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].Position < evs[j-1].Position; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

func assertMessageIsEvent(t *testing.T, msg *message.Message, ev eventstore.RecordedEvent) {
	t.Helper()
	if msg.UUID != ev.ID {
		t.Errorf("UUID %s, want event id %s (position %d)", msg.UUID, ev.ID, ev.Position)
	}
	if string(msg.Payload) != string(ev.Data) {
		t.Errorf("payload %s, want %s", msg.Payload, ev.Data)
	}
	want := map[string]string{
		logbus.MetaType:          ev.Type,
		logbus.MetaStream:        ev.Stream,
		logbus.MetaVersion:       strconv.FormatUint(ev.Version, 10),
		logbus.MetaPosition:      strconv.FormatUint(uint64(ev.Position), 10),
		logbus.MetaRecordedAt:    ev.RecordedAt.UTC().Format(time.RFC3339Nano),
		logbus.MetaSchemaVersion: strconv.Itoa(ev.SchemaVersion),
		logbus.MetaCorrelationID: ev.Metadata.CorrelationID,
		logbus.MetaCausationID:   ev.Metadata.CausationID,
		logbus.MetaActor:         ev.Metadata.Actor,
	}
	for k, v := range want {
		if got := msg.Metadata.Get(k); got != v {
			t.Errorf("position %d: metadata %s = %q, want %q", ev.Position, k, got, v)
		}
	}
	if at, err := time.Parse(time.RFC3339Nano, msg.Metadata.Get(logbus.MetaRecordedAt)); err != nil || !at.Equal(ev.RecordedAt) {
		t.Errorf("recorded_at %q does not give back %s (%v)", msg.Metadata.Get(logbus.MetaRecordedAt), ev.RecordedAt, err)
	}
}

func TestSubscribeFollowsLiveAppends(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	sub := newSubscriber(t, store, logbus.SubscriberConfig{})
	ch := subscribe(t, sub, t.Context(), "notification")
	expectQuiet(t, ch)
	for i := 0; i < 3; i++ {
		appendEvents(t, store, "other", event("Other", i))
		want := appendEvents(t, store, fmt.Sprintf("notification-%d", i), event("Live", i))[0]
		msg := receive(t, ch)
		assertMessageIsEvent(t, msg, want)
		msg.Ack()
	}
	expectQuiet(t, ch)
}

func TestNextMessageWaitsForAck(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	evs := appendEvents(t, store, "notification-1", event("A", 1), event("B", 2), event("C", 3))
	sub := newSubscriber(t, store, logbus.SubscriberConfig{})
	ch := subscribe(t, sub, t.Context(), "notification")
	for _, ev := range evs {
		msg := receive(t, ch)
		assertMessageIsEvent(t, msg, ev)
		expectQuiet(t, ch)
		select {
		case <-msg.Context().Done():
			t.Fatal("message context ended before the ack")
		default:
		}
		msg.Ack()
		within(t, "message context end after ack", func() { <-msg.Context().Done() })
	}
	expectQuiet(t, ch)
}

func TestNackRedeliversTheSameMessage(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	evs := appendEvents(t, store, "notification-1", event("A", 1), event("B", 2))
	sub := newSubscriber(t, store, logbus.SubscriberConfig{NackResendSleep: time.Millisecond})
	ch := subscribe(t, sub, t.Context(), "notification")

	first := receive(t, ch)
	assertMessageIsEvent(t, first, evs[0])
	first.Nack()
	within(t, "message context end after nack", func() { <-first.Context().Done() })
	for i := 0; i < 3; i++ {
		again := receive(t, ch)
		if again == first {
			t.Fatal("redelivered the nacked *Message itself; a nacked message cannot be acked")
		}
		if !again.Equals(first) {
			t.Fatalf("redelivery %d differs: %s %v %s, want %s %v %s", i, again.UUID, again.Metadata, again.Payload, first.UUID, first.Metadata, first.Payload)
		}
		if i < 2 {
			again.Nack()
		} else {
			again.Ack()
		}
	}
	second := receive(t, ch)
	assertMessageIsEvent(t, second, evs[1])
	second.Ack()
	expectQuiet(t, ch)
}

func TestNackResendSleepDelaysRedelivery(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	appendEvents(t, store, "notification-1", event("A", 1))
	sub := newSubscriber(t, store, logbus.SubscriberConfig{NackResendSleep: time.Hour})
	ch := subscribe(t, sub, t.Context(), "notification")
	receive(t, ch).Nack()
	expectQuiet(t, ch)
	// Close must not wait for the hour.
	within(t, "Close during the nack pause", func() { sub.Close() })
	expectClosed(t, ch)
}

// checkpointStores are the CheckpointStore implementations under test.
func checkpointStores(t *testing.T) map[string]func(t *testing.T) logbus.CheckpointStore {
	return map[string]func(t *testing.T) logbus.CheckpointStore{
		"memory": func(t *testing.T) logbus.CheckpointStore { return &logbus.MemoryCheckpoints{} },
		"sqlite": func(t *testing.T) logbus.CheckpointStore {
			return newSQLiteCheckpoints(t, openCheckpointDB(t, t.TempDir()+"/checkpoints.db"))
		},
	}
}

func TestResumeFromCheckpointAfterClose(t *testing.T) {
	t.Parallel()
	for name, newCheckpoints := range checkpointStores(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := openStore(t)
			cps := newCheckpoints(t)
			var want []eventstore.RecordedEvent
			for i := 0; i < 50; i++ {
				appendEvents(t, store, "other", event("Other", i))
				want = append(want, appendEvents(t, store, fmt.Sprintf("notification-%d", i%7), event("N", i))...)
			}
			cfg := logbus.SubscriberConfig{ConsumerGroup: "dispatcher", Checkpoints: cps, CheckpointInterval: time.Hour}

			// Three subscribers in turn, each stopping with one message
			// received but not acked: together they must see every event
			// once, plus exactly the unacked ones again.
			got := 0
			for _, stopAfter := range []int{20, 17} {
				sub := newSubscriber(t, store, cfg)
				ch := subscribe(t, sub, t.Context(), "notification")
				for i := 0; i < stopAfter; i++ {
					msg := receive(t, ch)
					assertMessageIsEvent(t, msg, want[got])
					msg.Ack()
					got++
				}
				unacked := receive(t, ch)
				assertMessageIsEvent(t, unacked, want[got])
				within(t, "Close", func() { sub.Close() })
				expectClosed(t, ch)
				saved, err := cps.Load(t.Context(), "dispatcher", "notification")
				if err != nil {
					t.Fatal(err)
				}
				// Past the last ack and the other topic's events after
				// it, short of the unacked message.
				if saved < want[got-1].Position || saved >= want[got].Position {
					t.Fatalf("checkpoint %d after close, want in [%d, %d)", saved, want[got-1].Position, want[got].Position)
				}
			}
			sub := newSubscriber(t, store, cfg)
			ch := subscribe(t, sub, t.Context(), "notification")
			for ; got < len(want); got++ {
				msg := receive(t, ch)
				assertMessageIsEvent(t, msg, want[got])
				msg.Ack()
			}
			expectQuiet(t, ch)

			// Another group and another topic have cursors of their own.
			other := newSubscriber(t, store, logbus.SubscriberConfig{ConsumerGroup: "projector", Checkpoints: cps})
			assertMessageIsEvent(t, receive(t, subscribe(t, other, t.Context(), "notification")), want[0])
			sameGroup := newSubscriber(t, store, cfg)
			msg := receive(t, subscribe(t, sameGroup, t.Context(), "other"))
			if msg.Metadata.Get(logbus.MetaStream) != "other" || position(t, msg) != 1 {
				t.Fatalf("topic other starts at %s position %d, want stream other at position 1", msg.Metadata.Get(logbus.MetaStream), position(t, msg))
			}
		})
	}
}

// recordingCheckpoints counts saves, so a test can see when a running
// subscriber saves.
type recordingCheckpoints struct {
	logbus.MemoryCheckpoints
	mu    sync.Mutex
	saves []eventstore.Position
}

func (r *recordingCheckpoints) Save(ctx context.Context, group, topic string, p eventstore.Position) error {
	r.mu.Lock()
	r.saves = append(r.saves, p)
	r.mu.Unlock()
	return r.MemoryCheckpoints.Save(ctx, group, topic, p)
}

func (r *recordingCheckpoints) saved() []eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventstore.Position(nil), r.saves...)
}

// TestCrashRedeliversAtMostTheUnsavedBatch checks the documented window: a
// subscriber that dies without closing loses at most the acks since its
// last save, which it makes every BatchSize acks.
func TestCrashRedeliversAtMostTheUnsavedBatch(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	want := appendEvents(t, store, "notification-1", func() []eventstore.EventData {
		evs := make([]eventstore.EventData, 30)
		for i := range evs {
			evs[i] = event("N", i)
		}
		return evs
	}()...)
	cps := &recordingCheckpoints{}
	cfg := logbus.SubscriberConfig{ConsumerGroup: "g", Checkpoints: cps, BatchSize: 5, CheckpointInterval: time.Hour}

	crashed := newSubscriber(t, store, cfg)
	ch := subscribe(t, crashed, t.Context(), "notification")
	for i := 0; i < 12; i++ {
		receive(t, ch).Ack()
	}
	receive(t, ch) // the 13th is out; the "crash" happens now
	eventually(t, "second batch saved", func() bool { return len(cps.saved()) == 2 })
	if got := cps.saved(); got[0] != want[4].Position || got[1] != want[9].Position {
		t.Fatalf("saves at %v, want after the 5th and 10th acks (%d, %d)", got, want[4].Position, want[9].Position)
	}

	// The process died: its subscriber never closes. Its successor starts
	// from the last save, redelivering acks 11 and 12 and the unacked 13th.
	restarted := newSubscriber(t, store, cfg)
	ch2 := subscribe(t, restarted, t.Context(), "notification")
	for _, ev := range want[10:] {
		msg := receive(t, ch2)
		assertMessageIsEvent(t, msg, ev)
		msg.Ack()
	}
	expectQuiet(t, ch2)
}

func TestCheckpointSavedPeriodicallyWhileIdle(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	evs := appendEvents(t, store, "notification-1", event("A", 1), event("B", 2))
	skipped := appendEvents(t, store, "other", event("O", 3))
	cps := &logbus.MemoryCheckpoints{}
	sub := newSubscriber(t, store, logbus.SubscriberConfig{ConsumerGroup: "g", Checkpoints: cps, CheckpointInterval: 20 * time.Millisecond})
	ch := subscribe(t, sub, t.Context(), "notification")
	for range evs {
		receive(t, ch).Ack()
	}
	// Events of other topics move the checkpoint too, so a restart does
	// not scan them again.
	eventually(t, "checkpoint past the skipped event", func() bool {
		p, err := cps.Load(t.Context(), "g", "notification")
		return err == nil && p == skipped[0].Position
	})
}

func TestCloseDuringBlockedSend(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	appendEvents(t, store, "notification-1", event("A", 1), event("B", 2))
	cps := &logbus.MemoryCheckpoints{}
	sub := newSubscriber(t, store, logbus.SubscriberConfig{ConsumerGroup: "g", Checkpoints: cps})
	ch := subscribe(t, sub, t.Context(), "notification")
	ch2 := subscribe(t, sub, t.Context(), "notification") // a second subscription, also blocked
	// Nobody reads: both subscriptions are blocked sending their first message.
	within(t, "Close", func() {
		if err := sub.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	expectClosed(t, ch)
	expectClosed(t, ch2)
	within(t, "second Close", func() {
		if err := sub.Close(); err != nil {
			t.Errorf("second close: %v", err)
		}
	})
	if _, err := sub.Subscribe(t.Context(), "notification"); !errors.Is(err, logbus.ErrSubscriberClosed) {
		t.Fatalf("subscribe after close: %v, want ErrSubscriberClosed", err)
	}
	if p, _ := cps.Load(t.Context(), "g", "notification"); p != 0 {
		t.Fatalf("checkpoint %d, want 0: nothing was acked", p)
	}
}

func TestCloseWhileAwaitingAck(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	appendEvents(t, store, "notification-1", event("A", 1))
	sub := newSubscriber(t, store, logbus.SubscriberConfig{})
	ch := subscribe(t, sub, t.Context(), "notification")
	msg := receive(t, ch)
	within(t, "Close with a message out", func() { sub.Close() })
	expectClosed(t, ch)
	within(t, "message context end after Close", func() { <-msg.Context().Done() })
}

func TestContextCancelClosesChannel(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	evs := appendEvents(t, store, "notification-1", event("A", 1), event("B", 2))
	cps := &logbus.MemoryCheckpoints{}
	cfg := logbus.SubscriberConfig{ConsumerGroup: "g", Checkpoints: cps}
	sub := newSubscriber(t, store, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	ch := subscribe(t, sub, ctx, "notification")
	receive(t, ch).Ack()
	receive(t, ch) // out, not acked
	cancel()
	expectClosed(t, ch)

	// The subscriber itself lives on; a new subscription resumes after
	// the ack, redelivering the unacked message.
	eventually(t, "checkpoint saved at the end of the subscription", func() bool {
		p, _ := cps.Load(t.Context(), "g", "notification")
		return p == evs[0].Position
	})
	ch2 := subscribe(t, sub, t.Context(), "notification")
	assertMessageIsEvent(t, receive(t, ch2), evs[1])
}

func TestSubscribeWithCancelledContextFails(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	sub := newSubscriber(t, store, logbus.SubscriberConfig{ConsumerGroup: "g", Checkpoints: &logbus.MemoryCheckpoints{}})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := sub.Subscribe(ctx, "notification"); !errors.Is(err, context.Canceled) {
		t.Fatalf("subscribe with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := sub.Subscribe(t.Context(), ""); err == nil {
		t.Fatal("subscribe to an empty topic succeeded")
	}
	within(t, "Close", func() { sub.Close() })
}

func TestStoreClosedEndsSubscription(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	sub := newSubscriber(t, store, logbus.SubscriberConfig{})
	ch := subscribe(t, sub, t.Context(), "notification")
	store.Close()
	expectClosed(t, ch)
	within(t, "Close", func() { sub.Close() })
}

func TestNewSubscriberRejectsBadConfig(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	for _, cfg := range []logbus.SubscriberConfig{
		{BatchSize: -1},
		{CheckpointInterval: -time.Second},
		{SaveTimeout: -time.Second},
	} {
		if _, err := logbus.NewSubscriber(store, cfg, nil); err == nil {
			t.Errorf("NewSubscriber(%+v) succeeded", cfg)
		}
	}
	if _, err := logbus.NewSubscriber(nil, logbus.SubscriberConfig{}, nil); err == nil {
		t.Error("NewSubscriber(nil store) succeeded")
	}
}

// With Types, a subscription delivers only those types; the others are
// passed over like another topic's events, and the checkpoint moves past
// them.
func TestSubscribeTypesPassesOverTheOthers(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	var want []eventstore.RecordedEvent
	var last eventstore.RecordedEvent
	for i := 0; i < 6; i++ {
		stream := fmt.Sprintf("notification-%d", i%2)
		want = append(want, appendEvents(t, store, stream, event("Requested", i))...)
		appendEvents(t, store, stream, event("Planned", i))
		last = appendEvents(t, store, stream, event("Held", i))[0]
	}
	cps := &logbus.MemoryCheckpoints{}
	sub := newSubscriber(t, store, logbus.SubscriberConfig{
		ConsumerGroup: "scheduler", Checkpoints: cps, CheckpointInterval: time.Hour, Types: []string{"Requested", "Nothing"},
	})
	ch := subscribe(t, sub, t.Context(), "notification")
	for _, w := range want {
		msg := receive(t, ch)
		assertMessageIsEvent(t, msg, w)
		msg.Ack()
	}
	expectQuiet(t, ch)
	within(t, "Close", func() { sub.Close() })
	expectClosed(t, ch)
	if saved, err := cps.Load(t.Context(), "scheduler", "notification"); err != nil || saved != last.Position {
		t.Fatalf("checkpoint %d (%v) after close, want %d: past the passed-over types at the end", saved, err, last.Position)
	}
}
