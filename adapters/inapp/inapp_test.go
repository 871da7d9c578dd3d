package inapp_test

import (
	"context"
	"testing"

	"herald/adapters/channel"
	"herald/adapters/inapp"
)

func TestSend(t *testing.T) {
	t.Parallel()
	res, err := inapp.Sender{}.Send(context.Background(), channel.Message{Address: "user-1"})
	if err != nil || !res.Confirmed {
		t.Fatalf("Send = %+v, %v; want confirmed", res, err)
	}
	_, err = inapp.Sender{}.Send(context.Background(), channel.Message{})
	if f := channel.Classify(err); f == nil || f.Retryable {
		t.Fatalf("no recipient: %v, want a permanent failure", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = inapp.Sender{}.Send(ctx, channel.Message{Address: "user-1"})
	if f := channel.Classify(err); f == nil || !f.Retryable {
		t.Fatalf("cancelled: %v, want a retryable failure", err)
	}
}
