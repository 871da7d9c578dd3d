package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"herald/commands/jsonbody"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"herald/domain"
)

// Default body limits.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultMaxBatchBodyBytes = 32 << 20
)

// HTTPOptions configure the command endpoints.
type HTTPOptions struct {
	// Actor names the caller of a request, normally the authenticated API
	// key's name (set by Middleware). It scopes Idempotency-Keys and is
	// recorded on every event. Nil, or an empty name, means "anonymous".
	Actor func(*http.Request) string
	// Middleware wraps every route, outermost first; authentication and
	// scope checks belong here.
	Middleware []func(http.Handler) http.Handler
	// MaxBodyBytes bounds the body of every request but a batch. Zero
	// means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBatchBodyBytes bounds a batch body. Zero means
	// DefaultMaxBatchBodyBytes.
	MaxBatchBodyBytes int64
}

func (o *HTTPOptions) setDefaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxBatchBodyBytes <= 0 {
		o.MaxBatchBodyBytes = DefaultMaxBatchBodyBytes
	}
}

// NewHTTP returns the command endpoints:
//
//	POST /v1/notifications                 one notification: 202, or 200 for an idempotent repeat
//	POST /v1/notifications/batch           up to MaxBatchItems notifications
//	POST /v1/notifications/{id}/cancel     200
//	POST /v1/notifications/{id}/resend     202
//	POST /v1/receipts/{channel}            a provider's delivery report: 200
//	POST /v1/recipients/{id}/inbox/{notificationId}/read   an in-app item read: 200
//
// Every error is application/problem+json with a type from ProblemTypes.
// A refused request appends nothing. It panics if a handler is missing, as
// http.Handle does for a nil handler: that is a wiring bug, not a runtime
// condition.
func NewHTTP(h Handlers, opt HTTPOptions) http.Handler {
	if m := h.missing(); len(m) > 0 {
		panic("commands.NewHTTP: missing handlers: " + strings.Join(m, ", "))
	}
	opt.setDefaults()
	a := &api{h: h, opt: opt}
	r := chi.NewRouter()
	r.Use(recoverProblem)
	r.Use(opt.Middleware...)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errRouteNotFound)) })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errMethodNotAllowed)) })
	r.Post("/v1/notifications", a.send)
	r.Post("/v1/notifications/batch", a.sendBatch)
	r.Post("/v1/notifications/{id}/cancel", a.cancel)
	r.Post("/v1/notifications/{id}/resend", a.resend)
	r.Post("/v1/receipts/{channel}", a.receipt)
	r.Post("/v1/recipients/{id}/inbox/{notificationId}/read", a.markRead)
	return r
}

type api struct {
	h   Handlers
	opt HTTPOptions
}

// recoverProblem turns a panic (a bug, never bad input) into a 500 problem
// rather than a dropped connection. http.ErrAbortHandler keeps its meaning.
func recoverProblem(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeProblem(w, problemFor(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (a *api) origin(r *http.Request) Origin {
	o := Origin{CorrelationID: headerID(r, "X-Correlation-ID"), CausationID: headerID(r, "X-Request-ID")}
	if o.CausationID == "" {
		o.CausationID = middleware.GetReqID(r.Context())
	}
	if a.opt.Actor != nil {
		o.Actor = a.opt.Actor(r)
	}
	if o.Actor == "" {
		o.Actor = "anonymous"
	}
	return o
}

// headerID returns a tracing header when it is short and printable, ""
// otherwise: it goes into every event, so junk is dropped, not refused.
func headerID(r *http.Request, name string) string {
	v := r.Header.Get(name)
	if len(v) > 128 || !validIdempotencyKey(v) {
		return ""
	}
	return v
}

func statusURL(id domain.NotificationID) string { return "/v1/notifications/" + string(id) }

type notificationJSON struct {
	ID        domain.NotificationID     `json:"id"`
	Status    domain.NotificationStatus `json:"status"`
	StatusURL string                    `json:"status_url"`
}

func (a *api) send(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.opt.MaxBodyBytes, false)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var req domain.NotificationRequest
	if err := decodeStrict(body, &req); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.h.Send.Handle(r.Context(), Send{
		Origin: a.origin(r), Request: req, IdempotencyKey: r.Header.Get("Idempotency-Key"),
	})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	status := http.StatusAccepted
	if !res.Created {
		status = http.StatusOK
	}
	w.Header().Set("Location", statusURL(res.ID))
	writeJSON(w, status, notificationJSON{ID: res.ID, Status: res.Status, StatusURL: statusURL(res.ID)})
}

// batchRequestJSON is the body of POST /v1/notifications/batch. Items are
// kept raw so that one malformed item refuses only itself.
type batchRequestJSON struct {
	Items []json.RawMessage `json:"items"`
}

// batchItemRequestJSON is one item: a notification request plus its own
// optional idempotency key.
type batchItemRequestJSON struct {
	domain.NotificationRequest
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// batchItemJSON is one item's fate in the answer: id and status, or the
// problem that refused it.
type batchItemJSON struct {
	Index     int                       `json:"index"`
	ID        domain.NotificationID     `json:"id,omitempty"`
	Status    domain.NotificationStatus `json:"status,omitempty"`
	StatusURL string                    `json:"status_url,omitempty"`
	Created   bool                      `json:"created"`
	Problem   *Problem                  `json:"problem,omitempty"`
}

type batchResponseJSON struct {
	Accepted int             `json:"accepted"`
	Repeated int             `json:"repeated"`
	Rejected int             `json:"rejected"`
	Items    []batchItemJSON `json:"items"`
}

// sendBatch answers 202 when at least one item was created, 200 when every
// accepted item repeated an earlier request, and a 422 validation-failed
// problem listing every item when none was accepted. A batch Idempotency-Key
// header gives each item without a key of its own the key
// "<batch key>#<index>", so a retried batch creates nothing twice.
func (a *api) sendBatch(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.opt.MaxBatchBodyBytes, false)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var br batchRequestJSON
	if err := decodeStrict(body, &br); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	if len(br.Items) > MaxBatchItems {
		writeProblem(w, problemFor(fmt.Errorf("batch of %d items, at most %d: %w", len(br.Items), MaxBatchItems, ErrTooManyItems)))
		return
	}
	batchKey := r.Header.Get("Idempotency-Key")
	if batchKey != "" && (!validIdempotencyKey(batchKey) || len(batchKey) > maxBatchIdempotencyKeyLen) {
		writeProblem(w, problemFor(&domain.ValidationError{Fields: []domain.FieldError{{
			Field: "Idempotency-Key", Problem: fmt.Sprintf("must be 1 to %d printable ASCII characters (each item's key is it followed by #<index>)", maxBatchIdempotencyKeyLen),
		}}}))
		return
	}

	out := make([]batchItemJSON, len(br.Items))
	cmd := SendBatch{Origin: a.origin(r)}
	var indexes []int // item index in the body of each cmd.Items entry
	for i, raw := range br.Items {
		out[i].Index = i
		var it batchItemRequestJSON
		if err := decodeStrict(raw, &it); err != nil {
			var ve *domain.ValidationError
			if errors.As(err, &ve) {
				// The item type embeds the request; its Go name is no
				// part of the JSON path.
				for k := range ve.Fields {
					ve.Fields[k].Field = strings.TrimPrefix(ve.Fields[k].Field, "NotificationRequest.")
				}
			}
			p := problemFor(err)
			out[i].Problem = &p
			continue
		}
		if it.IdempotencyKey == "" && batchKey != "" {
			it.IdempotencyKey = fmt.Sprintf("%s#%d", batchKey, i)
		}
		cmd.Items = append(cmd.Items, BatchItem{Request: it.NotificationRequest, IdempotencyKey: it.IdempotencyKey})
		indexes = append(indexes, i)
	}

	var res SendBatchResult
	if len(cmd.Items) > 0 || len(br.Items) == 0 {
		res, err = a.h.SendBatch.Handle(r.Context(), cmd)
		if err != nil {
			writeProblem(w, problemFor(err))
			return
		}
	}
	for k, it := range res.Items {
		o := &out[indexes[k]]
		// A refused item has no notification, unless the refusal is that
		// its key already names one.
		if it.Err == nil || errors.Is(it.Err, domain.ErrNotificationExists) {
			o.ID = it.ID
		}
		if it.Err != nil {
			p := problemFor(it.Err)
			o.Problem = &p
			continue
		}
		o.Status, o.StatusURL, o.Created = it.Status, statusURL(it.ID), it.Created
	}

	var resp batchResponseJSON
	resp.Items = out
	for _, o := range out {
		switch {
		case o.Problem != nil:
			resp.Rejected++
		case o.Created:
			resp.Accepted++
		default:
			resp.Repeated++
		}
	}
	switch {
	case resp.Accepted > 0:
		writeJSON(w, http.StatusAccepted, resp)
	case resp.Repeated > 0:
		writeJSON(w, http.StatusOK, resp)
	default:
		p := problemFor(&domain.ValidationError{Fields: flattenItemProblems(out)})
		if shared := sharedProblem(out); shared != nil {
			// Every item was refused for one reason (all of them reuse
			// keys with other requests, say): the batch answers as one
			// such item would.
			p.Type, p.Title, p.Status = shared.Type, shared.Title, shared.Status
		}
		p.Detail = "no item of the batch was accepted; see errors and items"
		p.Items = out
		writeProblem(w, p)
	}
}

// maxBatchIdempotencyKeyLen bounds a batch's Idempotency-Key so that every
// item's key, the batch key followed by "#<index>", stays within
// MaxIdempotencyKeyLen.
var maxBatchIdempotencyKeyLen = MaxIdempotencyKeyLen - len(fmt.Sprintf("#%d", MaxBatchItems-1))

// sharedProblem returns the problem every item has when all have the same
// type, or nil.
func sharedProblem(items []batchItemJSON) *Problem {
	var shared *Problem
	for _, o := range items {
		if o.Problem == nil || (shared != nil && o.Problem.Type != shared.Type) {
			return nil
		}
		shared = o.Problem
	}
	return shared
}

// flattenItemProblems lists every refused item's problems with field names
// prefixed by "items[i]".
func flattenItemProblems(items []batchItemJSON) []domain.FieldError {
	var out []domain.FieldError
	for _, it := range items {
		if it.Problem == nil {
			continue
		}
		prefix := fmt.Sprintf("items[%d]", it.Index)
		if len(it.Problem.Errors) == 0 {
			out = append(out, domain.FieldError{Field: prefix, Problem: it.Problem.Title})
		}
		for _, f := range it.Problem.Errors {
			out = append(out, domain.FieldError{Field: prefix + "." + f.Field, Problem: f.Problem})
		}
	}
	return out
}

type cancelRequestJSON struct {
	Reason string `json:"reason"`
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.opt.MaxBodyBytes, true)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var req cancelRequestJSON
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			writeProblem(w, problemFor(err))
			return
		}
	}
	id := domain.NotificationID(chi.URLParam(r, "id"))
	res, err := a.h.Cancel.Handle(r.Context(), Cancel{Origin: a.origin(r), ID: id, Reason: req.Reason})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, notificationJSON{ID: res.ID, Status: res.Status, StatusURL: statusURL(res.ID)})
}

type resendRequestJSON struct {
	Channels []domain.Channel `json:"channels"`
	Reason   string           `json:"reason"`
}

type resendResponseJSON struct {
	notificationJSON
	Deliveries []domain.ResendDelivery `json:"deliveries"`
}

func (a *api) resend(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, a.opt.MaxBodyBytes, true)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var req resendRequestJSON
	if len(body) > 0 {
		if err := decodeStrict(body, &req); err != nil {
			writeProblem(w, problemFor(err))
			return
		}
	}
	id := domain.NotificationID(chi.URLParam(r, "id"))
	res, err := a.h.Resend.Handle(r.Context(), Resend{Origin: a.origin(r), ID: id, Channels: req.Channels, Reason: req.Reason,
		IdempotencyKey: r.Header.Get("Idempotency-Key")})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	code := http.StatusAccepted
	if res.Repeated {
		code = http.StatusOK
	}
	writeJSON(w, code, resendResponseJSON{
		notificationJSON: notificationJSON{ID: res.ID, Status: res.Status, StatusURL: statusURL(res.ID)},
		Deliveries:       res.Deliveries,
	})
}

type receiptRequestJSON struct {
	NotificationID    domain.NotificationID `json:"notification_id"`
	DeliveryID        domain.DeliveryID     `json:"delivery_id"`
	Outcome           domain.ReceiptOutcome `json:"outcome"`
	Reason            string                `json:"reason"`
	ProviderMessageID string                `json:"provider_message_id"`
}

type receiptResponseJSON struct {
	NotificationID domain.NotificationID     `json:"notification_id"`
	DeliveryID     domain.DeliveryID         `json:"delivery_id"`
	DeliveryStatus domain.DeliveryStatus     `json:"delivery_status"`
	Status         domain.NotificationStatus `json:"status"`
	Recorded       bool                      `json:"recorded"`
}

func (a *api) receipt(w http.ResponseWriter, r *http.Request) {
	ch := domain.Channel(chi.URLParam(r, "channel"))
	if !ch.Valid() {
		writeProblem(w, problemFor(fmt.Errorf("receipts for %q: %w", ch, ErrUnknownChannel)))
		return
	}
	body, err := readBody(w, r, a.opt.MaxBodyBytes, false)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var req receiptRequestJSON
	if err := decodeStrict(body, &req); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.h.RecordReceipt.Handle(r.Context(), RecordReceipt{
		Origin: a.origin(r), Channel: ch, NotificationID: req.NotificationID, DeliveryID: req.DeliveryID,
		Outcome: req.Outcome, Reason: req.Reason, ProviderMessageID: req.ProviderMessageID,
	})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, receiptResponseJSON{
		NotificationID: res.NotificationID, DeliveryID: res.DeliveryID,
		DeliveryStatus: res.DeliveryStatus, Status: res.Status, Recorded: res.Changed,
	})
}

// readBody checks the content type and reads at most limit bytes. With
// optional, an empty body without a content type is allowed (cancel and
// resend need no body).
func readBody(w http.ResponseWriter, r *http.Request, limit int64, optional bool) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	untyped := ct == "" && optional
	if !untyped {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, fmt.Errorf("content type %q: %w", ct, errUnsupportedMediaType)
		}
	}
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, &malformedJSONError{Detail: "reading the body: " + err.Error()}
	}
	if untyped && len(body) > 0 {
		return nil, fmt.Errorf("a body without a content type: %w", errUnsupportedMediaType)
	}
	if len(bytes.TrimSpace(body)) == 0 && !optional {
		return nil, &malformedJSONError{Detail: "the body is empty"}
	}
	return body, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data (numbers as float64, as the request types
// expect).
func decodeStrict(data []byte, v any) error { return jsonbody.Strict(data, v, false) }

type markReadResponseJSON struct {
	NotificationID domain.NotificationID `json:"notification_id"`
	DeliveryID     domain.DeliveryID     `json:"delivery_id"`
	Read           bool                  `json:"read"`
	Changed        bool                  `json:"changed"`
}

// markRead takes no body: the path names the recipient and the item.
func (a *api) markRead(w http.ResponseWriter, r *http.Request) {
	id := domain.NotificationID(chi.URLParam(r, "notificationId"))
	res, err := a.h.MarkRead.Handle(r.Context(), MarkRead{Origin: a.origin(r), RecipientID: chi.URLParam(r, "id"), NotificationID: id})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, markReadResponseJSON{NotificationID: res.NotificationID, DeliveryID: res.DeliveryID, Read: true, Changed: res.Changed})
}
