package commands_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// countingStore is the real SQLite store with its calls counted, and
// optionally every Append refused as if another writer always came first.
type countingStore struct {
	*sqlite.Store
	appends, appendManys atomic.Int64
	alwaysConflict       bool
}

func (s *countingStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events ...eventstore.EventData) (eventstore.AppendResult, error) {
	s.appends.Add(1)
	if s.alwaysConflict {
		return eventstore.AppendResult{}, &eventstore.WrongVersionError{Stream: stream, Expected: expected, Actual: 99}
	}
	return s.Store.Append(ctx, stream, expected, events...)
}

func (s *countingStore) AppendMany(ctx context.Context, reqs []eventstore.AppendRequest) ([]eventstore.AppendResult, []error) {
	s.appendManys.Add(1)
	return s.Store.AppendMany(ctx, reqs)
}

func newCountingStore(t *testing.T) *countingStore {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &countingStore{Store: st}
}

// handlersOn builds handlers on store with a clock the test can move.
func handlersOn(t *testing.T, store eventstore.Store, clock *atomic.Int64) commands.Handlers {
	t.Helper()
	h, err := commands.NewHandlers(commands.Deps{
		Store: store, Clock: func() time.Time { return time.Unix(0, clock.Load()).UTC() }, NewID: commands.UUIDv7,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func request(email string) domain.NotificationRequest {
	return domain.NotificationRequest{
		Recipient: domain.Recipient{Email: email},
		Content:   &domain.Content{Body: "hello"},
	}
}

func TestSendIsOneAppendAndBatchIsOneAppendMany(t *testing.T) {
	t.Parallel()
	store := newCountingStore(t)
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	h := handlersOn(t, store, &clock)

	res, err := h.Send.Handle(t.Context(), commands.Send{Request: request("a@example.com")})
	if err != nil || !res.Created || res.Status != domain.StatusInProgress {
		t.Fatalf("send: %+v, %v", res, err)
	}
	if store.appends.Load() != 1 || store.appendManys.Load() != 0 {
		t.Errorf("send made %d Append and %d AppendMany calls, want 1 and 0", store.appends.Load(), store.appendManys.Load())
	}

	items := make([]commands.BatchItem, 1000)
	for i := range items {
		items[i] = commands.BatchItem{Request: request("b@example.com")}
	}
	items[10].Request.Content = nil // invalid: no content
	br, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: items})
	if err != nil {
		t.Fatal(err)
	}
	created, repeated, failed := br.Counts()
	if created != 999 || repeated != 0 || failed != 1 {
		t.Errorf("batch counts created %d repeated %d failed %d", created, repeated, failed)
	}
	var ve *domain.ValidationError
	if !errors.As(br.Items[10].Err, &ve) || ve.Fields[0].Field != "content" {
		t.Errorf("item 10 error %v, want a validation error on content", br.Items[10].Err)
	}
	if store.appends.Load() != 1 || store.appendManys.Load() != 1 {
		t.Errorf("batch made %d Append and %d AppendMany calls in total, want 1 (the send) and 1", store.appends.Load(), store.appendManys.Load())
	}
	if head, _ := store.Head(t.Context()); head != 2+999*2 {
		t.Errorf("log head %d, want %d", head, 2+999*2)
	}
}

func TestBatchTooManyItems(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	h := handlersOn(t, newCountingStore(t), &clock)
	_, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: make([]commands.BatchItem, commands.MaxBatchItems+1)})
	if !errors.Is(err, commands.ErrTooManyItems) {
		t.Errorf("error %v, want ErrTooManyItems", err)
	}
}

func TestConflictRetriesAreBounded(t *testing.T) {
	t.Parallel()
	store := newCountingStore(t)
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	h := handlersOn(t, store, &clock)
	res, err := h.Send.Handle(t.Context(), commands.Send{Request: request("a@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	store.alwaysConflict = true
	calls := store.appends.Load()

	_, err = h.Cancel.Handle(t.Context(), commands.Cancel{ID: res.ID, Reason: "x"})
	if !errors.Is(err, commands.ErrContention) || !errors.Is(err, eventstore.ErrWrongExpectedVersion) {
		t.Fatalf("error %v, want ErrContention wrapping the version error", err)
	}
	if got := store.appends.Load() - calls; got != 1+commands.MaxConflictRetries {
		t.Errorf("%d append attempts, want %d", got, 1+commands.MaxConflictRetries)
	}

	// Over HTTP the give-up is a 503 the client may retry.
	srv := newServer(t, commands.NewHTTP(h, commands.HTTPOptions{}))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv+"/v1/notifications/"+string(res.ID)+"/cancel", nil)
	r := do(t, req)
	mustProblem(t, r, http.StatusServiceUnavailable, "contention")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

func TestRepeatAfterExpiryReturnsOriginal(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	h := handlersOn(t, newCountingStore(t), &clock)
	req := request("a@example.com")
	exp := testNow.Add(time.Hour)
	req.ExpiresAt = &exp
	first, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k", Origin: commands.Origin{Actor: "a"}})
	if err != nil || !first.Created {
		t.Fatalf("first: %+v %v", first, err)
	}
	clock.Store(testNow.Add(2 * time.Hour).UnixNano())
	again, err := h.Send.Handle(t.Context(), commands.Send{Request: req, IdempotencyKey: "k", Origin: commands.Origin{Actor: "a"}})
	if err != nil || again.Created || again.ID != first.ID {
		t.Errorf("repeat after expiry: %+v %v, want the original", again, err)
	}
	// Without a key the same request is simply invalid now.
	_, err = h.Send.Handle(t.Context(), commands.Send{Request: req})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "expires_at" {
		t.Errorf("error %v, want expires_at invalid", err)
	}
}

// Two processes' handlers, each with its own state cache, take turns on one
// notification. A command that starts from a cached state the other process
// has since moved past decides as if it had read the log: an append costs a
// conflict and a reload, and a refusal is decided again on the log's state.
func TestStaleCachedStateNeverDecides(t *testing.T) {
	t.Parallel()
	store := newCountingStore(t)
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	here, there := handlersOn(t, store, &clock), handlersOn(t, store, &clock)
	ctx := t.Context()

	sent, err := here.Send.Handle(ctx, commands.Send{Request: request("a@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	started, err := here.Attempts.Start(ctx, commands.StartAttempt{NotificationID: sent.ID, DeliveryID: firstDelivery(t, store, sent.ID), Lease: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The other process records the outcome: here still holds the state
	// with the attempt in flight.
	if _, err := there.Attempts.Record(ctx, commands.RecordOutcome{NotificationID: sent.ID, DeliveryID: started.Delivery.ID(),
		Attempt: started.Attempt, Succeeded: true, ProviderMessageID: "m-1"}); err != nil {
		t.Fatal(err)
	}
	// On the cached state the delivery is in flight and a resend would be
	// refused; on the log's it succeeded and may be resent.
	res, err := here.Resend.Handle(ctx, commands.Resend{ID: sent.ID, Reason: "lost"})
	if err != nil {
		t.Fatalf("resend after the other process recorded the success: %v", err)
	}
	if len(res.Deliveries) != 1 {
		t.Errorf("resend created %d deliveries, want 1", len(res.Deliveries))
	}

	// There, the state is now behind (the resend was appended here). On it
	// every delivery is final and a cancel has nothing to stop; on the
	// log's state the resend is pending, and the cancel stops it.
	if _, err := there.Cancel.Handle(ctx, commands.Cancel{ID: sent.ID, Reason: "done"}); err != nil {
		t.Fatalf("cancel on a stale state: %v", err)
	}
	want := []string{domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeDeliveryAttempted,
		domain.TypeDeliverySucceeded, domain.TypeResendRequested, domain.TypeNotificationCancelled}
	if got := streamTypes(t, store.Store, sent.ID); !slices.Equal(got, want) {
		t.Errorf("stream %v, want %v", got, want)
	}

	// An append decided on a stale state conflicts and is decided again:
	// here caches a new send, there cancels it, here's attempt is refused.
	sent, err = here.Send.Handle(ctx, commands.Send{Request: request("b@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := there.Cancel.Handle(ctx, commands.Cancel{ID: sent.ID, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}
	before := store.appends.Load()
	_, err = here.Attempts.Start(ctx, commands.StartAttempt{NotificationID: sent.ID, DeliveryID: firstDelivery(t, store, sent.ID), Lease: time.Minute})
	if !errors.Is(err, domain.ErrNotificationCancelled) {
		t.Errorf("attempt on a notification the other process cancelled: %v, want ErrNotificationCancelled", err)
	}
	if n := store.appends.Load() - before; n != 1 {
		t.Errorf("the attempt made %d appends, want 1 (refused by its expected version)", n)
	}
	want = []string{domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeNotificationCancelled}
	if got := streamTypes(t, store.Store, sent.ID); !slices.Equal(got, want) {
		t.Errorf("stream %v, want %v", got, want)
	}
}

func firstDelivery(t *testing.T, store eventstore.Store, id domain.NotificationID) domain.DeliveryID {
	t.Helper()
	recs, err := store.ReadStream(t.Context(), domain.NotificationStream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Type == domain.TypeDeliveryPlanned {
			ev, err := domain.UnmarshalEvent(r.Type, r.Data)
			if err != nil {
				t.Fatal(err)
			}
			return ev.(domain.DeliveryPlanned).DeliveryID
		}
	}
	t.Fatalf("no delivery planned for %s", id)
	return ""
}
