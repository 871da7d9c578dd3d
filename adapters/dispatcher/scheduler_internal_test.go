package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"herald/domain"
)

func newTestScheduler(clock func() time.Time) *scheduler {
	return newScheduler(clock, DefaultLaneWeights, []domain.Channel{domain.ChannelWebhook}, nil, nil)
}

func item(i int, p domain.Priority) work {
	return work{notification: domain.NotificationID(fmt.Sprintf("n%06d", i)), delivery: "webhook-1", channel: domain.ChannelWebhook, priority: p}
}

func TestHighPriorityGoesFirstAndLowStillProgresses(t *testing.T) {
	t.Parallel()
	s := newTestScheduler(time.Now)
	for i := range 1000 {
		s.add(item(i, domain.PriorityLow))
	}
	s.add(item(5000, domain.PriorityHigh))
	ctx := context.Background()
	w, ok := s.next(ctx, domain.ChannelWebhook)
	if !ok || w.priority != domain.PriorityHigh {
		t.Fatalf("first pick = %+v, want the high-priority delivery ahead of 1000 low", w)
	}

	// Sustained high load: every pick is replaced by a new high one. Low
	// must still get its share (1 in 9 with high and low competing).
	lows, next := 0, 6000
	for range 900 {
		s.add(item(next, domain.PriorityHigh))
		next++
		w, _ := s.next(ctx, domain.ChannelWebhook)
		if w.priority == domain.PriorityLow {
			lows++
		}
		s.done(w, nil)
	}
	if lows < 90 || lows > 110 {
		t.Fatalf("low lane got %d of 900 picks under sustained high load, want about 100", lows)
	}
}

func TestHeldOnceAndRetryNewsKept(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s := newTestScheduler(func() time.Time { return now })
	w := item(1, domain.PriorityNormal)
	s.add(w)
	s.add(w) // a duplicate (replayed event) is merged
	if ready, _ := s.backlog(); ready[domain.ChannelWebhook][1] != 1 {
		t.Fatalf("ready = %v, want the delivery once", ready)
	}
	got, _ := s.next(context.Background(), domain.ChannelWebhook)

	// While it runs, the log brings its retry: kept, not lost, not queued twice.
	retry := w
	retry.due = now.Add(time.Minute)
	s.add(retry)
	if ready, delayed := s.backlog(); ready[domain.ChannelWebhook][1] != 0 || delayed != 0 {
		t.Fatalf("news about a running delivery was queued: ready %v delayed %d", ready, delayed)
	}
	s.done(got, nil)
	if _, delayed := s.backlog(); delayed != 1 {
		t.Fatalf("retry news lost when the attempt ended: delayed = %d", delayed)
	}
}

func TestDelayedWorkBecomesDue(t *testing.T) {
	t.Parallel()
	s := newScheduler(time.Now, DefaultLaneWeights, []domain.Channel{domain.ChannelWebhook}, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go s.run(ctx)
	w := item(1, domain.PriorityLow)
	w.due = time.Now().Add(30 * time.Millisecond)
	s.add(w)
	got, ok := s.next(ctx, domain.ChannelWebhook)
	if !ok || got.key() != w.key() {
		t.Fatalf("delayed delivery never came due: %+v %v", got, ok)
	}
	if time.Now().Before(w.due) {
		t.Fatal("delayed delivery handed out before its due time")
	}
}

func TestLimiterPausesAndRates(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	l := newLimiter(10, 2) // 10/s, bursts of 2
	if l.reserve(now) != 0 || l.reserve(now) != 0 {
		t.Fatal("burst of 2 not granted")
	}
	if wait := l.reserve(now); wait < 90*time.Millisecond || wait > 110*time.Millisecond {
		t.Fatalf("third token wait = %s, want about 100ms", wait)
	}
	l.pause(now.Add(5 * time.Second))
	if wait := l.reserve(now.Add(time.Second)); wait != 4*time.Second {
		t.Fatalf("wait during pause = %s, want 4s", wait)
	}
	l.pause(now.Add(time.Second)) // an earlier pause does not shorten it
	if wait := l.reserve(now.Add(2 * time.Second)); wait != 3*time.Second {
		t.Fatalf("wait after shorter pause = %s, want 3s", wait)
	}
	var unlimited *limiter
	if unlimited.reserve(now) != 0 {
		t.Fatal("nil limiter waited")
	}
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{MaxAttempts: 4, Initial: time.Second, Max: 3 * time.Second, Multiplier: 2, Jitter: 0.5, MaxAge: time.Hour}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	req := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	now := req.Add(time.Minute)
	for attempt, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 3 * time.Second} {
		for range 50 {
			d := p.next(attempt, req, now, time.Time{}).Sub(now)
			if d > max || d < max/2 {
				t.Fatalf("attempt %d: delay %s outside [%s, %s]", attempt, d, max/2, max)
			}
		}
	}
	if !p.next(4, req, now, time.Time{}).IsZero() {
		t.Fatal("retry after the last attempt")
	}
	if !p.next(1, req, req.Add(time.Hour), time.Time{}).IsZero() {
		t.Fatal("retry past max age")
	}
	if got := p.next(1, req, now, now.Add(30*time.Second)); !got.Equal(now.Add(30 * time.Second)) {
		t.Fatalf("Retry-After not honoured: %s", got)
	}
	if err := (RetryPolicy{}).Validate(); err == nil {
		t.Fatal("zero policy validated")
	}
}

// With the defaults a delivery whose provider stays down is tried for
// about a day: MaxAge ends it, not the attempts budget.
func TestDefaultRetryPolicyLastsMaxAge(t *testing.T) {
	t.Parallel()
	var p RetryPolicy
	p.setDefaults()
	p.Jitter = 1e-9
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	now, attempt := start, 1
	for {
		next := p.next(attempt, start, now, time.Time{})
		if next.IsZero() {
			break
		}
		now, attempt = next, attempt+1
	}
	if attempt >= p.MaxAttempts || now.Sub(start) < p.MaxAge-p.Max {
		t.Fatalf("gave up after attempt %d of %d, %s after the first; want MaxAge (%s) to end it", attempt, p.MaxAttempts, now.Sub(start), p.MaxAge)
	}
}

func TestRetryCountLeavesThrottlesOut(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	n := domain.ReplayNotification([]domain.Event{
		domain.NotificationRequested{NotificationID: "n-1", Request: domain.NotificationRequest{Channels: []domain.Channel{domain.ChannelWebhook}}, RequestedAt: now.Add(-48 * time.Hour)},
		domain.DeliveryPlanned{DeliveryID: "webhook-1", Channel: domain.ChannelWebhook, Address: "https://example.com", PlannedAt: now},
		domain.DeliveryAttempted{DeliveryID: "webhook-1", Attempt: 1, AttemptedAt: now},
		domain.DeliveryFailed{DeliveryID: "webhook-1", Attempt: 1, Reason: "http 429", Retryable: true, Throttled: true, FailedAt: now},
		domain.DeliveryRetryScheduled{DeliveryID: "webhook-1", NextAttempt: 2, DueAt: now},
		domain.DeliveryAttempted{DeliveryID: "webhook-1", Attempt: 2, AttemptedAt: now},
		domain.DeliveryFailed{DeliveryID: "webhook-1", Attempt: 2, Reason: "http 503", Retryable: true, FailedAt: now},
		domain.DeliveryRetryScheduled{DeliveryID: "webhook-1", NextAttempt: 3, DueAt: now},
		domain.DeliveryAttempted{DeliveryID: "webhook-1", Attempt: 3, AttemptedAt: now},
	})
	d, _ := n.Delivery("webhook-1")
	if d.Throttles() != 1 || !d.PlannedAt().Equal(now) {
		t.Fatalf("throttles %d, planned at %s; want 1 and %s", d.Throttles(), d.PlannedAt(), now)
	}
	if got := retryCount(d, 3, false); got != 2 {
		t.Fatalf("attempt 3 counts as %d, want 2 (attempt 1 was throttled)", got)
	}
	if got := retryCount(d, 3, true); got != 1 {
		t.Fatalf("a throttled attempt 3 counts as %d, want 1", got)
	}
	// The window runs from the plan, two days after the request.
	if got := retryWindowStart(n, d); !got.Equal(now) {
		t.Fatalf("retry window starts %s, want the plan's %s", got, now)
	}
}

// A planned delivery takes its lane from the planning event: a scheduled
// high-priority notification released after a restart (its request never
// seen by this intake) overtakes the normal backlog.
func TestIntakeTakesTheLaneFromThePlan(t *testing.T) {
	t.Parallel()
	s := newTestScheduler(time.Now)
	in := newIntake(s, slog.New(slog.DiscardHandler), newDispatcherMetrics(prometheus.NewRegistry(), s))
	for i := range 100 {
		s.add(item(i, domain.PriorityNormal))
	}
	n := domain.ReplayNotification([]domain.Event{domain.NotificationRequested{NotificationID: "n-high", RequestedAt: time.Now(),
		Request: domain.NotificationRequest{Recipient: domain.Recipient{WebhookURL: "https://example.com/h"}, Channels: []domain.Channel{domain.ChannelWebhook},
			Content: &domain.Content{Body: "x"}, Priority: domain.PriorityHigh}}})
	events, err := domain.DecideNotification(n, domain.PlanDeliveries{Plans: []domain.DeliveryPlan{{Channel: domain.ChannelWebhook, Address: "https://example.com/h"}}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage(watermill.NewUUID(), data)
		msg.Metadata.Set(metaEventType, typ)
		msg.Metadata.Set("stream", string(domain.NotificationStream("n-high")))
		if err := in.handle(msg); err != nil {
			t.Fatal(err)
		}
	}
	if w, ok := s.next(context.Background(), domain.ChannelWebhook); !ok || w.notification != "n-high" || w.priority != domain.PriorityHigh {
		t.Fatalf("first pick = %+v, want n-high in the high lane", w)
	}
}

// A retry names no priority: the intake queues it in the lane of the
// request it saw, and remembers only the requests that are not normal.
func TestIntakeRetriesTakeTheRequestsLane(t *testing.T) {
	t.Parallel()
	s := newTestScheduler(time.Now)
	in := newIntake(s, slog.New(slog.DiscardHandler), newDispatcherMetrics(prometheus.NewRegistry(), s))
	feed := func(id domain.NotificationID, e domain.Event) {
		t.Helper()
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		msg := message.NewMessage(watermill.NewUUID(), data)
		msg.Metadata.Set(metaEventType, typ)
		msg.Metadata.Set("stream", string(domain.NotificationStream(id)))
		if err := in.handle(msg); err != nil {
			t.Fatal(err)
		}
	}
	due := time.Now().Add(-time.Second)
	for _, p := range []domain.Priority{domain.PriorityHigh, domain.PriorityLow, domain.PriorityNormal, ""} {
		id := domain.NotificationID("n-" + string(p))
		feed(id, domain.NotificationRequested{NotificationID: id, RequestedAt: time.Now(),
			Request: domain.NotificationRequest{Recipient: domain.Recipient{WebhookURL: "https://example.com/h"},
				Channels: []domain.Channel{domain.ChannelWebhook}, Content: &domain.Content{Body: "x"}, Priority: p,
				Metadata: domain.Metadata{"priority": "high"}}})
		feed(id, domain.DeliveryRetryScheduled{DeliveryID: "webhook-1", NextAttempt: 2, DueAt: due})
	}
	if len(in.priorities) != 2 {
		t.Errorf("the intake remembers %d priorities, want 2 (high and low): %v", len(in.priorities), in.priorities)
	}
	want := map[domain.NotificationID]domain.Priority{"n-high": domain.PriorityHigh, "n-low": domain.PriorityLow,
		"n-normal": domain.PriorityNormal, "n-": domain.PriorityNormal}
	got := map[domain.NotificationID]domain.Priority{}
	for range want {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		w, ok := s.next(ctx, domain.ChannelWebhook)
		cancel()
		if !ok {
			t.Fatalf("queued %v, want %d retries", got, len(want))
		}
		got[w.notification] = w.priority
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("retries queued in lanes %v, want %v", got, want)
	}
}

// Work for an address at its cap waits, in order, while work for other
// addresses goes ahead; each attempt that ends lets the next one through,
// and a retry keeps counting against its address.
func TestAddressCapParksWorkInOrder(t *testing.T) {
	t.Parallel()
	s := newScheduler(time.Now, DefaultLaneWeights, []domain.Channel{domain.ChannelWebhook}, nil,
		map[domain.Channel]int{domain.ChannelWebhook: 2})
	at := func(i int, addr string) work {
		w := item(i, domain.PriorityNormal)
		w.address = addr
		return w
	}
	for i := range 5 {
		s.add(at(i, "https://a.example.com"))
	}
	s.add(at(5, "https://b.example.com"))
	s.add(item(6, domain.PriorityNormal)) // no address known: not capped
	take := func() work {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w, ok := s.next(ctx, domain.ChannelWebhook)
		if !ok {
			t.Fatal("no work")
		}
		return w
	}
	var got []domain.NotificationID
	running := map[domain.NotificationID]work{}
	for range 4 {
		w := take()
		got = append(got, w.notification)
		running[w.notification] = w
	}
	want := []domain.NotificationID{"n000000", "n000001", "n000005", "n000006"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("taken %v, want %v (two for a, then the others)", got, want)
	}
	if ready, _ := s.backlog(); ready[domain.ChannelWebhook] != [3]int{0, 3, 0} {
		t.Errorf("backlog %v, want the three parked deliveries of a in the normal lane", ready[domain.ChannelWebhook])
	}
	// n000000's attempt ends with a retry due now: it waits behind a's
	// parked deliveries, and still counts against a.
	retry := running["n000000"]
	s.done(retry, &work{notification: retry.notification, delivery: retry.delivery, channel: retry.channel, priority: retry.priority})
	if w := take(); w.notification != "n000002" {
		t.Fatalf("after one of a's attempts ended, took %s, want n000002", w.notification)
	}
	s.done(running["n000001"], nil)
	if w := take(); w.notification != "n000003" {
		t.Fatalf("took %s, want n000003", w.notification)
	}
	s.mu.Lock()
	q := s.channels[domain.ChannelWebhook]
	n, parked := q.running["https://a.example.com"], q.parked["https://a.example.com"].len()
	s.mu.Unlock()
	if n != 2 || parked != 2 {
		t.Errorf("a has %d attempts running and %d parked, want 2 and 2 (n000004 and the retry)", n, parked)
	}
	// A high-priority delivery to a overtakes a's parked normal ones.
	high := at(7, "https://a.example.com")
	high.priority = domain.PriorityHigh
	s.add(high)
	s.done(running["n000005"], nil) // b's attempt: frees nothing of a's
	s.done(work{notification: "n000002", delivery: "webhook-1", channel: domain.ChannelWebhook, priority: domain.PriorityNormal,
		address: "https://a.example.com"}, nil)
	if w := take(); w.notification != "n000007" {
		t.Fatalf("took %s, want the high-priority n000007", w.notification)
	}
}

// A high-priority backlog for one address at its cap does not hand the
// high lane's turns to the lower lanes: high-priority work for the other
// addresses still goes first.
func TestParkingUsesUpNoTurnOfTheLane(t *testing.T) {
	t.Parallel()
	s := newScheduler(time.Now, DefaultLaneWeights, []domain.Channel{domain.ChannelWebhook}, nil,
		map[domain.Channel]int{domain.ChannelWebhook: 1})
	add := func(i int, p domain.Priority, addr string) {
		w := item(i, p)
		w.address = addr
		s.add(w)
	}
	for i := range 50 {
		add(i, domain.PriorityHigh, "https://busy.example.com")
	}
	for i := range 50 {
		add(100+i, domain.PriorityNormal, fmt.Sprintf("https://n%d.example.com", i))
		add(200+i, domain.PriorityLow, fmt.Sprintf("https://l%d.example.com", i))
	}
	for i := range 10 {
		add(300+i, domain.PriorityHigh, fmt.Sprintf("https://h%d.example.com", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var lanes []domain.Priority
	for range 12 {
		w, ok := s.next(ctx, domain.ChannelWebhook)
		if !ok {
			t.Fatal("no work")
		}
		lanes = append(lanes, w.priority)
	}
	high := 0
	for _, p := range lanes {
		if p == domain.PriorityHigh {
			high++
		}
	}
	// The lanes' shares, 8:3:1 in twelve picks: the high lane's eight go
	// to busy's first delivery and seven of the others, not to busy's
	// parked backlog.
	if high != 8 {
		t.Errorf("the first 12 picks were %v: %d high, want 8", lanes, high)
	}
}

// A worker waiting while every due delivery is parked is woken when an
// attempt to that address ends, and a parked pick gives back the token it
// took from the rate limit.
func TestReleaseWakesAWaitingWorkerAndParkingCostsNoToken(t *testing.T) {
	t.Parallel()
	lim := newLimiter(1, 2) // a token a second, two at once
	s := newScheduler(time.Now, DefaultLaneWeights, []domain.Channel{domain.ChannelWebhook},
		map[domain.Channel]*limiter{domain.ChannelWebhook: lim}, map[domain.Channel]int{domain.ChannelWebhook: 1})
	for i := range 2 {
		w := item(i, domain.PriorityNormal)
		w.address = "https://a.example.com"
		s.add(w)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, ok := s.next(ctx, domain.ChannelWebhook)
	if !ok {
		t.Fatal("no work")
	}
	got := make(chan work, 1)
	go func() {
		w, _ := s.next(ctx, domain.ChannelWebhook)
		got <- w
	}()
	// Wait until the worker parked the second delivery and went to sleep.
	for {
		s.mu.Lock()
		parked := s.channels[domain.ChannelWebhook].parkedN[1]
		s.mu.Unlock()
		if parked == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	lim.mu.Lock()
	tokens := lim.tokens
	lim.mu.Unlock()
	if tokens < 0.9 {
		t.Errorf("%.2f tokens left after one attempt of a burst of two, want about 1: the parked pick kept its token", tokens)
	}
	s.done(first, nil)
	select {
	case w := <-got:
		if w.notification != "n000001" {
			t.Fatalf("woken with %+v, want n000001", w)
		}
	case <-ctx.Done():
		t.Fatal("the waiting worker was not woken when a's attempt ended")
	}
}

// Work recovered at start knows no address: its attempt teaches the
// scheduler one, and the retry counts against it.
func TestALearntAddressCountsForTheRetry(t *testing.T) {
	t.Parallel()
	s := newScheduler(time.Now, DefaultLaneWeights, []domain.Channel{domain.ChannelWebhook}, nil,
		map[domain.Channel]int{domain.ChannelWebhook: 1})
	const a = "https://a.example.com"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.add(item(0, domain.PriorityNormal)) // recovered: no address
	x, _ := s.next(ctx, domain.ChannelWebhook)
	s.learn(x, a)
	y := item(1, domain.PriorityNormal)
	y.address = a
	s.add(y)
	if w, _ := s.next(ctx, domain.ChannelWebhook); w.notification != y.notification {
		t.Fatalf("took %s, want %s (x was not counted against a)", w.notification, y.notification)
	}
	s.done(x, &work{notification: x.notification, delivery: x.delivery, channel: x.channel, priority: x.priority})
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.channels[domain.ChannelWebhook]
	if _, ok := q.take(s.weights); ok || q.parked[a] == nil || q.parked[a].len() != 1 {
		t.Fatalf("x's retry was not held back for a (running %v)", q.running)
	}
}
