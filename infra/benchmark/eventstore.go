package benchmark

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"herald/infra/eventstore"
)

// AppendFigures are the results of an append workload.
type AppendFigures struct {
	Writers      int
	Batch        int
	Events       int
	EventsPerSec float64
	P50, P99     time.Duration
}

func (f AppendFigures) String() string {
	return fmt.Sprintf("bench eventstore_append writers=%d batch=%d events_per_sec=%.0f p50_ms=%.2f p99_ms=%.2f",
		f.Writers, f.Batch, f.EventsPerSec, ms(f.P50), ms(f.P99))
}

// ReadFigures are the results of a $all read workload.
type ReadFigures struct {
	Events       int
	EventsPerSec float64
}

func (f ReadFigures) String() string {
	return fmt.Sprintf("bench eventstore_readall events_per_sec=%.0f", f.EventsPerSec)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// SampleEvent returns an event of about 300 bytes of JSON, shaped like a
// DeliveryAttempted payload, with fresh UUIDv7 ids. It is built by appending
// to a byte slice so that the load generator spends its CPU on the store,
// not on encoding/json.
func SampleEvent() eventstore.EventData {
	id := uuid.Must(uuid.NewV7()).String()
	var tail [8]byte
	_, _ = rand.Read(tail[:])
	b := make([]byte, 0, 320)
	b = append(b, `{"schema_version":1,"notification_id":"`...)
	b = append(b, id...)
	b = append(b, `","delivery_id":"webhook-1","channel":"webhook","address":"https://hooks.example.com/herald/`...)
	b = hex.AppendEncode(b, tail[:])
	b = append(b, `","attempt":1,"attempted_at":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","priority":"normal","category":"billing","metadata":{"order":"A-17","tenant":"acme"},"provider":"default"}`...)
	return eventstore.EventData{
		ID:            id,
		Type:          "DeliveryAttempted",
		SchemaVersion: 1,
		Data:          b,
		Metadata:      eventstore.Metadata{CorrelationID: id, Actor: "bench"},
	}
}

// Append runs writers goroutines, each appending batch events at a time to
// a new stream (UUIDv7 ids) with expected version no-stream, until total
// events have been appended. Every append is durable before it returns.
func Append(ctx context.Context, s eventstore.Store, writers, batch, total int) (AppendFigures, error) {
	perWriter := total / writers / batch
	lat := make([][]time.Duration, writers)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			lat[w] = make([]time.Duration, 0, perWriter)
			evs := make([]eventstore.EventData, batch)
			for i := 0; i < perWriter; i++ {
				for j := range evs {
					evs[j] = SampleEvent()
				}
				stream := "notification-" + uuid.Must(uuid.NewV7()).String()
				t0 := time.Now()
				if _, err := s.Append(ctx, stream, eventstore.NoStream, evs...); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := firstErr.Load().(error); ok {
		return AppendFigures{}, err
	}
	all := flatten(lat)
	n := len(all) * batch
	return AppendFigures{
		Writers: writers, Batch: batch, Events: n,
		EventsPerSec: float64(n) / elapsed.Seconds(),
		P50:          Percentile(all, 0.50),
		P99:          Percentile(all, 0.99),
	}, nil
}

// ReadAll reads the whole $all log in pages of 4096 events.
func ReadAll(ctx context.Context, s eventstore.Store) (ReadFigures, error) {
	start := time.Now()
	var after eventstore.Position
	n := 0
	for {
		evs, err := s.ReadAll(ctx, after, 4096)
		if err != nil {
			return ReadFigures{}, err
		}
		if len(evs) == 0 {
			break
		}
		n += len(evs)
		after = evs[len(evs)-1].Position
	}
	return ReadFigures{Events: n, EventsPerSec: float64(n) / time.Since(start).Seconds()}, nil
}

// Percentile returns the q-quantile of sorted durations.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
