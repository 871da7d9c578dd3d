package dispatcher_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"herald/adapters/channel"
	"herald/adapters/dispatcher"
	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
	"herald/infra/logbus"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/projections"
)

// rig is a ledger on real SQLite files: event log, views kept by the
// projection runner, command handlers, and the log followed through
// logbus, as herald serve wires them.
type rig struct {
	t        *testing.T
	store    *sqlite.Store
	views    *viewsqlite.Views
	handlers commands.Handlers
	ctx      context.Context
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	views, err := viewsqlite.Open(ctx, filepath.Join(dir, "views.db"), viewsqlite.Options{History: store})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := projections.NewRunner(store, views, projections.RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan struct{})
	go func() { defer close(runDone); _ = runner.Run(ctx) }()
	h, err := commands.NewHandlers(commands.Deps{Store: store, Clock: func() time.Time { return time.Now().UTC() }, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-runDone
		views.Close()
		store.Close()
	})
	return &rig{t: t, store: store, views: views, handlers: h, ctx: ctx}
}

// sink records what the provider received, keyed by idempotency key.
type sink struct {
	mu    sync.Mutex
	got   map[string]int
	order []channel.Message
	fail  func(m channel.Message) error // nil: accept
	block chan struct{}                 // when set, every send waits on it
}

func newSink() *sink { return &sink{got: map[string]int{}} }

func (s *sink) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return channel.Result{}, ctx.Err()
		}
	}
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		if err := fail(m); err != nil {
			return channel.Result{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[m.IdempotencyKey]++
	s.order = append(s.order, m)
	return channel.Result{Confirmed: true, ProviderMessageID: "p-" + m.IdempotencyKey}, nil
}

func (s *sink) count() (unique, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.got {
		unique++
		total += n
	}
	return unique, total
}

func (r *rig) dispatcher(channels map[domain.Channel]dispatcher.ChannelConfig) *dispatcher.Dispatcher {
	r.t.Helper()
	for ch, cc := range channels {
		if cc.Timeout == 0 {
			cc.Timeout = time.Second // shorter than the rig's 2 s lease
			channels[ch] = cc
		}
	}
	d, err := dispatcher.New(dispatcher.Config{
		Attempts: r.handlers.Attempts,
		Backlog:  r.views,
		Follow: func(ctx context.Context, after eventstore.Position) (message.Subscriber, error) {
			cp := &logbus.MemoryCheckpoints{}
			if err := cp.Save(ctx, "dispatcher", "notification", after); err != nil {
				return nil, err
			}
			return logbus.NewSubscriber(r.store, logbus.SubscriberConfig{ConsumerGroup: "dispatcher", Checkpoints: cp}, nil)
		},
		Channels:  channels,
		Lease:     2 * time.Second,
		NackDelay: 20 * time.Millisecond,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// run starts d and returns a stop function that ends it and returns Run's
// error.
func (r *rig) run(d *dispatcher.Dispatcher) (stop func() error) {
	r.t.Helper()
	ctx, cancel := context.WithCancel(r.ctx)
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ready) }()
	select {
	case <-ready:
	case err := <-done:
		r.t.Fatalf("dispatcher did not start: %v", err)
	case <-time.After(10 * time.Second):
		r.t.Fatal("dispatcher did not start within 10s")
	}
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	r.t.Cleanup(func() { _ = stop() })
	return stop
}

func (r *rig) send(req domain.NotificationRequest) domain.NotificationID {
	r.t.Helper()
	res, err := r.handlers.Send.Handle(r.ctx, commands.Send{Origin: commands.Origin{Actor: "test"}, Request: req})
	if err != nil {
		r.t.Fatalf("send: %v", err)
	}
	return res.ID
}

func webhookRequest(p domain.Priority) domain.NotificationRequest {
	return domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-1", WebhookURL: "https://hooks.example.com/x"},
		Channels:  []domain.Channel{domain.ChannelWebhook},
		Content:   &domain.Content{Subject: "Hi", Body: "Hello"},
		Priority:  p,
	}
}

func (r *rig) load(id domain.NotificationID) (domain.Notification, []string) {
	r.t.Helper()
	recs, err := r.store.ReadStream(r.ctx, domain.NotificationStream(id), 0, 1000)
	if err != nil {
		r.t.Fatalf("read %s: %v", id, err)
	}
	var n domain.Notification
	var types []string
	for _, rec := range recs {
		e, err := domain.UnmarshalEvent(rec.Type, rec.Data)
		if err != nil {
			r.t.Fatal(err)
		}
		n = domain.EvolveNotification(n, e)
		types = append(types, rec.Type)
	}
	return n, types
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliversEveryNotificationOnceAndRecordsIt(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Concurrency: 8}}))
	var ids []domain.NotificationID
	for range 200 {
		ids = append(ids, r.send(webhookRequest(domain.PriorityNormal)))
	}
	waitFor(t, 20*time.Second, "200 deliveries", func() bool { u, _ := s.count(); return u == 200 })
	for _, id := range ids {
		waitFor(t, 5*time.Second, "delivered status", func() bool {
			n, _ := r.load(id)
			return n.Status() == domain.StatusDelivered
		})
		n, types := r.load(id)
		want := []string{domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeDeliveryAttempted, domain.TypeDeliverySucceeded}
		if fmt.Sprint(types) != fmt.Sprint(want) {
			t.Fatalf("%s events = %v, want %v", id, types, want)
		}
		d, _ := n.Delivery("webhook-1")
		if d.ProviderMessageID() != "p-"+id.DeliveryKey("webhook-1") {
			t.Fatalf("provider message id = %q", d.ProviderMessageID())
		}
	}
	if u, total := s.count(); u != 200 || total != 200 {
		t.Fatalf("sink got %d unique / %d total, want 200 / 200", u, total)
	}
}

func TestRetriesWithBackoffThenSucceeds(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	var mu sync.Mutex
	failures := map[string]int{}
	s.fail = func(m channel.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if failures[m.IdempotencyKey] < 2 {
			failures[m.IdempotencyKey]++
			return channel.Retryable("HTTP 503", nil)
		}
		return nil
	}
	retry := dispatcher.RetryPolicy{MaxAttempts: 5, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Retry: retry}}))
	id := r.send(webhookRequest(domain.PriorityNormal))
	waitFor(t, 10*time.Second, "delivery after two failures", func() bool {
		n, _ := r.load(id)
		return n.Status() == domain.StatusDelivered
	})
	_, types := r.load(id)
	want := []string{
		domain.TypeNotificationRequested, domain.TypeDeliveryPlanned,
		domain.TypeDeliveryAttempted, domain.TypeDeliveryFailed, domain.TypeDeliveryRetryScheduled,
		domain.TypeDeliveryAttempted, domain.TypeDeliveryFailed, domain.TypeDeliveryRetryScheduled,
		domain.TypeDeliveryAttempted, domain.TypeDeliverySucceeded,
	}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("events:\n got %v\nwant %v", types, want)
	}
}

func TestPermanentFailureAndExhaustedRetriesDeadLetter(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	s.fail = func(m channel.Message) error {
		if m.Subject == "permanent" {
			return channel.Permanent("HTTP 404", nil)
		}
		return channel.Retryable("HTTP 500", nil)
	}
	retry := dispatcher.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Retry: retry}}))
	perm := webhookRequest(domain.PriorityNormal)
	perm.Content = &domain.Content{Subject: "permanent", Body: "x"}
	permID := r.send(perm)
	flakyID := r.send(webhookRequest(domain.PriorityNormal))
	for id, attempts := range map[domain.NotificationID]int{permID: 1, flakyID: 3} {
		waitFor(t, 10*time.Second, "dead letter", func() bool {
			n, _ := r.load(id)
			return n.Status() == domain.StatusFailed
		})
		n, types := r.load(id)
		d, _ := n.Delivery("webhook-1")
		if d.Attempts() != attempts || types[len(types)-1] != domain.TypeDeliveryDeadLettered {
			t.Fatalf("%s: %d attempts, events %v; want %d attempts ending dead-lettered", id, d.Attempts(), types, attempts)
		}
	}
}

func TestRecoversBacklogAtStart(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	// Accepted while no dispatcher runs.
	var ids []domain.NotificationID
	for range 50 {
		ids = append(ids, r.send(webhookRequest(domain.PriorityLow)))
	}
	waitFor(t, 10*time.Second, "the projection to catch up", func() bool {
		n := 0
		_, err := r.views.PendingDeliveries(r.ctx, func(projections.PendingDelivery) error { n++; return nil })
		return err == nil && n == 50
	})
	s := newSink()
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s}}))
	waitFor(t, 10*time.Second, "the backlog delivered", func() bool { u, _ := s.count(); return u == 50 })
	// And new work keeps flowing after the recovered backlog.
	ids = append(ids, r.send(webhookRequest(domain.PriorityNormal)))
	waitFor(t, 10*time.Second, "a live delivery", func() bool { u, _ := s.count(); return u == 51 })
	if _, total := s.count(); total != 51 {
		t.Fatalf("sink got %d sends for 51 deliveries", total)
	}
}

func TestHighPriorityOvertakesLowBacklog(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	s.fail = func(channel.Message) error { time.Sleep(5 * time.Millisecond); return nil } // a slow provider
	for range 300 {
		r.send(webhookRequest(domain.PriorityLow))
	}
	waitFor(t, 10*time.Second, "the projection to catch up", func() bool {
		n := 0
		_, err := r.views.PendingDeliveries(r.ctx, func(projections.PendingDelivery) error { n++; return nil })
		return err == nil && n == 300
	})
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Concurrency: 2}}))
	waitFor(t, 10*time.Second, "low-priority sends under way", func() bool { u, _ := s.count(); return u >= 10 })
	high := r.send(webhookRequest(domain.PriorityHigh))
	before, _ := s.count()
	key := high.DeliveryKey("webhook-1")
	waitFor(t, 10*time.Second, "the high-priority delivery", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.got[key] == 1
	})
	s.mu.Lock()
	pos := -1
	for i, m := range s.order {
		if m.IdempotencyKey == key {
			pos = i
		}
	}
	s.mu.Unlock()
	// Queued behind ~290 low deliveries, it must go within a few picks
	// (the intake's latency plus the two workers' current sends).
	if pos-before > 20 {
		t.Fatalf("high-priority delivery was send number %d, %d after it was queued; want it near the front", pos, pos-before)
	}
}

func TestShutdownLetsAttemptsInFlightFinish(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	s.block = make(chan struct{})
	stop := r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Concurrency: 1, Timeout: time.Second}}))
	id := r.send(webhookRequest(domain.PriorityNormal))
	second := r.send(webhookRequest(domain.PriorityNormal))
	waitFor(t, 10*time.Second, "the attempt to start", func() bool {
		n, _ := r.load(id)
		d, _ := n.Delivery("webhook-1")
		return d.Status() == domain.DeliveryStatusInFlight
	})
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(50 * time.Millisecond) // shutdown under way while the provider is still answering
	close(s.block)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	n, _ := r.load(id)
	if n.Status() != domain.StatusDelivered {
		t.Fatalf("in-flight attempt's outcome not recorded: status %s", n.Status())
	}
	n2, _ := r.load(second)
	if d, _ := n2.Delivery("webhook-1"); d.Status() != domain.DeliveryStatusPlanned {
		t.Fatalf("a delivery was started after shutdown began: %s", d.Status())
	}
}

func TestExpiredNotificationIsNotDelivered(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	req := webhookRequest(domain.PriorityNormal)
	exp := time.Now().Add(300 * time.Millisecond)
	req.ExpiresAt = &exp
	id := r.send(req)
	waitFor(t, 5*time.Second, "expiry time", func() bool { return time.Now().After(exp) })
	s := newSink()
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s}}))
	waitFor(t, 10*time.Second, "the expiry to be recorded", func() bool {
		_, types := r.load(id)
		return types[len(types)-1] == domain.TypeNotificationExpired
	})
	if u, _ := s.count(); u != 0 {
		t.Fatalf("expired notification sent %d times", u)
	}
}

func TestConfigErrorsNamed(t *testing.T) {
	t.Parallel()
	_, err := dispatcher.New(dispatcher.Config{Channels: map[domain.Channel]dispatcher.ChannelConfig{"pigeon": {},
		domain.ChannelEmail: {AddressConcurrency: -1}, domain.ChannelWebhook: {AddressConcurrency: -2}}})
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"nil Attempts", "nil Backlog", "nil Follow", `unknown channel "pigeon"`, "nil Sender",
		"channel email: address concurrency -1", "channel webhook: address concurrency -2"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// The intake reads the event type under the key logbus writes it.
func TestIntakeMetadataKeyMatchesLogbus(t *testing.T) {
	t.Parallel()
	if logbus.MetaType != "type" || logbus.MetaStream != "stream" {
		t.Fatalf("logbus metadata keys changed (%q, %q): update the dispatcher's intake", logbus.MetaType, logbus.MetaStream)
	}
}

// A provider that answers "too many requests" slows the delivery down
// without using up its attempts: more throttled answers than MaxAttempts,
// then an accept, and it is delivered.
func TestThrottledAttemptsDoNotUseUpTheBudget(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	var throttled atomic.Int32
	s.fail = func(channel.Message) error {
		if throttled.Add(1) <= 5 {
			f := channel.Retryable("http 429", nil)
			f.Throttled = true
			return f
		}
		return nil
	}
	retry := dispatcher.RetryPolicy{MaxAttempts: 2, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {
		Sender: s, Retry: retry, ThrottlePause: 10 * time.Millisecond, MaxPause: 10 * time.Millisecond,
	}}))
	id := r.send(webhookRequest(domain.PriorityNormal))
	waitFor(t, 10*time.Second, "a settled delivery", func() bool {
		n, _ := r.load(id)
		return n.Status().Finished()
	})
	n, types := r.load(id)
	d, _ := n.Delivery("webhook-1")
	if n.Status() != domain.StatusDelivered || d.Attempts() != 6 || d.Throttles() != 5 {
		t.Fatalf("status %s after %d attempts (%d throttled), events %v; want delivered at attempt 6 after 5 throttles",
			n.Status(), d.Attempts(), d.Throttles(), types)
	}
}

// MaxAge runs from when a delivery was planned: a notification released
// two days after it was requested still gets its retries.
func TestRetryWindowStartsAtThePlan(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	req := webhookRequest(domain.PriorityNormal)
	at := time.Now().UTC().Add(time.Second)
	req.ScheduledAt = &at
	requested := time.Now().UTC().Add(-48 * time.Hour)
	h, err := commands.NewHandlers(commands.Deps{Store: r.store, Clock: func() time.Time { return requested }, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Send.Handle(r.ctx, commands.Send{Origin: commands.Origin{Actor: "test"}, Request: req})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(at))
	if _, err := r.handlers.Release.Handle(r.ctx, commands.Release{Origin: commands.Origin{Actor: "test"}, ID: res.ID}); err != nil {
		t.Fatal(err)
	}
	s := newSink()
	var failures atomic.Int32
	s.fail = func(channel.Message) error {
		if failures.Add(1) <= 2 {
			return channel.Retryable("http 503", nil)
		}
		return nil
	}
	retry := dispatcher.RetryPolicy{MaxAttempts: 5, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, MaxAge: 24 * time.Hour}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Retry: retry}}))
	waitFor(t, 10*time.Second, "a settled delivery", func() bool {
		n, _ := r.load(res.ID)
		return n.Status().Finished()
	})
	n, types := r.load(res.ID)
	if d, _ := n.Delivery("webhook-1"); n.Status() != domain.StatusDelivered || d.Attempts() != 3 {
		t.Fatalf("status %s after %d attempts (%q), events %v; want delivered at attempt 3", n.Status(), d.Attempts(), d.LastError(), types)
	}
}

// A webhook endpoint that says "slow down" pauses itself, not the channel:
// another endpoint's delivery goes out at once, and a second delivery to
// the slow endpoint is held back unsent until the time it asked for.
func TestOneEndpointsRetryAfterPausesOnlyThatEndpoint(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	s := newSink()
	const slow = "https://slow.example.com/hook"
	var slowCalls atomic.Int32
	s.fail = func(m channel.Message) error {
		if m.Address == slow {
			slowCalls.Add(1)
			f := channel.Retryable("http 429", nil)
			f.Throttled, f.RetryAfter = true, time.Hour
			return f
		}
		return nil
	}
	retry := dispatcher.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 2 * time.Hour}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Retry: retry, Concurrency: 1}}))
	toSlow := webhookRequest(domain.PriorityNormal)
	toSlow.Recipient.WebhookURL = slow
	first := r.send(toSlow)
	waitFor(t, 10*time.Second, "the first delivery to the slow endpoint tried", func() bool {
		n, _ := r.load(first)
		d, _ := n.Delivery("webhook-1")
		return d.Status() == domain.DeliveryStatusRetryScheduled
	})
	second := r.send(toSlow)
	other := r.send(webhookRequest(domain.PriorityNormal))
	waitFor(t, 10*time.Second, "the other endpoint's delivery", func() bool {
		n, _ := r.load(other)
		return n.Status() == domain.StatusDelivered
	})
	waitFor(t, 10*time.Second, "the second delivery to the slow endpoint held back", func() bool {
		n, _ := r.load(second)
		d, _ := n.Delivery("webhook-1")
		return d.Status() == domain.DeliveryStatusRetryScheduled
	})
	if got := slowCalls.Load(); got != 1 {
		t.Fatalf("the slow endpoint was called %d times, want once", got)
	}
	for _, id := range []domain.NotificationID{first, second} {
		n, types := r.load(id)
		d, _ := n.Delivery("webhook-1")
		if wait := time.Until(d.NextAttemptAt()); wait < 59*time.Minute || d.Throttles() != 1 {
			t.Fatalf("%s: next attempt in %s after %d throttles (%q), events %v; want about an hour, one throttle",
				id, wait, d.Throttles(), d.LastError(), types)
		}
	}
}

// A delivery whose attempts keep ending without an outcome (the worker
// dies with each) is dead-lettered once they use up the budget, unsent,
// instead of being taken over for ever.
func TestAbandonedAttemptsUseUpTheBudget(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	id := r.send(webhookRequest(domain.PriorityNormal))
	for range 3 {
		if _, err := r.handlers.Attempts.Start(r.ctx, commands.StartAttempt{
			Origin: commands.Origin{Actor: "dying-worker"}, NotificationID: id, DeliveryID: "webhook-1", Lease: time.Millisecond,
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the lease runs out
	}
	s := newSink()
	retry := dispatcher.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {Sender: s, Retry: retry}}))
	waitFor(t, 10*time.Second, "a settled delivery", func() bool {
		n, _ := r.load(id)
		return n.Status().Finished()
	})
	n, types := r.load(id)
	d, _ := n.Delivery("webhook-1")
	if _, total := s.count(); n.Status() != domain.StatusFailed || total != 0 || d.Attempts() != 4 {
		t.Fatalf("status %s after %d attempts, %d sends (%q), events %v; want dead-lettered unsent at attempt 4",
			n.Status(), d.Attempts(), total, d.LastError(), types)
	}
}

// A receiver that hangs holds at most AddressConcurrency of the channel's
// workers: the others keep delivering to every other address meanwhile,
// and the hung one gets its deliveries once it answers again.
func TestAHungReceiverHoldsOnlyItsShareOfTheWorkers(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	const hung = "https://hung.example.com/hook"
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	s := newSink()
	s.fail = func(m channel.Message) error {
		if m.Address != hung {
			return nil
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			if old := most.Load(); n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		<-release
		return nil
	}
	r.run(r.dispatcher(map[domain.Channel]dispatcher.ChannelConfig{domain.ChannelWebhook: {
		Sender: s, Concurrency: 4, AddressConcurrency: 2,
		Retry: dispatcher.RetryPolicy{MaxAttempts: 3, Initial: 10 * time.Millisecond, Max: time.Second},
	}}))
	toHung := webhookRequest(domain.PriorityNormal)
	toHung.Recipient.WebhookURL = hung
	var hungIDs, otherIDs []domain.NotificationID
	for range 10 {
		hungIDs = append(hungIDs, r.send(toHung))
	}
	waitFor(t, 10*time.Second, "attempts hanging at the hung receiver", func() bool { return inFlight.Load() >= 2 })
	for i := range 8 {
		req := webhookRequest(domain.PriorityNormal)
		req.Recipient.WebhookURL = fmt.Sprintf("https://ok.example.com/hook/%d", i%2)
		otherIDs = append(otherIDs, r.send(req))
	}
	delivered := func(ids []domain.NotificationID) func() bool {
		return func() bool {
			for _, id := range ids {
				if n, _ := r.load(id); n.Status() != domain.StatusDelivered {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 10*time.Second, "the other receivers' deliveries while one hangs", delivered(otherIDs))
	if n := inFlight.Load(); n != 2 {
		t.Errorf("%d attempts at the hung receiver, want 2 (its cap)", n)
	}
	close(release)
	waitFor(t, 10*time.Second, "the hung receiver's deliveries once it answers", delivered(hungIDs))
	if n := most.Load(); n != 2 {
		t.Errorf("at most %d attempts at once at the hung receiver, want 2", n)
	}
	if unique, total := s.count(); unique != 18 || total != 18 {
		t.Errorf("sink got %d deliveries (%d distinct), want 18 once each", total, unique)
	}
}
