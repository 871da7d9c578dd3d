package readapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// AuditLog is the part of the event log the audit trail reads; an
// eventstore.Store has it. ReadStream returns up to limit events of stream
// with version > after in version order, and ErrStreamNotFound for a stream
// with no events.
type AuditLog interface {
	ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]eventstore.RecordedEvent, error)
}

// ProjectionAdmin is what the admin endpoints need of the projection
// runner; *projections.Runner has it.
type ProjectionAdmin interface {
	Status(ctx context.Context) ([]projections.ProjectionStatus, error)
	StartRebuild(projection string) error
}

// Views are the ports the read API answers from. A nil port makes its
// routes answer 503 unavailable (a role that does not serve them), never
// panic.
type Views struct {
	Notifications projections.NotificationView
	Search        projections.Search
	Inbox         projections.Inbox
	Analytics     projections.Analytics
	Audit         AuditLog
	Projections   ProjectionAdmin
}

// Options configure the read API. The zero value serves every route open.
type Options struct {
	// RequireRead wraps every query route (the "read" scope); nil = open.
	RequireRead func(http.Handler) http.Handler
	// RequireAdmin wraps the admin routes (the "admin" scope); nil = open.
	RequireAdmin func(http.Handler) http.Handler
	// Now is the clock for default analytics ranges; nil means time.Now.
	Now func() time.Time
}

// Limits on analytics queries.
const (
	// DefaultRange is the analytics range when from is not given: the
	// DefaultRange before to.
	DefaultRange = 24 * time.Hour
	// MaxBuckets bounds how many time buckets a deliveries query may span.
	MaxBuckets = 10_080 // a week of minutes
	// auditPage is the page size the audit trail reads the stream with.
	auditPage = 1000
)

// NewHTTP returns the read API:
//
//	GET  /v1/notifications/{id}                   status and deliveries
//	GET  /v1/notifications/{id}/events            audit trail from the log, oldest first
//	GET  /v1/notifications?status=&channel=&priority=&category=&recipient=&batch=&from=&to=&limit=&cursor=
//	GET  /v1/recipients/{id}/inbox?unread=&limit=&cursor=
//	GET  /v1/analytics/deliveries?from=&to=&bucket=minute|hour|day&group_by=channel,status,priority&channel=&status=&priority=
//	GET  /v1/analytics/latency?channel=&from=&to=
//	GET  /v1/analytics/failures?from=&to=&channel=
//	GET  /v1/admin/projections                    (admin)
//	POST /v1/admin/projections/{name}/rebuild     (admin) 202, rebuild runs in the background
//
// Times are RFC 3339. Every error is application/problem+json with a type
// from ProblemTypes; a bad parameter is a 400 invalid-query naming it.
func NewHTTP(v Views, opt Options) http.Handler {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	open := func(h http.Handler) http.Handler { return h }
	read, admin := opt.RequireRead, opt.RequireAdmin
	if read == nil {
		read = open
	}
	if admin == nil {
		admin = open
	}
	a := &api{v: v, now: opt.Now}
	r := chi.NewRouter()
	r.Use(recoverProblem)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, errRouteNotFound) })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, errMethodNotAllowed) })
	r.Group(func(r chi.Router) {
		r.Use(read)
		r.Get("/v1/notifications/{id}", a.notification)
		r.Get("/v1/notifications/{id}/events", a.events)
		r.Get("/v1/notifications", a.search)
		r.Get("/v1/recipients/{id}/inbox", a.inbox)
		r.Get("/v1/analytics/deliveries", a.deliveries)
		r.Get("/v1/analytics/latency", a.latency)
		r.Get("/v1/analytics/failures", a.failures)
	})
	r.Group(func(r chi.Router) {
		r.Use(admin)
		r.Get("/v1/admin/projections", a.projections)
		r.Post("/v1/admin/projections/{name}/rebuild", a.rebuild)
	})
	return r
}

type api struct {
	v   Views
	now func() time.Time
}

// recoverProblem turns a panic (a bug, never bad input) into a 500 problem.
func recoverProblem(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeProblem(w, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// ---- responses ----

type deliveryJSON struct {
	ID                string     `json:"id"`
	Channel           string     `json:"channel"`
	Address           string     `json:"address"`
	Status            string     `json:"status"`
	Attempts          int        `json:"attempts"`
	LastError         string     `json:"last_error"`
	ProviderMessageID string     `json:"provider_message_id"`
	NextAttemptAt     *time.Time `json:"next_attempt_at,omitempty"`
	Repeats           string     `json:"repeats,omitempty"`
	SuppressionReason string     `json:"suppression_reason,omitempty"`
}

type summaryJSON struct {
	ID          string    `json:"id"`
	Status      string    `json:"status"`
	Priority    string    `json:"priority"`
	Category    string    `json:"category"`
	RecipientID string    `json:"recipient_id"`
	BatchID     string    `json:"batch_id,omitempty"`
	Channels    []string  `json:"channels"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type notificationJSON struct {
	summaryJSON
	Recipient  domain.Recipient `json:"recipient"`
	Version    int              `json:"version"`
	Deliveries []deliveryJSON   `json:"deliveries"`
}

func summaryOf(s projections.NotificationSummary) summaryJSON {
	out := summaryJSON{
		ID: string(s.ID), Status: string(s.Status), Priority: string(s.Priority), Category: s.Category,
		RecipientID: s.RecipientID, BatchID: s.BatchID, Channels: []string{}, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	for _, c := range s.Channels {
		out.Channels = append(out.Channels, string(c))
	}
	return out
}

// ---- handlers ----

func (a *api) notification(w http.ResponseWriter, r *http.Request) {
	if a.v.Notifications == nil {
		writeProblem(w, errUnavailable)
		return
	}
	d, err := a.v.Notifications.Notification(r.Context(), domain.NotificationID(chi.URLParam(r, "id")))
	if err != nil {
		writeProblem(w, err)
		return
	}
	out := notificationJSON{summaryJSON: summaryOf(d.NotificationSummary), Recipient: redactRecipient(d.Recipient), Version: d.Version, Deliveries: []deliveryJSON{}}
	for _, dv := range d.Deliveries {
		out.Deliveries = append(out.Deliveries, deliveryJSON{
			ID: string(dv.ID), Channel: string(dv.Channel), Address: redactAddress(dv.Channel, dv.Address), Status: string(dv.Status),
			Attempts: dv.Attempts, LastError: dv.LastError, ProviderMessageID: dv.ProviderMessageID,
			NextAttemptAt: dv.NextAttemptAt, Repeats: string(dv.Repeats), SuppressionReason: dv.SuppressionReason,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

type eventJSON struct {
	Position      uint64          `json:"position"`
	Version       uint64          `json:"version"`
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	RecordedAt    time.Time       `json:"recorded_at"`
	Actor         string          `json:"actor"`
	CorrelationID string          `json:"correlation_id"`
	CausationID   string          `json:"causation_id"`
	Data          json.RawMessage `json:"data"`
}

// events serves the audit trail straight from the log, so it shows an
// event the moment it is appended, even while projections lag.
func (a *api) events(w http.ResponseWriter, r *http.Request) {
	if a.v.Audit == nil {
		writeProblem(w, errUnavailable)
		return
	}
	stream := domain.NotificationStream(domain.NotificationID(chi.URLParam(r, "id")))
	out := struct {
		Events []eventJSON `json:"events"`
	}{Events: []eventJSON{}}
	var after uint64
	var secrets auditRedactor
	for {
		evs, err := a.v.Audit.ReadStream(r.Context(), stream, after, auditPage)
		if err != nil {
			writeProblem(w, err)
			return
		}
		for _, e := range evs {
			secrets.learn(e)
			// The log only holds JSON (the port refuses anything else at
			// append), so the data goes out as it is, but for the webhook
			// addresses it names (redact.go).
			data := e.Data
			if len(data) == 0 {
				data = json.RawMessage("null")
			}
			out.Events = append(out.Events, eventJSON{
				Position: uint64(e.Position), Version: e.Version, ID: e.ID, Type: e.Type, RecordedAt: e.RecordedAt,
				Actor: e.Metadata.Actor, CorrelationID: e.Metadata.CorrelationID, CausationID: e.Metadata.CausationID, Data: data,
			})
			after = e.Version
		}
		if len(evs) < auditPage {
			break
		}
	}
	for i := range out.Events {
		out.Events[i].Data = secrets.redact(out.Events[i].Data)
	}
	writeJSON(w, http.StatusOK, out)
}

// query reads and validates query parameters, collecting the first error.
type query struct {
	v   map[string][]string
	err error
}

func newQuery(r *http.Request) *query { return &query{v: r.URL.Query()} }

func (q *query) fail(param, reason string) {
	if q.err == nil {
		q.err = badParam(param, reason)
	}
}

func (q *query) str(name string) string {
	vs := q.v[name]
	if len(vs) == 0 {
		return ""
	}
	if len(vs) > 1 {
		q.fail(name, "given more than once")
	}
	return strings.TrimSpace(vs[0])
}

func (q *query) time(name string) time.Time {
	s := q.str(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.fail(name, "must be an RFC 3339 time such as 2026-11-02T10:00:00Z")
		return time.Time{}
	}
	// The views cannot hold a time outside what they represent, so a
	// bound beyond it selects as much as the nearest one does.
	switch {
	case t.Before(domain.MinTime):
		return domain.MinTime
	case t.After(domain.MaxTime):
		return domain.MaxTime
	}
	return t.UTC()
}

func (q *query) limit() int {
	s := q.str("limit")
	if s == "" {
		return projections.DefaultLimit
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > projections.MaxLimit {
		q.fail("limit", fmt.Sprintf("must be an integer from 1 to %d", projections.MaxLimit))
		return 0
	}
	return n
}

func (q *query) cursor() string {
	s := q.str("cursor")
	if s != "" {
		if _, _, err := projections.DecodeCursor(s); err != nil {
			q.fail("cursor", "not a cursor from a previous page")
		}
	}
	return s
}

func (q *query) channel() domain.Channel {
	s := q.str("channel")
	if s == "" {
		return ""
	}
	c, err := domain.ParseChannel(s)
	if err != nil {
		q.fail("channel", "must be one of "+joinChannels())
	}
	return c
}

func (q *query) priority() domain.Priority {
	s := q.str("priority")
	if s == "" {
		return ""
	}
	if p := domain.Priority(s); p.Valid() {
		return p
	}
	q.fail("priority", "must be high, normal or low")
	return ""
}

func (q *query) boolean(name string) bool {
	switch q.str(name) {
	case "", "false", "0":
		return false
	case "true", "1":
		return true
	}
	q.fail(name, "must be true or false")
	return false
}

// rangeOf reads from and to; from must be before to.
func (q *query) rangeOf() (from, to time.Time) {
	from, to = q.time("from"), q.time("to")
	if q.err == nil && !from.IsZero() && !to.IsZero() && !from.Before(to) {
		q.fail("from", "must be before to")
	}
	return from, to
}

func joinChannels() string {
	var s []string
	for _, c := range domain.AllChannels() {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

func (a *api) search(w http.ResponseWriter, r *http.Request) {
	if a.v.Search == nil {
		writeProblem(w, errUnavailable)
		return
	}
	q := newQuery(r)
	sq := projections.SearchQuery{
		Channel: q.channel(), Priority: q.priority(), Category: q.str("category"),
		RecipientID: q.str("recipient"), BatchID: q.str("batch"), Limit: q.limit(), Cursor: q.cursor(),
	}
	if s := q.str("status"); s != "" {
		if st := domain.NotificationStatus(s); st.Valid() {
			sq.Status = st
		} else {
			q.fail("status", "not a notification status")
		}
	}
	sq.From, sq.To = q.rangeOf()
	if q.err != nil {
		writeProblem(w, q.err)
		return
	}
	page, err := a.v.Search.Search(r.Context(), sq)
	if err != nil {
		writeProblem(w, err)
		return
	}
	out := struct {
		Items      []summaryJSON `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}{Items: []summaryJSON{}}
	for _, s := range page.Items {
		out.Items = append(out.Items, summaryOf(s))
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
}

type inboxItemJSON struct {
	NotificationID string    `json:"notification_id"`
	DeliveryID     string    `json:"delivery_id"`
	Status         string    `json:"status"`
	Read           bool      `json:"read"`
	Category       string    `json:"category"`
	Priority       string    `json:"priority"`
	Subject        string    `json:"subject,omitempty"`
	Body           string    `json:"body,omitempty"`
	Template       string    `json:"template,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func (a *api) inbox(w http.ResponseWriter, r *http.Request) {
	if a.v.Inbox == nil {
		writeProblem(w, errUnavailable)
		return
	}
	q := newQuery(r)
	iq := projections.InboxQuery{UnreadOnly: q.boolean("unread"), Limit: q.limit(), Cursor: q.cursor()}
	if q.err != nil {
		writeProblem(w, q.err)
		return
	}
	rid := chi.URLParam(r, "id")
	page, err := a.v.Inbox.Inbox(r.Context(), rid, iq)
	if err != nil {
		writeProblem(w, err)
		return
	}
	out := struct {
		RecipientID string          `json:"recipient_id"`
		Items       []inboxItemJSON `json:"items"`
		UnreadCount int             `json:"unread_count"`
		NextCursor  *string         `json:"next_cursor"`
	}{RecipientID: rid, Items: []inboxItemJSON{}, UnreadCount: page.UnreadCount}
	for _, it := range page.Items {
		out.Items = append(out.Items, inboxItemJSON{
			NotificationID: string(it.NotificationID), DeliveryID: string(it.DeliveryID), Status: string(it.Status),
			Read: it.Read, Category: it.Category, Priority: string(it.Priority), Subject: it.Subject, Body: it.Body,
			Template: it.Template, CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt,
		})
	}
	if page.NextCursor != "" {
		out.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, out)
}

// analyticsRange reads from and to, defaulting to the DefaultRange up to now.
func (a *api) analyticsRange(q *query) (from, to time.Time) {
	from, to = q.rangeOf()
	if to.IsZero() {
		to = a.now().UTC()
	}
	if from.IsZero() {
		from = to.Add(-DefaultRange)
	}
	if q.err == nil && !from.Before(to) {
		q.fail("from", "must be before to")
	}
	return from, to
}

func (a *api) deliveries(w http.ResponseWriter, r *http.Request) {
	if a.v.Analytics == nil {
		writeProblem(w, errUnavailable)
		return
	}
	q := newQuery(r)
	dq := projections.DeliveriesQuery{Bucket: q.str("bucket"), Channel: q.channel(), Priority: q.priority()}
	dq.From, dq.To = a.analyticsRange(q)
	if dq.Bucket == "" {
		dq.Bucket = projections.BucketHour
	}
	size := map[string]time.Duration{projections.BucketMinute: time.Minute, projections.BucketHour: time.Hour, projections.BucketDay: 24 * time.Hour}
	if d, ok := size[dq.Bucket]; !ok {
		q.fail("bucket", "must be minute, hour or day")
	} else if q.err == nil && dq.To.Sub(dq.From)/d > MaxBuckets {
		q.fail("from", fmt.Sprintf("the range spans more than %d %s buckets; use a larger bucket", MaxBuckets, dq.Bucket))
	}
	if s := q.str("status"); s != "" {
		if st := domain.DeliveryStatus(s); st.Valid() {
			dq.Status = st
		} else {
			q.fail("status", "not a delivery status")
		}
	}
	if g := q.str("group_by"); g != "" {
		for d := range strings.SplitSeq(g, ",") {
			d = strings.TrimSpace(d)
			if !slices.Contains([]string{projections.DimChannel, projections.DimStatus, projections.DimPriority}, d) {
				q.fail("group_by", fmt.Sprintf("unknown dimension %q: use channel, status, priority", d))
				break
			}
			if !slices.Contains(dq.GroupBy, d) {
				dq.GroupBy = append(dq.GroupBy, d)
			}
		}
	}
	if q.err != nil {
		writeProblem(w, q.err)
		return
	}
	rows, err := a.v.Analytics.Deliveries(r.Context(), dq)
	if err != nil {
		writeProblem(w, err)
		return
	}
	type row struct {
		Start    time.Time `json:"start"`
		Channel  string    `json:"channel,omitempty"`
		Status   string    `json:"status,omitempty"`
		Priority string    `json:"priority,omitempty"`
		Count    int64     `json:"count"`
	}
	out := struct {
		From    time.Time `json:"from"`
		To      time.Time `json:"to"`
		Bucket  string    `json:"bucket"`
		GroupBy []string  `json:"group_by"`
		Buckets []row     `json:"buckets"`
	}{From: dq.From, To: dq.To, Bucket: dq.Bucket, GroupBy: append([]string{}, dq.GroupBy...), Buckets: []row{}}
	for _, c := range rows {
		out.Buckets = append(out.Buckets, row{c.BucketStart, string(c.Channel), string(c.Status), string(c.Priority), c.Count})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) latency(w http.ResponseWriter, r *http.Request) {
	if a.v.Analytics == nil {
		writeProblem(w, errUnavailable)
		return
	}
	q := newQuery(r)
	lq := projections.LatencyQuery{Channel: q.channel()}
	lq.From, lq.To = a.analyticsRange(q)
	if q.err != nil {
		writeProblem(w, q.err)
		return
	}
	s, err := a.v.Analytics.Latency(r.Context(), lq)
	if err != nil {
		writeProblem(w, err)
		return
	}
	type bucket struct {
		LeMillis *int64 `json:"le_ms"` // null: the unbounded last bucket
		Count    int64  `json:"count"`
	}
	out := struct {
		Channel string    `json:"channel,omitempty"`
		From    time.Time `json:"from"`
		To      time.Time `json:"to"`
		Count   int64     `json:"count"`
		P50     float64   `json:"p50_ms"`
		P90     float64   `json:"p90_ms"`
		P99     float64   `json:"p99_ms"`
		Buckets []bucket  `json:"buckets"`
	}{Channel: string(lq.Channel), From: lq.From, To: lq.To, Count: s.Count, P50: s.P50Millis, P90: s.P90Millis, P99: s.P99Millis, Buckets: []bucket{}}
	for _, b := range s.Buckets {
		bb := bucket{Count: b.Count}
		if b.LeMillis >= 0 {
			le := b.LeMillis
			bb.LeMillis = &le
		}
		out.Buckets = append(out.Buckets, bb)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) failures(w http.ResponseWriter, r *http.Request) {
	if a.v.Analytics == nil {
		writeProblem(w, errUnavailable)
		return
	}
	q := newQuery(r)
	fq := projections.FailuresQuery{Channel: q.channel()}
	fq.From, fq.To = a.analyticsRange(q)
	if q.err != nil {
		writeProblem(w, q.err)
		return
	}
	rows, err := a.v.Analytics.Failures(r.Context(), fq)
	if err != nil {
		writeProblem(w, err)
		return
	}
	type row struct {
		Channel string `json:"channel"`
		Reason  string `json:"reason"`
		Count   int64  `json:"count"`
	}
	out := struct {
		Channel  string    `json:"channel,omitempty"`
		From     time.Time `json:"from"`
		To       time.Time `json:"to"`
		Failures []row     `json:"failures"`
	}{Channel: string(fq.Channel), From: fq.From, To: fq.To, Failures: []row{}}
	for _, f := range rows {
		out.Failures = append(out.Failures, row{string(f.Channel), f.Reason, f.Count})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) projections(w http.ResponseWriter, r *http.Request) {
	if a.v.Projections == nil {
		writeProblem(w, errUnavailable)
		return
	}
	st, err := a.v.Projections.Status(r.Context())
	if err != nil {
		writeProblem(w, err)
		return
	}
	out := struct {
		Projections []projections.ProjectionStatus `json:"projections"`
	}{Projections: append([]projections.ProjectionStatus{}, st...)}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) rebuild(w http.ResponseWriter, r *http.Request) {
	if a.v.Projections == nil {
		writeProblem(w, errUnavailable)
		return
	}
	name := chi.URLParam(r, "name")
	if err := a.v.Projections.StartRebuild(name); err != nil {
		writeProblem(w, err)
		return
	}
	w.Header().Set("Location", "/v1/admin/projections")
	writeJSON(w, http.StatusAccepted, struct {
		Name       string `json:"name"`
		Rebuilding bool   `json:"rebuilding"`
		StatusURL  string `json:"status_url"`
	}{name, true, "/v1/admin/projections"})
}
