package commands

import (
	"context"
	"errors"
	"fmt"

	"herald/domain"
	"herald/infra/eventstore"
)

// MaxBatchItems is the most items one SendBatch may carry.
const MaxBatchItems = 10_000

// SendBatch asks for many notifications at once. Items are independent:
// each is validated and accepted or refused on its own.
type SendBatch struct {
	Origin
	Items []BatchItem
}

// BatchItem is one notification of a batch.
type BatchItem struct {
	Request domain.NotificationRequest
	// IdempotencyKey works as in Send, item by item.
	IdempotencyKey string
}

// SendBatchResult lists one result per item, in item order.
type SendBatchResult struct {
	Items []BatchItemResult
}

// BatchItemResult is the fate of one item: ID and Status when Err is nil,
// otherwise Err (a *domain.ValidationError, an error wrapping
// domain.ErrIdempotencyConflict, ...). ID is set whenever it was known.
type BatchItemResult struct {
	Index   int
	ID      domain.NotificationID
	Status  domain.NotificationStatus
	Created bool
	Err     error
}

// Counts returns how many items were created, repeated an earlier request
// (idempotent hits) and failed.
func (r SendBatchResult) Counts() (created, repeated, failed int) {
	for _, it := range r.Items {
		switch {
		case it.Err != nil:
			failed++
		case it.Created:
			created++
		default:
			repeated++
		}
	}
	return created, repeated, failed
}

// SendBatchHandler handles SendBatch. It is safe for concurrent use.
type SendBatchHandler struct {
	send *SendHandler
}

// NewSendBatchHandler returns a SendBatchHandler, or an error naming every
// missing dependency.
func NewSendBatchHandler(d Deps) (*SendBatchHandler, error) {
	s, err := NewSendHandler(d)
	if err != nil {
		return nil, fmt.Errorf("new send batch handler: %w", err)
	}
	return &SendBatchHandler{send: s}, nil
}

// Handle validates every item alone and appends all valid ones with a
// single AppendMany (one group commit), each to its own new stream. An item
// whose stream already exists (an Idempotency-Key seen before) is then
// resolved exactly like Send: the original when the request is the same,
// an idempotency conflict when not. Two items of one batch with the same key
// are resolved the same way against each other.
//
// It returns an error only when the batch as a whole is refused: more than
// MaxBatchItems items (ErrTooManyItems), or no items (a
// *domain.ValidationError); otherwise per-item failures are in the result.
func (h *SendBatchHandler) Handle(ctx context.Context, cmd SendBatch) (SendBatchResult, error) {
	switch {
	case len(cmd.Items) > MaxBatchItems:
		return SendBatchResult{}, fmt.Errorf("send batch of %d items, at most %d: %w", len(cmd.Items), MaxBatchItems, ErrTooManyItems)
	case len(cmd.Items) == 0:
		return SendBatchResult{}, &domain.ValidationError{Fields: []domain.FieldError{{Field: "items", Problem: "must hold at least one item"}}}
	}
	now := h.send.clock()
	x := h.send.x
	res := SendBatchResult{Items: make([]BatchItemResult, len(cmd.Items))}

	type pendingItem struct {
		index int
		state domain.Notification // what the item's events lead to
	}
	var reqs []eventstore.AppendRequest
	var pending []pendingItem
	firstWithID := map[domain.NotificationID]int{}
	var exists []int  // items whose stream may already be there
	var repeats []int // items whose ID another item of this batch already uses

	if pf, ok := h.send.planner.(Prefetcher); ok {
		reqs := make([]domain.NotificationRequest, len(cmd.Items))
		for i, item := range cmd.Items {
			reqs[i] = item.Request
		}
		_ = pf.Prefetch(ctx, reqs, now) // on failure, each item is planned on its own
	}
	for i, item := range cmd.Items {
		r := &res.Items[i]
		r.Index = i
		id, err := notificationIDFor(cmd.Actor, item.IdempotencyKey, x.newID)
		if err != nil {
			r.Err = &domain.ValidationError{Fields: []domain.FieldError{{
				Field: "idempotency_key", Problem: fmt.Sprintf("must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLen),
			}}}
			continue
		}
		r.ID = id
		if _, dup := firstWithID[id]; dup {
			repeats = append(repeats, i)
			continue
		}
		firstWithID[id] = i
		req, err := h.send.pinTemplate(ctx, item.Request, now)
		if err != nil {
			if item.IdempotencyKey != "" {
				exists = append(exists, i) // perhaps a repeat, see below
				continue
			}
			r.Err = err
			continue
		}
		requested, events, err := decideRequest(domain.Notification{}, id, req, item.IdempotencyKey, now)
		if err != nil {
			if item.IdempotencyKey != "" {
				// Perhaps a repeat: judged against the original, as a
				// single send is, not revalidated (its expires_at may
				// have passed since it was accepted).
				exists = append(exists, i)
				continue
			}
			r.Err = err
			continue
		}
		state, events, err := h.send.planDue(ctx, requested, events, now)
		if err != nil {
			r.Err = err
			continue
		}
		data, err := x.encode(events, cmd.metadata(id))
		if err != nil {
			r.Err = fmt.Errorf("encode %s: %w", id, err)
			continue
		}
		reqs = append(reqs, eventstore.AppendRequest{
			Stream: domain.NotificationStream(id), Expected: eventstore.NoStream, Events: data,
		})
		pending = append(pending, pendingItem{index: i, state: state})
	}

	if len(reqs) > 0 {
		_, errs := x.store.AppendMany(ctx, reqs)
		for k, p := range pending {
			r := &res.Items[p.index]
			switch err := errs[k]; {
			case err == nil:
				x.cache.put(p.state)
				r.Status = p.state.Status()
				r.Created = true
			case errors.Is(err, eventstore.ErrWrongExpectedVersion):
				exists = append(exists, p.index)
			default:
				r.Err = fmt.Errorf("append %s: %w", r.ID, err)
			}
		}
	}

	// Rare paths, one item at a time, as single sends: the key was used
	// before this batch, or twice inside it. A send judges a repeat
	// against the original as the client sent it, and creates the
	// notification in full (template pinned, recipient planned) when there
	// is none: the first item with the key may have been refused.
	for _, i := range append(exists, repeats...) {
		if err := ctx.Err(); err != nil {
			res.Items[i].Err = err
			continue
		}
		sr, err := h.send.Handle(ctx, Send{
			Origin: cmd.Origin, Request: cmd.Items[i].Request, IdempotencyKey: cmd.Items[i].IdempotencyKey,
		})
		if err != nil {
			res.Items[i].Err = err
			continue
		}
		res.Items[i].Status, res.Items[i].Created = sr.Status, sr.Created
	}
	return res, nil
}
