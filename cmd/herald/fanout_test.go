package main

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"herald/adapters/fanout"
	"herald/commands"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

// A chunk item refused for good is an item result; one that failed for a
// reason a retry may cure fails the chunk, which fan-outs and schedule
// firings send again, instead of counting it failed for good.
func TestBatchSenderFailsTheChunkOnTransientItemErrors(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := commands.NewSendBatchHandler(commands.Deps{Store: store, Clock: time.Now, NewID: commands.UUIDv7})
	if err != nil {
		t.Fatal(err)
	}
	s := batchSender{h}
	valid := domain.NotificationRequest{Recipient: domain.Recipient{ID: "u1"}, Channels: []domain.Channel{domain.ChannelInApp},
		Content: &domain.Content{Body: "hi"}}
	res, err := s.SendBatch(t.Context(), []fanout.Item{
		{RecipientID: "u1", Request: valid, IdempotencyKey: "k1"},
		{RecipientID: "u2", Request: domain.NotificationRequest{Recipient: domain.Recipient{ID: "u2"}}, IdempotencyKey: "k2"},
	})
	if err != nil || len(res) != 2 || res[0].Err != nil || res[1].Err == nil {
		t.Fatalf("a chunk with one invalid item = %+v, %v; want the valid one created, the other refused", res, err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	res, err = s.SendBatch(t.Context(), []fanout.Item{{RecipientID: "u3", Request: valid, IdempotencyKey: "k3"}})
	if !errors.Is(err, eventstore.ErrClosed) {
		t.Fatalf("a chunk on a closed store = %+v, %v; want the chunk failed with the store's error", res, err)
	}
}
