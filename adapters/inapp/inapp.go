// Package inapp is the in-app channel. Its delivery is the ledger itself:
// a successful attempt appends DeliverySucceeded (confirmed), the inbox
// projection shows the item, and the live feed (readapi/livefeed) pushes
// it to the recipient's connected clients. Nothing leaves the process, so
// an attempt fails only when the delivery has no recipient to file it
// under.
package inapp

import (
	"context"

	"herald/adapters/channel"
)

// Sender files in-app deliveries. The zero value is ready to use.
type Sender struct{}

var _ channel.Sender = Sender{}

// Send confirms the delivery at once: the recipient's inbox is a view of
// the event the dispatcher records next.
func (Sender) Send(ctx context.Context, m channel.Message) (channel.Result, error) {
	if err := ctx.Err(); err != nil {
		return channel.Result{}, channel.Retryable("cancelled before filing", err)
	}
	if m.Address == "" {
		return channel.Result{}, channel.Permanent("in-app delivery without a recipient id", nil)
	}
	return channel.Result{Confirmed: true}, nil
}
