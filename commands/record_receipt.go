package commands

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// RecordReceipt records a provider's asynchronous report about a delivery:
// delivered, bounced, failed or opened. It is how "sent" becomes
// "delivered" (or "failed") for email and SMS.
type RecordReceipt struct {
	Origin
	// Channel is the channel the provider reports for (the callback URL's).
	Channel           domain.Channel
	NotificationID    domain.NotificationID
	DeliveryID        domain.DeliveryID
	Outcome           domain.ReceiptOutcome
	Reason            string
	ProviderMessageID string
}

// RecordReceiptResult is the delivery's status after the receipt.
type RecordReceiptResult struct {
	NotificationID domain.NotificationID
	DeliveryID     domain.DeliveryID
	DeliveryStatus domain.DeliveryStatus
	Status         domain.NotificationStatus
	// Changed is false when an identical receipt had been recorded before
	// (providers repeat callbacks).
	Changed bool
}

// RecordReceiptHandler handles RecordReceipt. It is safe for concurrent
// use.
type RecordReceiptHandler struct {
	x     executor
	clock func() time.Time
}

// NewRecordReceiptHandler returns a RecordReceiptHandler, or an error
// naming every missing dependency.
func NewRecordReceiptHandler(d Deps) (*RecordReceiptHandler, error) {
	if err := d.validate("new record receipt handler"); err != nil {
		return nil, err
	}
	return &RecordReceiptHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle appends DeliveryReceiptRecorded. The channel must be known
// (ErrUnknownChannel otherwise); missing or inconsistent fields give a
// *domain.ValidationError; an unknown notification or delivery wraps
// domain.ErrNotificationNotFound or domain.ErrDeliveryNotFound; a receipt
// for a delivery never attempted or closed wraps the domain's refusal.
func (h *RecordReceiptHandler) Handle(ctx context.Context, cmd RecordReceipt) (RecordReceiptResult, error) {
	if !cmd.Channel.Valid() {
		return RecordReceiptResult{}, fmt.Errorf("record receipt for channel %q: %w", cmd.Channel, ErrUnknownChannel)
	}
	var fields []domain.FieldError
	if cmd.NotificationID == "" {
		fields = append(fields, domain.FieldError{Field: "notification_id", Problem: "is required"})
	}
	switch {
	case cmd.DeliveryID == "":
		fields = append(fields, domain.FieldError{Field: "delivery_id", Problem: "is required"})
	case cmd.DeliveryID.Channel() != cmd.Channel:
		fields = append(fields, domain.FieldError{Field: "delivery_id", Problem: fmt.Sprintf("must name a %s delivery (%s-<n>)", cmd.Channel, cmd.Channel)})
	}
	if !cmd.Outcome.Valid() {
		fields = append(fields, domain.FieldError{Field: "outcome", Problem: "must be one of delivered, bounced, failed, opened"})
	}
	if len(fields) > 0 {
		return RecordReceiptResult{}, &domain.ValidationError{Fields: fields}
	}
	if !validNotificationID(cmd.NotificationID) {
		return RecordReceiptResult{}, fmt.Errorf("record receipt %q: %w", cmd.NotificationID, domain.ErrNotificationNotFound)
	}
	now := h.clock()
	out, err := h.x.execute(ctx, cmd.NotificationID, cmd.metadata(cmd.NotificationID), func(state domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotification(state, domain.RecordReceipt{
			DeliveryID: cmd.DeliveryID, Outcome: cmd.Outcome, ProviderMessageID: cmd.ProviderMessageID,
			Reason: cmd.Reason, Now: now,
		})
	})
	if err != nil {
		return RecordReceiptResult{}, fmt.Errorf("record receipt %s/%s: %w", cmd.NotificationID, cmd.DeliveryID, err)
	}
	res := RecordReceiptResult{
		NotificationID: cmd.NotificationID, DeliveryID: cmd.DeliveryID,
		Status: out.State.Status(), Changed: len(out.Events) > 0,
	}
	if d, ok := out.State.Delivery(cmd.DeliveryID); ok {
		res.DeliveryStatus = d.Status()
	}
	return res, nil
}
