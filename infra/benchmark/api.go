package benchmark

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// SendFigures are the results of the api_send workload.
type SendFigures struct {
	// Role names the server's roles when it runs fewer than all of them
	// ("api": intake alone); empty for a whole server.
	Role           string
	Concurrency    int
	Requests       int
	RequestsPerSec float64
	P50, P99       time.Duration
}

func (f SendFigures) String() string {
	role := ""
	if f.Role != "" {
		role = " role=" + f.Role
	}
	return fmt.Sprintf("bench api_send%s concurrency=%d requests_per_sec=%.0f p50_ms=%.2f p99_ms=%.2f",
		role, f.Concurrency, f.RequestsPerSec, ms(f.P50), ms(f.P99))
}

// BatchFigures are the results of the api_batch workload.
type BatchFigures struct {
	// Role is as in SendFigures.
	Role                string
	ItemsPerRequest     int
	Notifications       int
	NotificationsPerSec float64
}

func (f BatchFigures) String() string {
	role := ""
	if f.Role != "" {
		role = " role=" + f.Role
	}
	return fmt.Sprintf("bench api_batch%s items_per_request=%d notifications_per_sec=%.0f", role, f.ItemsPerRequest, f.NotificationsPerSec)
}

// Client returns an HTTP client that keeps enough idle connections open for
// concurrency workers, so the workload measures the server and not TCP
// handshakes.
func Client(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency * 2,
			MaxIdleConnsPerHost: concurrency * 2,
			MaxConnsPerHost:     concurrency * 2,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// appendNotificationBody appends a typical single-channel send to b.
func appendNotificationBody(b []byte, i int) []byte {
	return fmt.Appendf(b, `{"recipient":{"id":"user-%d","webhook_url":"https://hooks.example.com/u/%d"},`+
		`"channels":["webhook"],"content":{"subject":"Your code","body":"Code %06d"},"priority":"normal",`+
		`"category":"security","metadata":{"order":"A-%d"}}`, i%5000, i%5000, i%1000000, i)
}

// Send posts single notifications from concurrency workers for duration and
// reports throughput and latency of the answers (202 expected; any other
// answer fails the workload).
func Send(ctx context.Context, baseURL, apiKey string, concurrency int, duration time.Duration) (SendFigures, error) {
	proto, err := newWireConn(baseURL, apiKey)
	if err != nil {
		return SendFigures{}, err
	}
	var (
		seq      atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	lat := make([][]time.Duration, concurrency)
	deadline := time.Now().Add(duration)
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			conn := proto.fresh()
			defer conn.Close()
			var req []byte
			for time.Now().Before(deadline) && ctx.Err() == nil {
				i := int(seq.Add(1))
				req = appendNotificationBody(req[:0], i)
				t0 := time.Now()
				code, body, err := conn.post(ctx, "/v1/notifications", req)
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("POST /v1/notifications: %d %s", code, body)
				}
				if err != nil {
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
		return SendFigures{}, err
	}
	all := flatten(lat)
	return SendFigures{Concurrency: concurrency, Requests: len(all), RequestsPerSec: float64(len(all)) / elapsed.Seconds(),
		P50: Percentile(all, 0.5), P99: Percentile(all, 0.99)}, nil
}

// Batch posts requests of itemsPerRequest notifications from 2 workers
// until total notifications were accepted.
func Batch(ctx context.Context, baseURL, apiKey string, itemsPerRequest, total int) (BatchFigures, error) {
	proto, err := newWireConn(baseURL, apiKey)
	if err != nil {
		return BatchFigures{}, err
	}
	const workers = 2
	var (
		seq      atomic.Int64
		sent     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := proto.fresh()
			defer conn.Close()
			var b []byte
			for sent.Add(int64(itemsPerRequest)) <= int64(total) && ctx.Err() == nil {
				b = append(b[:0], `{"items":[`...)
				for j := 0; j < itemsPerRequest; j++ {
					if j > 0 {
						b = append(b, ',')
					}
					b = appendNotificationBody(b, int(seq.Add(1)))
				}
				b = append(b, `]}`...)
				code, body, err := conn.post(ctx, "/v1/notifications/batch", b)
				if err == nil && code/100 != 2 {
					err = fmt.Errorf("POST /v1/notifications/batch: %d %.300s", code, body)
				}
				if err == nil && bytes.Contains(body, []byte(`"problem"`)) {
					err = fmt.Errorf("POST /v1/notifications/batch: an item was refused: %.300s", body)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, ok := firstErr.Load().(error); ok {
		return BatchFigures{}, err
	}
	n := total / itemsPerRequest * itemsPerRequest
	return BatchFigures{ItemsPerRequest: itemsPerRequest, Notifications: n, NotificationsPerSec: float64(n) / elapsed.Seconds()}, nil
}

func flatten(lat [][]time.Duration) []time.Duration {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all
}
