package commands

import (
	"context"
	"fmt"
	"time"

	"herald/domain"
)

// Resend creates a new delivery on each chosen channel, repeating the
// latest delivery there. Empty Channels means every channel that had a
// delivery that was not suppressed.
type Resend struct {
	Origin
	ID       domain.NotificationID
	Channels []domain.Channel
	Reason   string
	// IdempotencyKey, when set, makes a repeat by the same actor return
	// the original resend (Repeated) instead of resending again; a repeat
	// asking for something else wraps domain.ErrIdempotencyConflict.
	IdempotencyKey string
}

// ResendResult lists the deliveries the resend created.
type ResendResult struct {
	ID         domain.NotificationID
	Status     domain.NotificationStatus
	Deliveries []domain.ResendDelivery
	// Repeated is true when the request repeated an earlier one with the
	// same Idempotency-Key: nothing was appended, Deliveries are the
	// original's.
	Repeated bool
}

// ResendHandler handles Resend. It is safe for concurrent use.
type ResendHandler struct {
	x     executor
	clock func() time.Time
}

// NewResendHandler returns a ResendHandler, or an error naming every
// missing dependency.
func NewResendHandler(d Deps) (*ResendHandler, error) {
	if err := d.validate("new resend handler"); err != nil {
		return nil, err
	}
	return &ResendHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock}, nil
}

// Handle appends ResendRequested, recording who asked and why; each new
// delivery names the one it repeats. It is all or nothing: a channel still
// busy (domain.ErrDeliveryInFlight), suppressed or never used refuses the
// whole resend. Unknown or repeated channels give a *domain.ValidationError.
func (h *ResendHandler) Handle(ctx context.Context, cmd Resend) (ResendResult, error) {
	if !validNotificationID(cmd.ID) {
		return ResendResult{}, fmt.Errorf("resend %q: %w", cmd.ID, domain.ErrNotificationNotFound)
	}
	var fields []domain.FieldError
	seen := map[domain.Channel]bool{}
	for i, ch := range cmd.Channels {
		switch {
		case !ch.Valid():
			fields = append(fields, domain.FieldError{Field: fmt.Sprintf("channels[%d]", i), Problem: fmt.Sprintf("unknown channel %q", ch)})
		case seen[ch]:
			fields = append(fields, domain.FieldError{Field: fmt.Sprintf("channels[%d]", i), Problem: fmt.Sprintf("duplicate channel %q", ch)})
		}
		seen[ch] = true
	}
	if cmd.IdempotencyKey != "" && !validIdempotencyKey(cmd.IdempotencyKey) {
		fields = append(fields, domain.FieldError{Field: "Idempotency-Key",
			Problem: fmt.Sprintf("must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLen)})
	}
	if len(fields) > 0 {
		return ResendResult{}, &domain.ValidationError{Fields: fields}
	}
	now := h.clock()
	out, err := h.x.execute(ctx, cmd.ID, cmd.metadata(cmd.ID), func(state domain.Notification) ([]domain.Event, error) {
		return domain.DecideNotification(state, domain.RequestResend{
			Channels: cmd.Channels, Actor: cmd.Actor, Reason: cmd.Reason, IdempotencyKey: cmd.IdempotencyKey, Now: now,
		})
	})
	if err != nil {
		return ResendResult{}, fmt.Errorf("resend %s: %w", cmd.ID, err)
	}
	res := ResendResult{ID: cmd.ID, Status: out.State.Status()}
	if len(out.Events) == 0 {
		orig, _ := out.State.ResendByKey(cmd.Actor, cmd.IdempotencyKey)
		res.Deliveries, res.Repeated = orig.Deliveries, true
	}
	for _, e := range out.Events {
		if rr, ok := e.(domain.ResendRequested); ok {
			res.Deliveries = append(res.Deliveries, rr.Deliveries...)
		}
	}
	return res, nil
}
