package fanout_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/adapters/fanout"
	"herald/commands/groups"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// recordingSender is a Sender that, like the notification commands, maps
// each idempotency key to one notification: a repeated key returns the
// first ID. It records every key it is handed, repeats included.
type recordingSender struct {
	mu      sync.Mutex
	calls   int
	keys    []string
	created map[string]string
	// onCall, when set, runs before call n (from 1) is answered.
	onCall func(n int)
}

func (s *recordingSender) SendBatch(_ context.Context, items []fanout.Item) ([]fanout.ItemResult, error) {
	s.mu.Lock()
	s.calls++
	n := s.calls
	out := make([]fanout.ItemResult, len(items))
	for i, it := range items {
		s.keys = append(s.keys, it.IdempotencyKey)
		if it.Request.Recipient.ID != it.RecipientID || it.Request.BatchID == "" {
			out[i].Err = fmt.Errorf("item %d not addressed to its recipient", i)
			continue
		}
		id, ok := s.created[it.IdempotencyKey]
		if !ok {
			id = uuid.NewString()
			s.created[it.IdempotencyKey] = id
		}
		out[i].NotificationID = id
	}
	hook := s.onCall
	s.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return out, nil
}

func newStore(t *testing.T) *sqlite.Store {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store
}

func newService(t *testing.T, store eventstore.Store) *groups.Service {
	t.Helper()
	svc, err := groups.NewService(groups.Deps{
		Store: store, Clock: func() time.Time { return t0 }, NewID: func() string { return uuid.Must(uuid.NewV7()).String() },
		ApprovalThreshold: 50_000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// waitForEvent blocks until the log holds an event of type typ in stream.
func waitForEvent(t *testing.T, store eventstore.Store, stream, typ string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	sub, err := store.Subscribe(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for {
		recs, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s in %s: %v", typ, stream, err)
		}
		for _, r := range recs {
			if r.Stream == stream && r.Type == typ {
				return
			}
		}
	}
}

func members(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%06d", i)
	}
	return out
}

func TestFanOutResumesAfterCrashWithoutDuplicates(t *testing.T) {
	const size = 100_000
	store := newStore(t)
	svc := newService(t, store)
	ctx := t.Context()
	admin := groups.Origin{Actor: "root"}
	if _, err := svc.CreateGroup(ctx, admin, "everyone", "Everyone", false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ChangeMembers(ctx, admin, "everyone", members(size), nil); err != nil {
		t.Fatal(err)
	}
	req := domain.NotificationRequest{Content: &domain.Content{Body: "Maintenance tonight"}, Channels: []domain.Channel{domain.ChannelInApp}}
	res, err := svc.SendToGroup(ctx, groups.Origin{Actor: "ann"}, "everyone", req, "")
	if err != nil {
		t.Fatal(err)
	}
	id := res.Batch.ID()
	if res.Batch.Status() != domain.BatchStatusAwaitingApproval {
		t.Fatalf("status %s, want awaiting_approval over the threshold", res.Batch.Status())
	}
	// A member added after the send is not part of the batch.
	if _, err := svc.ChangeMembers(ctx, admin, "everyone", []string{"late-joiner"}, nil); err != nil {
		t.Fatal(err)
	}

	// First engine: crashes (its context ends) while the sender handles
	// call 37, after the items were sent but before progress is recorded.
	first := &recordingSender{created: map[string]string{}}
	crashCtx, crash := context.WithCancel(ctx)
	first.onCall = func(n int) {
		if n == 37 {
			crash()
		}
	}
	// Two chunks in flight: when call 37 starts, call 36 may not have been
	// recorded yet.
	const inFlight = 2
	e1, err := fanout.New(fanout.Config{Store: store, Ledger: svc, Sender: first, InFlight: inFlight})
	if err != nil {
		t.Fatal(err)
	}
	done1 := make(chan error, 1)
	go func() { done1 <- e1.Run(crashCtx, nil) }()
	// Nothing moves before the approval.
	if _, err := svc.Approve(ctx, admin, id, true, "planned"); err != nil {
		t.Fatal(err)
	}
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	b, err := svc.Batch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cursor, _ := b.Progress()
	if (cursor != 36*fanout.DefaultChunkSize && cursor != 35*fanout.DefaultChunkSize) || b.Status() != domain.BatchStatusInProgress {
		t.Fatalf("after the crash: cursor %d, status %s; want 35000 or 36000 (the chunks before the in-flight ones), in_progress", cursor, b.Status())
	}
	// What the first engine sent beyond the cursor is at most the chunks
	// that were in flight.
	idx := map[string]int{}
	for i, m := range members(size) {
		idx[domain.BatchItemKey(id, m)] = i
	}
	lastSent := 0
	for _, k := range first.keys {
		lastSent = max(lastSent, idx[k])
	}
	sentBeyond := lastSent + 1 - cursor
	if sentBeyond < fanout.DefaultChunkSize || sentBeyond > inFlight*fanout.DefaultChunkSize {
		t.Fatalf("the first engine sent %d items beyond the cursor %d; want one to %d chunks", sentBeyond, cursor, inFlight)
	}

	// Second engine on the same store, sharing the "already created"
	// ledger of the first (the notification streams survive the crash).
	second := &recordingSender{created: first.created}
	e2, err := fanout.New(fanout.Config{Store: store, Ledger: svc, Sender: second, InFlight: inFlight})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done2 := make(chan error, 1)
	go func() { done2 <- e2.Run(runCtx, nil) }()
	waitForEvent(t, store, domain.BatchStream(id), domain.TypeBatchCompleted)
	stop()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}

	// The second engine started exactly at the recorded cursor: the first
	// member it sent is the cursor's. (Its first call need not carry it:
	// with two chunks in flight, the second chunk's call can come first,
	// and under a loaded make test one even came after a third chunk's.)
	first2 := size
	for _, k := range second.keys {
		first2 = min(first2, idx[k])
	}
	if first2 != cursor {
		t.Errorf("resumed at member %d, want member %d", first2, cursor)
	}
	// Every member has exactly one notification; the only keys sent twice
	// are those of the chunks sent but not recorded before the crash.
	if len(first.created) != size {
		t.Errorf("%d notifications, want %d", len(first.created), size)
	}
	seen := map[string]int{}
	for _, k := range append(append([]string{}, first.keys...), second.keys...) {
		seen[k]++
	}
	repeats := 0
	for i, m := range members(size) {
		switch n := seen[domain.BatchItemKey(id, m)]; {
		case n == 0:
			t.Fatalf("member %d (%s) never sent", i, m)
		case n > 1:
			repeats++
			if i < cursor || i >= cursor+sentBeyond {
				t.Fatalf("member %d sent %d times outside the redone chunks", i, n)
			}
		}
	}
	if repeats != sentBeyond {
		t.Errorf("%d keys repeated, want the %d of the chunks redone", repeats, sentBeyond)
	}
	if seen[domain.BatchItemKey(id, "late-joiner")] != 0 {
		t.Error("a member added after the send was notified")
	}
	b, err = svc.Batch(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if done, failed := b.Progress(); b.Status() != domain.BatchStatusCompleted || done != size || failed != 0 {
		t.Errorf("final: %s %d/%d", b.Status(), done, failed)
	}
}

func TestFanOutSkipsRejectedAndCountsRefusals(t *testing.T) {
	t.Parallel()
	store := newStore(t)
	svc := newService(t, store)
	ctx := t.Context()
	o := groups.Origin{Actor: "root"}
	for _, g := range []domain.GroupID{"vip", "team"} {
		if _, err := svc.CreateGroup(ctx, o, g, string(g), g == "vip"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ChangeMembers(ctx, o, g, members(2500), nil); err != nil {
			t.Fatal(err)
		}
	}
	req := domain.NotificationRequest{Content: &domain.Content{Body: "hi"}}
	vip, err := svc.SendToGroup(ctx, o, "vip", req, "")
	if err != nil {
		t.Fatal(err)
	}
	if vip.Batch.Status() != domain.BatchStatusAwaitingApproval {
		t.Fatalf("protected group: status %s", vip.Batch.Status())
	}
	if _, err := svc.Reject(ctx, o, vip.Batch.ID(), true, "not now"); err != nil {
		t.Fatal(err)
	}
	team, err := svc.SendToGroup(ctx, o, "team", req, "")
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	sender := senderFunc(func(_ context.Context, items []fanout.Item) ([]fanout.ItemResult, error) {
		calls.Add(1)
		out := make([]fanout.ItemResult, len(items))
		for i, it := range items {
			if strings.HasPrefix(string(it.Request.BatchID), string(vip.Batch.ID())) {
				out[i].Err = fmt.Errorf("a rejected batch was sent")
			}
			if strings.HasSuffix(it.RecipientID, "7") {
				out[i].Err = fmt.Errorf("refused")
			}
		}
		return out, nil
	})
	e, err := fanout.New(fanout.Config{Store: store, Ledger: svc, Sender: sender, ChunkSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, nil) }()
	waitForEvent(t, store, domain.BatchStream(team.Batch.ID()), domain.TypeBatchCompleted)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := svc.Batch(ctx, team.Batch.ID())
	if err != nil {
		t.Fatal(err)
	}
	if d, f := b.Progress(); d != 2500 || f != 250 || calls.Load() != 3 {
		t.Errorf("progress %d/%d after %d calls, want 2500/250 after 3", d, f, calls.Load())
	}
	r, err := svc.Batch(ctx, vip.Batch.ID())
	if err != nil || r.Status() != domain.BatchStatusRejected {
		t.Errorf("rejected batch: %s, %v", r.Status(), err)
	}
}

type senderFunc func(context.Context, []fanout.Item) ([]fanout.ItemResult, error)

func (f senderFunc) SendBatch(ctx context.Context, items []fanout.Item) ([]fanout.ItemResult, error) {
	return f(ctx, items)
}

// BenchmarkPlan100k plans the items of a 100,000-member batch in chunks of
// DefaultChunkSize, sorting the membership first as the engine does.
func BenchmarkPlan100k(b *testing.B) {
	g := domain.ReplayGroup(domain.Group{}, []domain.Event{domain.GroupCreated{GroupID: "g", Name: "G"}})
	var events []domain.Event
	all := members(100_000)
	for i := 0; i < len(all); i += domain.MaxGroupMembersPerEvent {
		events = append(events, domain.GroupMembersAdded{GroupID: "g", Members: all[i : i+domain.MaxGroupMembersPerEvent]})
	}
	g = domain.ReplayGroup(g, events)
	var batch domain.Batch
	evs, err := domain.DecideBatch(batch, domain.RequestBatch{ID: "b", Request: domain.NotificationRequest{Content: &domain.Content{Body: "x"}},
		GroupID: "g", GroupVersion: g.Version(), Size: g.MemberCount(), Now: t0})
	if err != nil {
		b.Fatal(err)
	}
	batch = domain.EvolveBatch(batch, evs[0])
	b.ReportAllocs()
	for b.Loop() {
		recipients := g.Members()
		n := 0
		for from := 0; from < len(recipients); from += fanout.DefaultChunkSize {
			n += len(fanout.Plan(batch, recipients, from, min(from+fanout.DefaultChunkSize, len(recipients))))
		}
		if n != 100_000 {
			b.Fatal(n)
		}
	}
}
