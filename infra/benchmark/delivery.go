package benchmark

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DeliveryFigures are the results of an e2e_webhook workload: from the send
// request to the call's arrival at a local HTTP sink.
type DeliveryFigures struct {
	Rate            int // offered notifications/s; 0 means as fast as it goes
	Delivered       int
	DeliveredPerSec float64
	P50, P99        time.Duration
	Duplicates      int // calls repeating a webhook-id already received
	Undelivered     int // accepted but not arrived when the wait ended
}

func (f DeliveryFigures) String() string {
	rate := "max"
	if f.Rate > 0 {
		rate = fmt.Sprint(f.Rate)
	}
	return fmt.Sprintf("bench e2e_webhook rate=%s delivered_per_sec=%.0f p50_ms=%.2f p99_ms=%.2f",
		rate, f.DeliveredPerSec, ms(f.P50), ms(f.P99))
}

// Sink is a webhook receiver on loopback that notes when each delivery
// (webhook-id) first arrives.
type Sink struct {
	URL     string
	srv     *http.Server
	mu      sync.Mutex
	arrived map[string]time.Time
	dups    atomic.Int64
}

// NewSink starts a sink on 127.0.0.1.
func NewSink() (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{URL: "http://" + ln.Addr().String(), arrived: make(map[string]time.Time, 1<<16)}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		id := r.Header.Get("webhook-id")
		s.mu.Lock()
		if _, ok := s.arrived[id]; ok {
			s.dups.Add(1)
		} else {
			s.arrived[id] = now
		}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }

func (s *Sink) arrival(id string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.arrived[id]
	return t, ok
}

// E2EWebhook sends single webhook notifications addressed to sink for
// duration — at rate per second, or as fast as 64 workers go when rate is
// 0 — then waits (up to wait) for every accepted one to arrive, and reports
// deliveries per second (over the time from the first send to the last
// arrival) and the send-to-arrival latency.
func E2EWebhook(ctx context.Context, baseURL, apiKey string, sink *Sink, rate int, duration, wait time.Duration) (DeliveryFigures, error) {
	proto, err := newWireConn(baseURL, apiKey)
	if err != nil {
		return DeliveryFigures{}, err
	}
	const workers = 64
	type sent struct {
		key string
		at  time.Time
	}
	var (
		mu       sync.Mutex
		all      []sent
		seq      atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	tokens := make(chan struct{}, workers)
	start := time.Now()
	deadline := start.Add(duration)
	if rate > 0 {
		go func() {
			// Open loop: the offered rate does not slow down when the
			// server does (up to the workers' capacity).
			interval := time.Second / time.Duration(rate)
			next := start
			for time.Now().Before(deadline) && ctx.Err() == nil {
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				}
				select {
				case tokens <- struct{}{}:
				default: // workers saturated: the send is late, not skipped
					tokens <- struct{}{}
				}
			}
			close(tokens)
		}()
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := proto.fresh()
			defer conn.Close()
			var body []byte
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if rate > 0 {
					if _, ok := <-tokens; !ok {
						return
					}
				}
				i := int(seq.Add(1))
				body = fmt.Appendf(body[:0], `{"recipient":{"id":"user-%d","webhook_url":"%s/hook/%d"},"channels":["webhook"],`+
					`"content":{"subject":"Bench","body":"Message %d"},"priority":"normal"}`, i%5000, sink.URL, i%100, i)
				t0 := time.Now()
				code, resp, err := conn.post(ctx, "/v1/notifications", body)
				if err == nil && code != http.StatusAccepted {
					err = fmt.Errorf("POST /v1/notifications: %d %s", code, resp)
				}
				var r struct{ ID string }
				if err == nil {
					err = json.Unmarshal(resp, &r)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				mu.Lock()
				all = append(all, sent{key: r.ID + "/webhook-1", at: t0})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return DeliveryFigures{}, err
	}
	waitUntil := time.Now().Add(wait)
	var lat []time.Duration
	var last time.Time
	missing := 0
	for _, s := range all {
		for {
			at, ok := sink.arrival(s.key)
			if ok {
				lat = append(lat, at.Sub(s.at))
				if at.After(last) {
					last = at
				}
				break
			}
			if time.Now().After(waitUntil) || ctx.Err() != nil {
				missing++
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	sortDurations(lat)
	f := DeliveryFigures{Rate: rate, Delivered: len(lat), Duplicates: int(sink.dups.Load()), Undelivered: missing,
		P50: Percentile(lat, 0.5), P99: Percentile(lat, 0.99)}
	if len(lat) > 0 {
		f.DeliveredPerSec = float64(len(lat)) / last.Sub(start).Seconds()
	}
	return f, nil
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
