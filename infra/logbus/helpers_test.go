package logbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	_ "github.com/mattn/go-sqlite3"

	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
	"herald/infra/logbus"
)

// waitFor bounds every wait for something that should happen.
const waitFor = 10 * time.Second

// quietFor is how long a test watches for something that must not happen.
const quietFor = 150 * time.Millisecond

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openCheckpointDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newSQLiteCheckpoints(t testing.TB, db *sql.DB) *logbus.SQLiteCheckpoints {
	t.Helper()
	cp, err := logbus.NewSQLiteCheckpoints(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// event returns an event of type typ whose data is {"n":n}.
func event(typ string, n int) eventstore.EventData {
	return eventstore.EventData{
		ID:            uuid.Must(uuid.NewV7()).String(),
		Type:          typ,
		SchemaVersion: 1,
		Data:          fmt.Appendf(nil, `{"n":%d}`, n),
	}
}

func appendEvents(t testing.TB, store eventstore.Store, stream string, evs ...eventstore.EventData) []eventstore.RecordedEvent {
	t.Helper()
	if _, err := store.Append(t.Context(), stream, eventstore.Any, evs...); err != nil {
		t.Fatalf("append to %s: %v", stream, err)
	}
	recorded, err := store.ReadStream(t.Context(), stream, 0, 1<<20)
	if err != nil {
		t.Fatalf("read %s: %v", stream, err)
	}
	return recorded[len(recorded)-len(evs):]
}

func newSubscriber(t testing.TB, store eventstore.Store, cfg logbus.SubscriberConfig) *logbus.Subscriber {
	t.Helper()
	sub, err := logbus.NewSubscriber(store, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

func subscribe(t testing.TB, sub *logbus.Subscriber, ctx context.Context, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := sub.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("subscribe to %s: %v", topic, err)
	}
	return ch
}

// receive returns the next message, failing the test if none comes in time
// or the channel is closed.
func receive(t testing.TB, ch <-chan *message.Message) *message.Message {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case msg, ok := <-ch:
		if !ok {
			t.Fatal("channel closed, want a message")
		}
		return msg
	case <-timer.C:
		t.Fatalf("no message within %s", waitFor)
		return nil
	}
}

// expectQuiet fails if a message arrives within quietFor.
func expectQuiet(t testing.TB, ch <-chan *message.Message) {
	t.Helper()
	timer := time.NewTimer(quietFor)
	defer timer.Stop()
	select {
	case msg, ok := <-ch:
		if ok {
			t.Fatalf("unexpected message %s at position %s", msg.UUID, msg.Metadata.Get(logbus.MetaPosition))
		}
		t.Fatal("channel closed, want it open and quiet")
	case <-timer.C:
	}
}

// expectClosed fails unless ch is closed within waitFor; messages still
// arriving before the close are drained.
func expectClosed(t testing.TB, ch <-chan *message.Message) {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("channel still open after %s", waitFor)
		}
	}
}

// within fails if f does not return within waitFor.
func within(t testing.TB, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("%s did not return within %s", what, waitFor)
	}
}

// eventually polls cond until it holds, failing after waitFor.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, waitFor)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func position(t testing.TB, msg *message.Message) eventstore.Position {
	t.Helper()
	var p uint64
	if _, err := fmt.Sscan(msg.Metadata.Get(logbus.MetaPosition), &p); err != nil {
		t.Fatalf("message %s: position %q: %v", msg.UUID, msg.Metadata.Get(logbus.MetaPosition), err)
	}
	return eventstore.Position(p)
}
