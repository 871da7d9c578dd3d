package logbus_test

import (
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"herald/infra/eventstore"
	"herald/infra/logbus"
)

func newPublisher(t *testing.T, store eventstore.Store) *logbus.Publisher {
	t.Helper()
	pub, err := logbus.NewPublisher(store, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	return pub
}

func TestPublishRoundTrip(t *testing.T) {
	t.Parallel()
	canonical := uuid.Must(uuid.NewV7()).String()
	cases := []struct {
		name     string
		uuid     string
		payload  []byte
		metadata map[string]string
		// plain: the event data must be the payload byte for byte and the
		// event id the UUID.
		plain bool
	}{
		{name: "domain event", uuid: canonical, payload: []byte(`{"schema_version":1,"id":"n-1"}`),
			metadata: map[string]string{logbus.MetaType: "NotificationRequested", logbus.MetaSchemaVersion: "1",
				logbus.MetaCorrelationID: "c", logbus.MetaCausationID: "d", logbus.MetaActor: "api"}, plain: true},
		{name: "json with spacing kept", uuid: uuid.NewString(), payload: []byte(" [1, 2,\n3] "), plain: true},
		{name: "text payload", uuid: uuid.NewString(), payload: []byte("x")},
		{name: "binary payload", uuid: uuid.NewString(), payload: []byte{0, 0xff, 0x1f, '"', '\\'}},
		{name: "empty payload", uuid: uuid.NewString(), payload: []byte{}},
		{name: "nil payload", uuid: uuid.NewString()},
		{name: "json with extra metadata", uuid: uuid.NewString(), payload: []byte(`{"a":"<b>&"}`),
			metadata: map[string]string{"test": "v", "handler_poisoned": "h", "quote\"key": "line\nbreak"}},
		{name: "json with spacing and metadata", uuid: uuid.NewString(), payload: []byte(" {\"a\": 1}\n"),
			metadata: map[string]string{"k": "v"}},
		{name: "json null with metadata", uuid: uuid.NewString(), payload: []byte("null"), metadata: map[string]string{"k": ""}},
		{name: "payload that looks wrapped", uuid: uuid.NewString(), payload: []byte(`{"$logbus":1,"json":{}}`)},
		{name: "short uuid", uuid: "abc", payload: []byte(`{}`)},
		{name: "upper-case uuid", uuid: strings.ToUpper(uuid.NewString()), payload: []byte(`{}`)},
		{name: "braced uuid", uuid: "{" + uuid.NewString() + "}", payload: []byte(`{}`)},
		{name: "empty uuid", uuid: "", payload: []byte(`{}`)},
	}
	store := openStore(t)
	pub := newPublisher(t, store)
	sub := newSubscriber(t, store, logbus.SubscriberConfig{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stream := "roundtrip-" + uuid.NewString()
			msg := message.NewMessage(tc.uuid, tc.payload)
			maps.Copy(msg.Metadata, tc.metadata)
			if err := pub.Publish(stream, msg); err != nil {
				t.Fatal(err)
			}
			stored, err := store.ReadStream(t.Context(), stream, 0, 10)
			if err != nil || len(stored) != 1 {
				t.Fatalf("read back %s: %d events, %v", stream, len(stored), err)
			}
			ev := stored[0]
			if tc.plain != (string(ev.Data) == string(tc.payload) && ev.ID == tc.uuid) {
				t.Errorf("stored as data %q id %s; want plain=%v", ev.Data, ev.ID, tc.plain)
			}
			if _, err := uuid.Parse(ev.ID); err != nil {
				t.Errorf("event id %q is not a UUID", ev.ID)
			}
			wantType := tc.metadata[logbus.MetaType]
			if wantType == "" {
				wantType = logbus.DefaultEventType
			}
			if ev.Type != wantType {
				t.Errorf("event type %q, want %q", ev.Type, wantType)
			}

			got := receive(t, subscribe(t, sub, t.Context(), stream))
			got.Ack()
			if got.UUID != tc.uuid {
				t.Errorf("UUID %q, want %q", got.UUID, tc.uuid)
			}
			if string(got.Payload) != string(tc.payload) {
				t.Errorf("payload %q, want %q", got.Payload, tc.payload)
			}
			for k, v := range tc.metadata {
				if g, ok := got.Metadata[k]; !ok || g != v {
					t.Errorf("metadata %q = %q (present %v), want %q", k, g, ok, v)
				}
			}
			if got.Metadata.Get(logbus.MetaStream) != stream || got.Metadata.Get(logbus.MetaVersion) != "1" {
				t.Errorf("envelope stream %q version %q, want %s 1", got.Metadata.Get(logbus.MetaStream), got.Metadata.Get(logbus.MetaVersion), stream)
			}
		})
	}
}

func TestPublishAppendsAllMessagesInOneAppend(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	pub := newPublisher(t, store)
	msgs := make([]*message.Message, 5)
	for i := range msgs {
		msgs[i] = message.NewMessage(uuid.NewString(), []byte{'0' + byte(i)})
	}
	// A stale envelope from a forwarded message is replaced by the log's.
	msgs[2].Metadata.Set(logbus.MetaPosition, "999")
	msgs[2].Metadata.Set(logbus.MetaStream, "elsewhere")
	if err := pub.Publish("batch-1", msgs...); err != nil {
		t.Fatal(err)
	}
	stored, err := store.ReadStream(t.Context(), "batch-1", 0, 10)
	if err != nil || len(stored) != len(msgs) {
		t.Fatalf("read back: %d events, %v", len(stored), err)
	}
	for i, ev := range stored {
		if ev.ID != msgs[i].UUID || ev.Version != uint64(i+1) || ev.Position != stored[0].Position+eventstore.Position(i) {
			t.Errorf("event %d: id %s version %d position %d; want %s, %d, contiguous", i, ev.ID, ev.Version, ev.Position, msgs[i].UUID, i+1)
		}
	}
	ch := subscribe(t, newSubscriber(t, store, logbus.SubscriberConfig{}), t.Context(), "batch")
	var got *message.Message
	for i := 0; i < 3; i++ {
		got = receive(t, ch)
		got.Ack()
	}
	if got.Metadata.Get(logbus.MetaStream) != "batch-1" || position(t, got) != stored[2].Position {
		t.Errorf("forwarded message got stream %q position %d, want batch-1 %d", got.Metadata.Get(logbus.MetaStream), position(t, got), stored[2].Position)
	}
}

func TestPublishIsAllOrNothing(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	pub := newPublisher(t, store)
	good := message.NewMessage(uuid.NewString(), []byte(`{}`))
	bad := message.NewMessage(uuid.NewString(), []byte(`{}`))
	bad.Metadata.Set(logbus.MetaSchemaVersion, "two")
	badType := message.NewMessage(uuid.NewString(), []byte(`{}`))
	badType.Metadata.Set(logbus.MetaType, "a\x1fb") // the SQLite engine refuses it
	for _, msgs := range [][]*message.Message{{good, bad}, {good, badType}} {
		if err := pub.Publish("notification-1", msgs...); err == nil {
			t.Fatal("publish with an invalid message succeeded")
		}
	}
	if err := pub.Publish("", good); !errors.Is(err, eventstore.ErrInvalidEvent) {
		t.Fatalf("publish to an empty topic: %v, want ErrInvalidEvent", err)
	}
	if head, err := store.Head(t.Context()); err != nil || head != 0 {
		t.Fatalf("head %d (%v), want 0: nothing may be appended", head, err)
	}
}

func TestPublishAfterClose(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	pub := newPublisher(t, store)
	if err := pub.Publish("notification-1"); err != nil {
		t.Fatalf("publish of nothing: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	err := pub.Publish("notification-1", message.NewMessage(uuid.NewString(), []byte(`{}`)))
	if !errors.Is(err, logbus.ErrPublisherClosed) {
		t.Fatalf("publish after close: %v, want ErrPublisherClosed", err)
	}
	// The store stays open for its other users.
	appendEvents(t, store, "notification-1", event("A", 1))
}

func TestCorruptWrapperIsDeliveredAsIs(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	for _, data := range []string{`{"$logbus":9,"json":{}}`, `{"$logbus":"x"}`, `{"$logbus":1,"json":{},"bytes":"eA=="}`} {
		ev := event("Odd", 0)
		ev.Data = []byte(data)
		stored := appendEvents(t, store, "odd-"+uuid.NewString(), ev)[0]
		msg := receive(t, subscribe(t, newSubscriber(t, store, logbus.SubscriberConfig{}), t.Context(), stored.Stream))
		assertMessageIsEvent(t, msg, stored)
	}
}
