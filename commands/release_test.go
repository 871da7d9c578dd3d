package commands_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore/sqlite"
)

func TestReleasePlansAScheduledNotificationWhenDue(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := testNow
	h, err := commands.NewHandlers(commands.Deps{Store: store, Clock: func() time.Time { return now }, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	at := testNow.Add(time.Hour)
	expires := testNow.Add(2 * time.Hour)
	req := func(exp *time.Time) domain.NotificationRequest {
		return domain.NotificationRequest{
			Recipient: domain.Recipient{ID: "u1", Email: "a@example.com"}, Channels: []domain.Channel{domain.ChannelEmail, domain.ChannelSMS},
			Content: &domain.Content{Body: "later"}, ScheduledAt: &at, ExpiresAt: exp,
		}
	}
	sent, err := h.Send.Handle(t.Context(), commands.Send{Request: req(nil)})
	if err != nil || sent.Status != domain.StatusScheduled {
		t.Fatalf("send = %+v, %v; want scheduled", sent, err)
	}
	expiring, err := h.Send.Handle(t.Context(), commands.Send{Request: req(&expires)})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := h.Send.Handle(t.Context(), commands.Send{Request: req(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Cancel.Handle(t.Context(), commands.Cancel{ID: cancelled.ID, Reason: "changed my mind"}); err != nil {
		t.Fatal(err)
	}

	res, err := h.Release.Handle(t.Context(), commands.Release{ID: sent.ID})
	if !errors.Is(err, domain.ErrNotDue) || !res.DueAt.Equal(at) {
		t.Fatalf("early release = %+v, %v; want ErrNotDue with the due time", res, err)
	}

	now = at
	res, err = h.Release.Handle(t.Context(), commands.Release{ID: sent.ID})
	if err != nil || !res.Released || res.Status != domain.StatusInProgress {
		t.Fatalf("release when due = %+v, %v", res, err)
	}
	types := streamTypes(t, store, sent.ID)
	want := []string{domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeDeliverySuppressed}
	if len(types) != 3 || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("events %v, want %v (email planned, sms without address suppressed)", types, want)
	}
	// Releasing twice (a restart at the due moment) plans nothing more.
	if res, err := h.Release.Handle(t.Context(), commands.Release{ID: sent.ID}); err != nil || res.Released {
		t.Fatalf("second release = %+v, %v", res, err)
	}
	if got := streamTypes(t, store, sent.ID); len(got) != 3 {
		t.Fatalf("second release appended: %v", got)
	}
	if res, err := h.Release.Handle(t.Context(), commands.Release{ID: cancelled.ID}); err != nil || res.Released {
		t.Fatalf("release of a cancelled notification = %+v, %v", res, err)
	}

	now = expires
	if res, err := h.Release.Handle(t.Context(), commands.Release{ID: expiring.ID}); err != nil || res.Released || res.Status != domain.StatusExpired {
		t.Fatalf("release after expiry = %+v, %v; want expired", res, err)
	}
}

func streamTypes(t *testing.T, store *sqlite.Store, id domain.NotificationID) []string {
	t.Helper()
	recs, err := store.ReadStream(t.Context(), domain.NotificationStream(id), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.Type)
	}
	return out
}

// A batch item repeating an Idempotency-Key is judged against the
// original, not revalidated: the original's expires_at may have passed.
func TestBatchRepeatAfterExpiryReturnsTheOriginal(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := testNow
	h, err := commands.NewHandlers(commands.Deps{Store: store, Clock: func() time.Time { return now }, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	expires := testNow.Add(time.Hour)
	item := commands.BatchItem{IdempotencyKey: "order-17", Request: domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "u1", Email: "a@example.com"}, Channels: []domain.Channel{domain.ChannelEmail},
		Content: &domain.Content{Body: "soon"}, ExpiresAt: &expires,
	}}
	first, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{item}})
	if err != nil || first.Items[0].Err != nil || !first.Items[0].Created {
		t.Fatalf("first = %+v, %v", first.Items, err)
	}
	now = expires.Add(time.Hour)
	again, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{item}})
	if err != nil || again.Items[0].Err != nil || again.Items[0].Created || again.Items[0].ID != first.Items[0].ID {
		t.Fatalf("repeat after expiry = %+v, %v; want the original, not created", again.Items, err)
	}
	fresh := item
	fresh.IdempotencyKey = "order-18"
	late, err := h.SendBatch.Handle(t.Context(), commands.SendBatch{Items: []commands.BatchItem{fresh}})
	var ve *domain.ValidationError
	if err != nil || !errors.As(late.Items[0].Err, &ve) {
		t.Fatalf("a new item already expired = %+v, %v; want a validation error", late.Items, err)
	}
}
