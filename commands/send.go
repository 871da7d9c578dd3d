package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// Send asks for one notification.
type Send struct {
	Origin
	// Request is the notification as the client gave it.
	Request domain.NotificationRequest
	// IdempotencyKey, when not empty, decides the notification ID (scoped
	// to Origin.Actor, see IdempotentNotificationID); a repeat with the same
	// request returns the original.
	IdempotencyKey string
}

// SendResult says where a Send landed.
type SendResult struct {
	ID     domain.NotificationID
	Status domain.NotificationStatus
	// Created is false when the request repeated an earlier one with the
	// same Idempotency-Key: nothing was appended and ID is the original.
	Created bool
}

// SendHandler handles Send. It is safe for concurrent use.
type SendHandler struct {
	x         executor
	clock     func() time.Time
	templates TemplateResolver // nil: sends naming a template are refused
	planner   Planner
}

// NewSendHandler returns a SendHandler, or an error naming every missing
// dependency.
func NewSendHandler(d Deps) (*SendHandler, error) {
	if err := d.validate("new send handler"); err != nil {
		return nil, err
	}
	return &SendHandler{x: executor{store: d.Store, newID: d.NewID}, clock: d.Clock, templates: d.Templates, planner: plannerOr(d.Planner)}, nil
}

// Handle validates the request and appends NotificationRequested, followed,
// unless the notification is scheduled for later, by its planned and
// suppressed deliveries, all in one append expecting no stream. When the
// stream exists already (an Idempotency-Key repeat) it returns the original
// with Created false if the request is the same, and an error wrapping
// domain.ErrIdempotencyConflict if it is not. An invalid request gives a
// *domain.ValidationError and appends nothing.
func (h *SendHandler) Handle(ctx context.Context, cmd Send) (SendResult, error) {
	id, err := notificationIDFor(cmd.Actor, cmd.IdempotencyKey, h.x.newID)
	if err != nil {
		return SendResult{}, err
	}
	now := h.clock()
	pinned, err := h.pinTemplate(ctx, cmd.Request, now)
	if err != nil {
		if cmd.IdempotencyKey != "" {
			// Perhaps a repeat, judged against the original whatever
			// became of its template since (a new version, archived).
			if res, rerr := h.resolveExisting(ctx, id, cmd, now); !errors.Is(rerr, errNoOriginal) {
				return res, rerr
			}
		}
		return SendResult{}, fmt.Errorf("send %s: %w", id, err)
	}
	return h.send(ctx, id, cmd, pinned, now)
}

// errNoOriginal says that the stream a repeat was to be judged against
// does not exist: the request is not a repeat after all.
var errNoOriginal = errors.New("no notification with this idempotency key yet")

// pinTemplate checks the template a request names against the channels it
// will go to and pins "the latest" to the version published now, so the
// ledger records exactly which version was sent. A request that is
// invalid anyway is returned as it is, for decide to report every field.
func (h *SendHandler) pinTemplate(ctx context.Context, req domain.NotificationRequest, now time.Time) (domain.NotificationRequest, error) {
	if req.Template == nil || req.Validate(now) != nil {
		return req, nil
	}
	if h.templates == nil {
		return req, &domain.ValidationError{Fields: []domain.FieldError{{
			Field: "template", Problem: "templates are not available on this server; send content instead",
		}}}
	}
	// Every channel the request names must be one the template can
	// render, planned to an address or not yet: an ID-only recipient's
	// addresses come from its profile when the planner runs, and a
	// channel checked only when the request itself had its address was
	// accepted here and dead-lettered at delivery for want of content.
	// Without names, the channels are those the request's addresses
	// give (CheckTemplateVars then asks for every required variable).
	channels := req.Channels
	if len(channels) == 0 {
		plans, _ := planFor(req)
		for _, p := range plans {
			channels = append(channels, p.Channel)
		}
	}
	ref, err := h.templates.Resolve(ctx, *req.Template, channels)
	if err != nil {
		return req, err
	}
	req.Template = &ref
	return req, nil
}

// send creates the notification from req, the client's request (in cmd)
// with its template pinned; a repeat is judged on cmd.Request, as the
// client sent it.
func (h *SendHandler) send(ctx context.Context, id domain.NotificationID, cmd Send, req domain.NotificationRequest, now time.Time) (SendResult, error) {
	// Optimistic create: almost every send names a new stream, so decide on
	// the empty state and append expecting no stream, which saves reading
	// the stream first. Only when it exists (an Idempotency-Key repeat) is
	// it loaded and the request decided against what is there.
	requested, events, err := decideRequest(domain.Notification{}, id, req, cmd.IdempotencyKey, now)
	if err != nil {
		if cmd.IdempotencyKey != "" {
			// A repeat is judged against the original, not revalidated:
			// its expires_at may have passed since it was accepted.
			if res, rerr := h.resolveExisting(ctx, id, cmd, now); !errors.Is(rerr, errNoOriginal) {
				return res, rerr
			}
		}
		return SendResult{}, fmt.Errorf("send %s: %w", id, err)
	}
	state, events, err := h.planDue(ctx, requested, events, now)
	if err != nil {
		return SendResult{}, fmt.Errorf("send %s: %w", id, err)
	}
	data, err := h.x.encode(events, cmd.metadata(id))
	if err != nil {
		return SendResult{}, fmt.Errorf("send %s: encode: %w", id, err)
	}
	_, err = h.x.store.Append(ctx, domain.NotificationStream(id), eventstore.NoStream, data...)
	switch {
	case err == nil:
		h.x.cache.put(state)
		return SendResult{ID: id, Status: state.Status(), Created: true}, nil
	case !errors.Is(err, eventstore.ErrWrongExpectedVersion):
		return SendResult{}, fmt.Errorf("send %s: append: %w", id, err)
	}
	return h.resolveExisting(ctx, id, cmd, now)
}

// resolveExisting decides a send against the stream already at its ID:
// the original when cmd.Request is the same, an idempotency conflict when
// not. It appends nothing, and returns an error wrapping errNoOriginal
// when there is no such stream.
func (h *SendHandler) resolveExisting(ctx context.Context, id domain.NotificationID, cmd Send, now time.Time) (SendResult, error) {
	out, err := h.x.execute(ctx, id, cmd.metadata(id), func(state domain.Notification) ([]domain.Event, error) {
		if !state.Exists() {
			// Creating belongs to the full path (template pinned,
			// recipient planned), not to this one.
			return nil, errNoOriginal
		}
		// Against an existing notification deciding yields no events
		// (the same request) or a conflict: nothing to plan.
		return domain.DecideNotification(state, domain.RequestNotification{
			ID: id, Request: cmd.Request, IdempotencyKey: cmd.IdempotencyKey, Now: now,
		})
	})
	if err != nil {
		return SendResult{}, fmt.Errorf("send %s: %w", id, err)
	}
	return SendResult{ID: id, Status: out.State.Status(), Created: len(out.Events) > 0}, nil
}

// notificationIDFor derives the ID from the Idempotency-Key, or draws a
// fresh one.
func notificationIDFor(actor, key string, newID func() string) (domain.NotificationID, error) {
	if key == "" {
		return domain.NotificationID(newID()), nil
	}
	if !validIdempotencyKey(key) {
		return "", &domain.ValidationError{Fields: []domain.FieldError{{
			Field:   "Idempotency-Key",
			Problem: fmt.Sprintf("must be 1 to %d printable ASCII characters", MaxIdempotencyKeyLen),
		}}}
	}
	return IdempotentNotificationID(actor, key), nil
}

// decideRequest decides req against state and returns the state the
// decided events lead to. Deciding validates and normalizes the request,
// once: the planner gets it from the state.
func decideRequest(state domain.Notification, id domain.NotificationID, req domain.NotificationRequest, key string, now time.Time) (domain.Notification, []domain.Event, error) {
	events, err := domain.DecideNotification(state, domain.RequestNotification{
		ID: id, Request: req, IdempotencyKey: key, Now: now,
	})
	if err != nil || len(events) == 0 {
		return state, events, err
	}
	return evolveAll(state, events), events, nil
}

// due reports whether a request just decided (into events) is to be
// planned now: planning a scheduled notification is the scheduler's job,
// at scheduled_at, when the recipient's addresses are current.
func due(requested domain.Notification, events []domain.Event, now time.Time) bool {
	if len(events) == 0 {
		return false
	}
	at := requested.ScheduledAt()
	return at.IsZero() || !now.Before(at)
}

// planDue appends to events, those of a request just decided (into
// requested), its plan from the planner when it is due now, and returns
// the state all of them lead to, which the caller caches once they are
// appended instead of folding them again.
func (h *SendHandler) planDue(ctx context.Context, requested domain.Notification, events []domain.Event, now time.Time) (domain.Notification, []domain.Event, error) {
	if !due(requested, events, now) {
		return requested, events, nil
	}
	d, err := h.planner.Plan(ctx, requested.Request(), now)
	if err != nil {
		return domain.Notification{}, nil, fmt.Errorf("plan: %w", err)
	}
	planned, err := domain.DecideNotification(requested, planCommand(d, now))
	if err != nil {
		return domain.Notification{}, nil, err
	}
	return evolveAll(requested, planned), append(events, planned...), nil
}

// planFor resolves channels and addresses from the request alone (profiles,
// preferences and quiet hours are not modelled yet).
//
// Channels named by the request are each planned to the recipient's address
// for them, or suppressed with "no address for channel". An empty channel
// list means every channel the recipient has an address for, except web
// push: a push subscription is not something a request can show, so
// implicit push to every recipient with an ID would be a surprise. A
// recipient with only an ID therefore gets an in-app delivery.
func planFor(req domain.NotificationRequest) ([]domain.DeliveryPlan, []domain.Suppression) {
	channels := req.Channels
	if len(channels) == 0 {
		for _, ch := range req.Recipient.Channels() {
			if ch != domain.ChannelWebPush {
				channels = append(channels, ch)
			}
		}
	}
	var plans []domain.DeliveryPlan
	var suppressions []domain.Suppression
	for _, ch := range channels {
		if addr := req.Recipient.Address(ch); addr != "" {
			plans = append(plans, domain.DeliveryPlan{Channel: ch, Address: addr})
		} else {
			suppressions = append(suppressions, domain.Suppression{Channel: ch, Reason: "no address for channel"})
		}
	}
	return plans, suppressions
}
