package logbus_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"herald/infra/eventstore/sqlite"
	"herald/infra/logbus"
)

// conformanceFeatures are the watermill features logbus truthfully has; see
// the Conformance section of doc.go for those left off.
func conformanceFeatures() tests.Features {
	return tests.Features{
		ConsumerGroups:                   true,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  true,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: true,
		// The full message counts (50 subscribers reading 5,000 messages
		// each, 10,000 published in parallel) take 30 to 70 s under the
		// race detector on two shared cores; the short counts go through
		// the same code paths in a few seconds. Without -race the suite
		// runs in full unless -short is given.
		ForceShort: raceEnabled,
	}
}

// suiteLogs gives each conformance test its own event log and checkpoint
// database, shared by every Publisher and Subscriber that test constructs,
// so instances see each other's messages as separate processes on one log
// would.
type suiteLogs struct {
	mu     sync.Mutex
	byTest map[string]*suiteLog
}

type suiteLog struct {
	store       *sqlite.Store
	checkpoints *logbus.SQLiteCheckpoints
}

func (l *suiteLogs) get(t *testing.T) *suiteLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lg, ok := l.byTest[t.Name()]; ok {
		return lg
	}
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lg := &suiteLog{
		store:       store,
		checkpoints: newSQLiteCheckpoints(t, openCheckpointDB(t, filepath.Join(dir, "checkpoints.db"))),
	}
	if l.byTest == nil {
		l.byTest = make(map[string]*suiteLog)
	}
	l.byTest[t.Name()] = lg
	return lg
}

func (l *suiteLogs) pubSub(t *testing.T, group string) (message.Publisher, message.Subscriber) {
	lg := l.get(t)
	pub, err := logbus.NewPublisher(lg.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := logbus.NewSubscriber(lg.store, logbus.SubscriberConfig{
		ConsumerGroup: group,
		Checkpoints:   lg.checkpoints,
		// The suite nacks hundreds of times in a row.
		NackResendSleep: 5 * time.Millisecond,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, sub
}

func TestConformance(t *testing.T) {
	logs := &suiteLogs{}
	tests.TestPubSub(t, conformanceFeatures(),
		func(t *testing.T) (message.Publisher, message.Subscriber) { return logs.pubSub(t, "") },
		logs.pubSub,
	)
}

// TestConformanceResumingGroup runs the suite's tests about stopping and
// restarting subscribers with every subscriber in one consumer group, so
// that each new subscriber resumes from the group's checkpoint instead of
// reading the log from the start as TestConformance's do.
func TestConformanceResumingGroup(t *testing.T) {
	logs := &suiteLogs{}
	features := conformanceFeatures()
	// A resuming group does not hand old messages to a new subscriber.
	features.NewSubscriberReceivesOldMessages = false
	inGroup := func(t *testing.T) (message.Publisher, message.Subscriber) { return logs.pubSub(t, "resuming") }
	for name, test := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"ContinueAfterSubscribeClose": tests.TestContinueAfterSubscribeClose,
		"ContinueAfterErrors":         tests.TestContinueAfterErrors,
		"ResendOnError":               tests.TestResendOnError,
		"NoAck":                       tests.TestNoAck,
		"SubscribeCtx":                tests.TestSubscribeCtx,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, inGroup)
		})
	}
}
