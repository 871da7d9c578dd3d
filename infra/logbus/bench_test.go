package logbus_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"herald/infra/eventstore"
	"herald/infra/logbus"
)

// BenchmarkSubscriberCatchUp measures a subscriber draining a backlog of
// domain-sized events (about 300 bytes of JSON), one ack per message as a
// router would, with checkpoints saved to SQLite. Setup (appending) is not
// timed.
func BenchmarkSubscriberCatchUp(b *testing.B) {
	store := openStore(b)
	data := []byte(`{"schema_version":1,"notification_id":"0197d1c2-7a40-7c3e-9b1a-5f0e2c4d6a8b","channel":"email","priority":"normal","attempt":1,"recipient":{"id":"user-42","email":"ada@example.com"},"pad":"` + strings.Repeat("x", 120) + `"}`)
	const perAppend = 1000
	for done := 0; done < b.N; done += perAppend {
		evs := make([]eventstore.EventData, min(perAppend, b.N-done))
		for i := range evs {
			evs[i] = event("DeliveryAttempted", done+i)
			evs[i].Data = data
		}
		if _, err := store.Append(b.Context(), fmt.Sprintf("notification-%d", done), eventstore.Any, evs...); err != nil {
			b.Fatal(err)
		}
	}
	cps := newSQLiteCheckpoints(b, openCheckpointDB(b, b.TempDir()+"/checkpoints.db"))
	sub := newSubscriber(b, store, logbus.SubscriberConfig{ConsumerGroup: "bench", Checkpoints: cps})

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ch := subscribe(b, sub, b.Context(), "notification")
	for i := 0; i < b.N; i++ {
		msg := <-ch
		msg.Ack()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
}
