package livefeed_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// BenchmarkLiveFeed connects 1,000 SSE clients (one recipient each) over
// loopback HTTP and appends in-app notifications for random ones of those
// recipients to a real SQLite log: per chunk, one AppendMany of requests
// and plans, then one of attempts and successes. It reports the messages
// per second the clients received and the latency from just before the
// success's append to its receipt (p50, p99). At most a window of
// messages is unreceived at any time, so the latency is the pipeline's,
// not a queue growing for the whole run.
func BenchmarkLiveFeed(b *testing.B) {
	const (
		clients = 1000
		chunk   = 250
		window  = 4 * chunk
	)
	f := newFixture(b, fixtureConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		received  atomic.Int64
		mu        sync.Mutex
		latencies []time.Duration
		readers   sync.WaitGroup
	)
	for i := range clients {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.streamURL(benchRecipient(i)), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer resp.Body.Close()
			own := benchRead(resp, &received)
			mu.Lock()
			latencies = append(latencies, own...)
			mu.Unlock()
		}()
	}
	if st := f.hub.Stats(); st.Clients != clients {
		b.Fatalf("%d clients connected, want %d", st.Clients, clients)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	var sent int64
	reqs := make([]eventstore.AppendRequest, chunk)
	start := time.Now()
	for b.Loop() {
		waitReceived(b, &received, sent-window+chunk)
		ids := make([]domain.NotificationID, chunk)
		for i := range chunk {
			ids[i] = domain.NotificationID(fmt.Sprintf("b-%d", sent+int64(i)))
			req := inAppRequest(benchRecipient(rng.IntN(clients)), string(ids[i]))
			reqs[i] = eventstore.AppendRequest{Stream: domain.NotificationStream(ids[i]), Expected: eventstore.NoStream,
				Events: benchData(b, requestEvents(ids[i], req, domain.ChannelInApp, base))}
		}
		benchAppend(b, f, reqs)
		now := time.Now()
		for i := range chunk {
			reqs[i] = eventstore.AppendRequest{Stream: domain.NotificationStream(ids[i]), Expected: eventstore.Exactly(2),
				Events: benchData(b, successEvents(inapp1, true, now))}
		}
		benchAppend(b, f, reqs)
		sent += chunk
	}
	waitReceived(b, &received, sent)
	elapsed := time.Since(start)
	st := f.hub.Stats()
	cancel()
	readers.Wait()
	if got := received.Load(); got != sent || st.DroppedClients != 0 {
		b.Fatalf("received %d of %d messages, %d clients dropped", got, sent, st.DroppedClients)
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(st.StreamLoads), "stream-loads")
}

// waitReceived polls until the clients have received n messages, and
// fails the benchmark if they do not within the test wait.
func waitReceived(b *testing.B, received *atomic.Int64, n int64) {
	if received.Load() >= n {
		return
	}
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	for received.Load() < n {
		if time.Now().After(deadline) {
			b.Fatalf("clients received %d messages, want %d", received.Load(), n)
		}
		<-tick.C
	}
}

func benchRecipient(i int) string { return fmt.Sprintf("bench-%04d", i) }

func benchData(b *testing.B, evs []domain.Event) []eventstore.EventData {
	out := make([]eventstore.EventData, len(evs))
	for i, e := range evs {
		out[i] = eventData(b, e)
	}
	return out
}

func benchAppend(b *testing.B, f *fixture, reqs []eventstore.AppendRequest) {
	_, errs := f.log.AppendMany(context.Background(), reqs)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

var updatedAtField = []byte(`"updated_at":"`)

// benchRead reads an SSE stream until it ends, counting inbox messages
// and returning their latencies (receipt minus the item's updated_at,
// which the benchmark sets to the time of the success's append).
func benchRead(resp *http.Response, received *atomic.Int64) []time.Duration {
	var lat []time.Duration
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return lat
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue
		}
		now := time.Now()
		received.Add(1)
		_, rest, ok := bytes.Cut(data, updatedAtField)
		if !ok {
			continue
		}
		if end := bytes.IndexByte(rest, '"'); end > 0 {
			if at, err := time.Parse(time.RFC3339Nano, string(rest[:end])); err == nil {
				lat = append(lat, now.Sub(at))
			}
		}
	}
}
