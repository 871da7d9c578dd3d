package benchmark

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"herald/projections"
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
	// Elapsed is from the first batch sent to the last answered.
	Elapsed time.Duration
	// Views is true once WaitForViews has filled in the figures below.
	// NotificationsPerSec counts intake only: the projections follow the
	// log as fast as the cores left to them allow, and a burst can leave
	// them behind.
	Views bool
	// ViewsLagEvents is how many events the projection furthest behind
	// had still to apply when the last batch was answered.
	ViewsLagEvents uint64
	// ViewsCaughtUp is how long after that every projection had applied
	// the whole log, and ViewsNotificationsPerSec the rate of the burst
	// counted until then: intake and views both done.
	ViewsCaughtUp            time.Duration
	ViewsNotificationsPerSec float64
}

func (f BatchFigures) String() string {
	role := ""
	if f.Role != "" {
		role = " role=" + f.Role
	}
	views := ""
	if f.Views {
		views = fmt.Sprintf(" views_lag_events=%d views_caught_up_ms=%.0f with_views_notifications_per_sec=%.0f",
			f.ViewsLagEvents, ms(f.ViewsCaughtUp), f.ViewsNotificationsPerSec)
	}
	return fmt.Sprintf("bench api_batch%s items_per_request=%d notifications_per_sec=%.0f%s", role, f.ItemsPerRequest, f.NotificationsPerSec, views)
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
	return BatchFigures{ItemsPerRequest: itemsPerRequest, Notifications: n, NotificationsPerSec: float64(n) / elapsed.Seconds(), Elapsed: elapsed}, nil
}

// WaitForViews is called right after Batch, against a server that runs
// the projections: it reads their status (GET /v1/admin/projections) until
// every one has applied the whole log, and fills in the Views figures.
func (f *BatchFigures) WaitForViews(ctx context.Context, baseURL, apiKey string) error {
	c := Client(1)
	defer c.CloseIdleConnections()
	began := time.Now()
	deadline := began.Add(2 * time.Minute)
	for first := true; ; first = false {
		lag, err := projectionsBehind(ctx, c, baseURL, apiKey)
		if err != nil {
			return err
		}
		if first {
			f.Views, f.ViewsLagEvents = true, lag
		}
		if lag == 0 {
			f.ViewsCaughtUp = time.Since(began)
			f.ViewsNotificationsPerSec = float64(f.Notifications) / (f.Elapsed + f.ViewsCaughtUp).Seconds()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the projections are still %d events behind 2 minutes after the last batch", lag)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// projectionsBehind returns the lag of the projection furthest behind.
func projectionsBehind(ctx context.Context, c *http.Client, baseURL, apiKey string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/admin/projections", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/admin/projections: %s", resp.Status)
	}
	var st struct {
		Projections []projections.ProjectionStatus `json:"projections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return 0, fmt.Errorf("GET /v1/admin/projections: %w", err)
	}
	if len(st.Projections) == 0 {
		return 0, errors.New("GET /v1/admin/projections: no projections")
	}
	var lag uint64
	for _, p := range st.Projections {
		lag = max(lag, p.LagEvents)
	}
	return lag, nil
}

func flatten(lat [][]time.Duration) []time.Duration {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return all
}
