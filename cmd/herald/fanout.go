package main

import (
	"context"
	"fmt"

	"herald/adapters/fanout"
	"herald/commands"
)

// fanoutActor is the one actor under which group fan-outs and schedule
// firings send: the notification id derives from it and the item's
// idempotency key, so a chunk sent again after a crash finds its
// notifications instead of creating new ones.
const fanoutActor = "fanout"

// batchSender is fanout.Sender over the batch send handler: one group
// commit per chunk, each member planned through its preferences like any
// send.
type batchSender struct{ h *commands.SendBatchHandler }

func (s batchSender) SendBatch(ctx context.Context, items []fanout.Item) ([]fanout.ItemResult, error) {
	batch := make([]commands.BatchItem, len(items))
	for i, it := range items {
		batch[i] = commands.BatchItem{Request: it.Request, IdempotencyKey: it.IdempotencyKey}
	}
	res, err := s.h.Handle(ctx, commands.SendBatch{Origin: commands.Origin{Actor: fanoutActor}, Items: batch})
	if err != nil {
		return nil, fmt.Errorf("fan-out chunk: %w", err)
	}
	out := make([]fanout.ItemResult, len(items))
	for i, r := range res.Items {
		if r.Err != nil && commands.Transient(r.Err) {
			// Not a refusal: the item may go through when the chunk is
			// sent again (the items it created are found by their keys
			// then), where an item result would count it failed for good.
			return nil, fmt.Errorf("fan-out chunk: item %d: %w", i, r.Err)
		}
		out[i] = fanout.ItemResult{NotificationID: string(r.ID), Err: r.Err}
	}
	return out, nil
}
