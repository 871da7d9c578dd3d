package benchmark

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/readapi/livefeed"
)

// InAppFigures are the results of the inapp_push workload.
type InAppFigures struct {
	Clients        int
	Messages       int
	MessagesPerSec float64
	P50, P99       time.Duration
	Dropped        int
}

func (f InAppFigures) String() string {
	return fmt.Sprintf("bench inapp_push clients=%d messages_per_sec=%.0f p99_ms=%.2f", f.Clients, f.MessagesPerSec, ms(f.P99))
}

// InAppPush connects clients SSE clients (one recipient each) over loopback
// HTTP to a live-feed hub following log, then appends in-app notifications
// to random ones of those recipients for duration — per chunk of 250, one
// AppendMany of requests and plans, then one of attempts and successes,
// as the dispatcher would, from inAppProducers goroutines at once — and
// reports the messages per second the clients received and the latency
// from just before the success's append to its receipt. At most four
// chunks are unreceived at a time, so the latency is the pipeline's, not a
// queue growing for the whole run.
func InAppPush(ctx context.Context, log eventstore.Store, clients int, duration time.Duration) (InAppFigures, error) {
	const chunk, window = 250, 4 * 250
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hub, err := livefeed.NewHub(log, livefeed.Options{MaxClients: clients * 2})
	if err != nil {
		return InAppFigures{}, err
	}
	hubDone := make(chan error, 1)
	go func() { hubDone <- hub.Run(ctx) }()
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/v1/recipients/{id}/stream", livefeed.Handler(hub))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return InAppFigures{}, err
	}
	srv := &http.Server{Handler: r}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	httpc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}}
	var (
		received atomic.Int64
		mu       sync.Mutex
		lat      []time.Duration
		readers  sync.WaitGroup
	)
	recipient := func(i int) string { return fmt.Sprintf("bench-%04d", i) }
	for i := range clients {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ln.Addr().String()+"/v1/recipients/"+recipient(i)+"/stream", nil)
		resp, err := httpc.Do(req)
		if err != nil {
			return InAppFigures{}, fmt.Errorf("client %d: %w", i, err)
		}
		readers.Add(1)
		go func() {
			defer readers.Done()
			defer resp.Body.Close()
			own := readSSE(resp, &received)
			mu.Lock()
			lat = append(lat, own...)
			mu.Unlock()
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); hub.Stats().Clients < clients; {
		if time.Now().After(deadline) {
			return InAppFigures{}, fmt.Errorf("only %d of %d clients connected", hub.Stats().Clients, clients)
		}
		time.Sleep(time.Millisecond)
	}

	inapp := domain.DeliveryID("inapp-1")
	encode := func(evs ...domain.Event) ([]eventstore.EventData, error) {
		out := make([]eventstore.EventData, len(evs))
		for i, e := range evs {
			typ, data, err := domain.MarshalEvent(e)
			if err != nil {
				return nil, err
			}
			out[i] = eventstore.EventData{ID: newUUID(), Type: typ, SchemaVersion: domain.EventSchemaVersion, Data: data}
		}
		return out, nil
	}
	// One producer's chunk: requests and plans in one AppendMany, then
	// attempts and successes in another, as one dispatcher worker would.
	produce := func(rng *rand.Rand, reqs []eventstore.AppendRequest, first int64) error {
		ids := make([]domain.NotificationID, chunk)
		now := time.Now().UTC()
		for i := range chunk {
			ids[i] = domain.NotificationID(fmt.Sprintf("inapp-%d-%d", now.UnixNano(), first+int64(i)))
			to := recipient(rng.IntN(clients))
			req := domain.NotificationRequest{Recipient: domain.Recipient{ID: to}, Channels: []domain.Channel{domain.ChannelInApp},
				Content: &domain.Content{Subject: "Hello", Body: "In-app message " + string(ids[i])}}
			evs, err := encode(
				domain.NotificationRequested{NotificationID: ids[i], Request: req.Normalized(), RequestedAt: now},
				domain.DeliveryPlanned{DeliveryID: inapp, Channel: domain.ChannelInApp, Address: to, PlannedAt: now})
			if err != nil {
				return err
			}
			reqs[i] = eventstore.AppendRequest{Stream: domain.NotificationStream(ids[i]), Expected: eventstore.NoStream, Events: evs}
		}
		if err := appendAll(ctx, log, reqs); err != nil {
			return err
		}
		now = time.Now().UTC()
		for i := range chunk {
			evs, err := encode(
				domain.DeliveryAttempted{DeliveryID: inapp, Attempt: 1, AttemptedAt: now},
				domain.DeliverySucceeded{DeliveryID: inapp, Attempt: 1, Confirmed: true, SucceededAt: now})
			if err != nil {
				return err
			}
			reqs[i] = eventstore.AppendRequest{Stream: domain.NotificationStream(ids[i]), Expected: eventstore.Exactly(2), Events: evs}
		}
		return appendAll(ctx, log, reqs)
	}
	// Several producers, as several dispatcher workers record outcomes at
	// once: one alone waited out two durable commits per chunk and left
	// the hub idle in between (123% of two cores busy in a profile).
	var (
		next      atomic.Int64 // first message number of the next chunk
		sentTotal atomic.Int64 // messages whose chunk is appended
		perr      error
		errOnce   sync.Once
		producers sync.WaitGroup
	)
	start := time.Now()
	for p := range inAppProducers {
		producers.Go(func() {
			rng := rand.New(rand.NewPCG(1, uint64(p)))
			reqs := make([]eventstore.AppendRequest, chunk)
			for time.Since(start) < duration && ctx.Err() == nil {
				first := next.Add(chunk) - chunk
				err := waitFor(ctx, &received, first-window+chunk)
				if err == nil {
					err = produce(rng, reqs, first)
				}
				if err != nil {
					errOnce.Do(func() { perr = err; cancel() })
					return
				}
				sentTotal.Add(chunk)
			}
		})
	}
	producers.Wait()
	if perr != nil {
		return InAppFigures{}, perr
	}
	sent := sentTotal.Load()
	if err := waitFor(ctx, &received, sent); err != nil {
		return InAppFigures{}, err
	}
	elapsed := time.Since(start)
	st := hub.Stats()
	cancel()
	readers.Wait()
	<-hubDone
	slices.Sort(lat)
	return InAppFigures{Clients: clients, Messages: int(sent), MessagesPerSec: float64(sent) / elapsed.Seconds(),
		P50: Percentile(lat, 0.5), P99: Percentile(lat, 0.99), Dropped: int(st.DroppedClients)}, nil
}

// inAppProducers is how many goroutines append chunks at once.
const inAppProducers = 4

func appendAll(ctx context.Context, log eventstore.Store, reqs []eventstore.AppendRequest) error {
	_, errs := log.AppendMany(ctx, reqs)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitFor polls until the clients have received n messages (30 s at most).
func waitFor(ctx context.Context, received *atomic.Int64, n int64) error {
	deadline := time.Now().Add(30 * time.Second)
	for received.Load() < n {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("clients received %d messages, want %d", received.Load(), n)
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}

var updatedAt = []byte(`"updated_at":"`)

// readSSE reads a stream until it ends, counting data lines and returning
// their latency (receipt minus the item's updated_at, the success's time).
func readSSE(resp *http.Response, received *atomic.Int64) []time.Duration {
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
		if _, rest, ok := bytes.Cut(data, updatedAt); ok {
			if end := bytes.IndexByte(rest, '"'); end > 0 {
				if at, err := time.Parse(time.RFC3339Nano, string(rest[:end])); err == nil {
					lat = append(lat, now.Sub(at))
				}
			}
		}
	}
}

func newUUID() string { return uuid.Must(uuid.NewV7()).String() }
