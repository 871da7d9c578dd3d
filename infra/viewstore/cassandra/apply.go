package cassandra

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/gocql/gocql"
	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// writer is the single writer of one generation of one projection. Between
// batches it keeps what it would otherwise read back or fold again: the
// checkpoint, the notification states it last computed (see loadStates
// for when they still hold), the analytics rows it last wrote and
// the directory rows known to exist. Any failed Apply drops all of it, so
// the retry starts from what Cassandra holds.
type writer struct {
	v          *Views
	projection string
	gen        int
	t          map[string]string // logical table name → qualified physical name

	mu       sync.Mutex
	cpLoaded bool
	cp       eventstore.Position
	states   map[domain.NotificationID]state
	aggs     map[aggKey]aggValue
	known    map[string]bool
}

// state is a notification as a projection last stored it: the domain's
// state and the stream version of the last event folded into it.
type state struct {
	n  domain.Notification
	sv uint64
}

func newWriter(v *Views, projection string, gen int) *writer {
	w := &writer{v: v, projection: projection, gen: gen, t: map[string]string{}}
	for _, t := range viewTables[projection] {
		w.t[t.name] = tableName(v.ks, t.name, gen)
	}
	w.reset()
	return w
}

func (w *writer) reset() {
	w.cpLoaded = false
	w.states = map[domain.NotificationID]state{}
	w.aggs = map[aggKey]aggValue{}
	w.known = map[string]bool{}
}

// step is one event of a notification, as the domain decoded it.
type step struct {
	rec eventstore.RecordedEvent
	ev  domain.Event
}

// group orders a batch by notification, keeping each notification's events
// in log order and the notifications in order of first appearance.
func group(events []eventstore.RecordedEvent) (order []domain.NotificationID, steps map[domain.NotificationID][]step) {
	steps = map[domain.NotificationID][]step{}
	for _, rec := range events {
		id, ev, ok := projections.DecodeNotificationEvent(rec)
		if !ok {
			continue
		}
		if _, seen := steps[id]; !seen {
			order = append(order, id)
		}
		steps[id] = append(steps[id], step{rec, ev})
	}
	return order, steps
}

func (w *writer) apply(ctx context.Context, events []eventstore.RecordedEvent, checkpoint eventstore.Position) (err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		if err != nil {
			w.reset()
		}
	}()
	if !w.cpLoaded {
		if w.cp, err = w.v.readCheckpoint(ctx, w.projection, w.gen); err != nil {
			return err
		}
		w.cpLoaded = true
	}
	// Skip what this projection already has: a batch re-applied after a
	// crash between the writes and the checkpoint changes nothing.
	fresh := events
	for len(fresh) > 0 && fresh[0].Position <= w.cp {
		fresh = fresh[1:]
	}
	if order, steps := group(fresh); len(order) > 0 {
		if err := w.project(ctx, order, steps); err != nil {
			return err
		}
	}
	// The checkpoint goes last: when it is there, so is everything below it.
	if checkpoint > w.cp {
		if err := w.v.writeCheckpoint(ctx, w.projection, w.gen, checkpoint); err != nil {
			return err
		}
		w.cp = checkpoint
	}
	return nil
}

// change is what a batch does to one notification: its state before, the
// events it had not seen yet, and its state after.
type change struct {
	id      domain.NotificationID
	before  state
	steps   []step
	after   state
	updated time.Time // when the last new event happened
}

func (w *writer) project(ctx context.Context, order []domain.NotificationID, steps map[domain.NotificationID][]step) error {
	prior, err := w.loadStates(ctx, order, steps)
	if err != nil {
		return err
	}
	changes := make([]change, 0, len(order))
	for _, id := range order {
		c := change{id: id, before: prior[id]}
		n := c.before.n
		for _, s := range steps[id] {
			c.steps = append(c.steps, s)
			n = domain.EvolveNotification(n, s.ev)
			c.updated = projections.EventTime(s.ev, s.rec.RecordedAt)
			c.after.sv = s.rec.Version
		}
		c.after.n = n
		// Like the SQLite store, a notification the domain does not know
		// (events before its request) leaves no trace.
		if len(c.steps) == 0 || !n.Exists() {
			continue
		}
		changes = append(changes, c)
	}
	var rows []stmt
	switch w.projection {
	case projections.ProjectionNotifications:
		rows, err = w.notifications(changes)
	case projections.ProjectionInbox:
		rows, err = w.inbox(changes)
	case projections.ProjectionAnalytics:
		rows, err = w.analytics(ctx, changes)
	default:
		err = fmt.Errorf("%q: %w", w.projection, projections.ErrUnknownProjection)
	}
	if err != nil {
		return err
	}
	// The rows hold absolute values and no projection stores its states:
	// a retry after a failure midway folds the states again from the log
	// up to the checkpoint and rewrites the same rows.
	if err := execAll(ctx, w.v.s, w.v.opts.Concurrency, rows); err != nil {
		return err
	}
	if len(w.states)+len(changes) > w.v.opts.StateCacheSize {
		w.states = map[domain.NotificationID]state{}
	}
	for _, c := range changes {
		w.states[c.id] = c.after
	}
	return nil
}

// loadStates returns the state of every notification of the batch before
// it, folded from the log. It reads only what it must: a cached state is
// what this writer last computed, and a notification whose first event
// (version 1) is in the batch has no earlier state.
func (w *writer) loadStates(ctx context.Context, order []domain.NotificationID, steps map[domain.NotificationID][]step) (map[domain.NotificationID]state, error) {
	out := make(map[domain.NotificationID]state, len(order))
	var missing []domain.NotificationID
	for _, id := range order {
		// A cached state is used only when it is folded up to just
		// before the batch: another process may have written the
		// projection since this writer last did (a standby that took
		// over and handed back), and then the cache is behind.
		if st, ok := w.states[id]; ok && st.sv == steps[id][0].rec.Version-1 {
			out[id] = st
			continue
		}
		if steps[id][0].rec.Version <= 1 {
			out[id] = state{}
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return out, nil
	}
	// No projection stores states: the state before the batch is the
	// stream folded from the log up to the version before the batch's
	// first event of it.
	loaded := make([]state, len(missing))
	err := parallel(ctx, w.v.opts.Concurrency, len(missing), func(ctx context.Context, i int) error {
		sv := steps[missing[i]][0].rec.Version - 1
		n, err := projections.FoldHistory(ctx, w.v.opts.History, missing[i], sv)
		loaded[i] = state{n, sv}
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, id := range missing {
		out[id] = loaded[i]
	}
	return out, nil
}

// ---- notifications: status view and search index ----

func channelsOf(n domain.Notification) []string {
	out := []string{}
	seen := map[domain.Channel]bool{}
	add := func(c domain.Channel) {
		if !seen[c] {
			seen[c] = true
			out = append(out, string(c))
		}
	}
	for _, d := range n.Deliveries() {
		add(d.Channel())
	}
	if len(out) == 0 {
		for _, c := range n.Request().Channels {
			add(c)
		}
	}
	return out
}

func deliveryViews(n domain.Notification) []projections.DeliveryView {
	out := []projections.DeliveryView{}
	for _, d := range n.Deliveries() {
		dv := projections.DeliveryView{
			ID: d.ID(), Channel: d.Channel(), Address: d.Address(), Status: d.Status(), Attempts: d.Attempts(),
			LastError: d.LastError(), ProviderMessageID: d.ProviderMessageID(), Repeats: d.Repeats(),
			SuppressionReason: d.SuppressionReason(),
		}
		if t := d.NextAttemptAt(); !t.IsZero() {
			t = time.Unix(0, t.UnixNano()).UTC()
			dv.NextAttemptAt = &t
		}
		out = append(out, dv)
	}
	return out
}

// dayOf is the search partition of a creation time: days since the epoch.
func dayOf(ns int64) int {
	d := ns / day
	if ns < 0 && ns%day != 0 {
		d--
	}
	return int(d)
}

func (w *writer) notifications(changes []change) (rows []stmt, err error) {
	searchCQL := `INSERT INTO ` + w.t["search"] + ` (day, created_at, id, status, priority, category, recipient_id, batch_id,
		channels, channel_list, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	dayCQL := `INSERT INTO ` + w.t["search_days"] + ` (shard, day) VALUES (0, ?)`
	viewCQL := `INSERT INTO ` + w.t["notifications"] + ` (id, status, priority, category, recipient_id, batch_id, channels,
		created_at, updated_at, version, recipient, deliveries) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for _, c := range changes {
		rows = append(rows, w.workRows(c)...)
		n := c.after.n
		req := n.Request()
		created := n.RequestedAt().UnixNano()
		d := dayOf(created)
		channels := channelsOf(n)
		rows = append(rows, stmt{fmt.Sprint("search/", d), searchCQL, []any{d, created, string(n.ID()), string(n.Status()),
			string(n.Priority()), indexed(n.Category()), indexed(req.Recipient.ID), indexed(string(req.BatchID)), channels, channels,
			c.updated.UnixNano(), n.Version()}})
		if key := fmt.Sprint("day/", d); !w.known[key] {
			w.known[key] = true
			rows = append(rows, stmt{"", dayCQL, []any{d}})
		}
		recipient, err := fastjson.Marshal(req.Recipient)
		if err != nil {
			return nil, err
		}
		deliveries, err := fastjson.Marshal(deliveryViews(n))
		if err != nil {
			return nil, err
		}
		rows = append(rows, stmt{"", viewCQL, []any{string(n.ID()), string(n.Status()), string(n.Priority()), n.Category(),
			req.Recipient.ID, req.BatchID, channels, created, c.updated.UnixNano(), n.Version(), string(recipient),
			string(deliveries)}})
	}
	return rows, nil
}

// indexed is the value of a search column that a Storage-Attached Index
// covers. An empty one is left unset: no filter ever asks for "" (an empty
// filter means no filter), and every row without a batch or a category
// would otherwise add a term to that index's memtable (the index
// memtables were the largest cost of a rebuild in Cassandra's own
// profile). Unset, not null: a null would write a tombstone. These columns
// never change after the request, so an unset never hides a value that
// should have gone away.
func indexed(v string) any {
	if v == "" {
		return gocql.UnsetValue
	}
	return v
}

// workShards spreads the work table over partitions.
const workShards = 16

func workShard(id domain.NotificationID) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % workShards)
}

// owed lists what a notification state owes the roles: its deliveries
// still owed an attempt (with their due time) and, under the key "", its
// release when it waits for its scheduled_at.
func owed(n domain.Notification) map[domain.DeliveryID]domain.Delivery {
	out := map[domain.DeliveryID]domain.Delivery{}
	if !n.Exists() {
		return out
	}
	if n.Status() == domain.StatusScheduled && !n.Planned() {
		out[""] = domain.Delivery{}
	}
	for _, d := range n.Deliveries() {
		if d.Status().Pending() {
			out[d.ID()] = d
		}
	}
	return out
}

// workRows keeps the work table in step with one notification's change:
// a row (absolute values) for everything owed after it, a delete for
// what was owed before and is not any more.
func (w *writer) workRows(c change) []stmt {
	t := w.t["work"]
	shard := workShard(c.id)
	group := fmt.Sprint("work/", shard)
	n := c.after.n
	after := owed(n)
	var out []stmt
	for id, d := range after {
		var ch, prio, status, address string
		var due int64
		if id == "" {
			status, prio = string(domain.StatusScheduled), string(n.Priority())
			due = n.ReleaseAt().UnixNano()
		} else {
			ch, prio, status, address = string(d.Channel()), string(n.Priority()), string(d.Status()), d.Address()
			if at := d.NextAttemptAt(); !at.IsZero() {
				due = at.UnixNano()
			}
		}
		out = append(out, stmt{group, `INSERT INTO ` + t + ` (shard, notification_id, delivery_id, channel, priority, status, due, address)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, []any{shard, string(c.id), string(id), ch, prio, status, due, address}})
	}
	for id := range owed(c.before.n) {
		if _, still := after[id]; !still {
			out = append(out, stmt{group, `DELETE FROM ` + t + ` WHERE shard = ? AND notification_id = ? AND delivery_id = ?`,
				[]any{shard, string(c.id), string(id)}})
		}
	}
	return out
}

// ---- inbox ----

// inInbox reports whether an in-app delivery in status s is shown: once the
// in-app write happened (the adapter records delivered, or sent).
func inInbox(s domain.DeliveryStatus) bool { return s.Succeeded() }

// inbox writes an item when its delivery's status changed in the batch:
// into inbox_items while shown, into inbox_unread while shown and not
// read, and deletes it from each where it no longer belongs. updated_at is
// thus the time of the batch's last event at the last status change.
func (w *writer) inbox(changes []change) (rows []stmt, err error) {
	const cols = `(recipient_id, created_at, item_key, notification_id, delivery_id, status, read, category, priority,
		subject, body, template, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertItem := `INSERT INTO ` + w.t["inbox_items"] + ` ` + cols
	insertUnread := `INSERT INTO ` + w.t["inbox_unread"] + ` ` + cols
	deleteItem := `DELETE FROM ` + w.t["inbox_items"] + ` WHERE recipient_id = ? AND created_at = ? AND item_key = ?`
	deleteUnread := `DELETE FROM ` + w.t["inbox_unread"] + ` WHERE recipient_id = ? AND created_at = ? AND item_key = ?`
	for _, c := range changes {
		n := c.after.n
		req := n.Request()
		rid := req.Recipient.ID
		if rid == "" {
			continue
		}
		var subject, body, tmpl string
		if req.Content != nil {
			subject, body = req.Content.Subject, req.Content.Body
		}
		if req.Template != nil {
			tmpl = req.Template.ID
		}
		created := n.RequestedAt().UnixNano()
		group := "inbox/" + rid
		for _, d := range n.Deliveries() {
			if d.Channel() != domain.ChannelInApp {
				continue
			}
			subject, body := subject, body
			if r, ok := d.Rendered(); ok {
				subject, body = r.Subject, r.Body
			}
			old, had := c.before.n.Delivery(d.ID())
			if had && old.Status() == d.Status() {
				continue
			}
			key := c.id.DeliveryKey(d.ID())
			if !inInbox(d.Status()) {
				if had {
					rows = append(rows, stmt{group, deleteItem, []any{rid, created, key}}, stmt{group, deleteUnread, []any{rid, created, key}})
				}
				continue
			}
			read := d.Status() == domain.DeliveryStatusRead
			args := []any{rid, created, key, string(c.id), string(d.ID()), string(d.Status()), read, n.Category(),
				string(n.Priority()), subject, body, tmpl, c.updated.UnixNano()}
			rows = append(rows, stmt{group, insertItem, args})
			if read {
				rows = append(rows, stmt{group, deleteUnread, []any{rid, created, key}})
			} else {
				rows = append(rows, stmt{group, insertUnread, args})
			}
		}
	}
	return rows, nil
}

// ---- analytics ----

// Kinds of analytics rows (and of analytics_spans partitions).
const (
	kindDeliveries = "deliveries/"
	kindLatency    = "latency"
	kindFailures   = "failures"
)

// aggKey is the primary key of one analytics row: a deliveries row (bucket
// set; a = status, b = priority), a latency row (le) or a failures row
// (a = reason).
type aggKey struct {
	kind    string
	bucket  string
	span    int64
	start   int64
	channel string
	a, b    string
	le      int
}

// aggValue is an analytics row: the absolute count and the highest log
// position counted into it.
type aggValue struct {
	count   int64
	through eventstore.Position
}

// bucketStart truncates t (UTC) to the start of its bucket. Days are UTC
// days: Unix time is aligned on UTC midnight, so Truncate works.
func bucketStart(t time.Time, bucket string) time.Time {
	switch bucket {
	case projections.BucketMinute:
		return t.UTC().Truncate(time.Minute)
	case projections.BucketHour:
		return t.UTC().Truncate(time.Hour)
	default:
		return t.UTC().Truncate(24 * time.Hour)
	}
}

// spanOf is the partition of an analytics row whose bucket starts at start.
func spanOf(bucket string, start int64) int64 {
	size := hourSpan
	switch bucket {
	case projections.BucketMinute:
		size = minuteSpan
	case projections.BucketDay:
		size = daySpanSize
	}
	s := start - start%size
	if start < 0 && start%size != 0 {
		s -= size
	}
	return s
}

func latencyBucket(d time.Duration) int {
	ms := d.Milliseconds()
	for i, b := range projections.LatencyBoundsMillis {
		if ms <= b {
			return i
		}
	}
	return len(projections.LatencyBoundsMillis)
}

// analytics counts, per event, the deliveries whose status the domain
// changed, a success's latency and a failure's reason, exactly as the
// SQLite store does. Each count is written as an absolute value: the
// stored row (or this writer's copy of it) plus the batch's events above
// the row's through position. An event at or below it was counted by an
// earlier attempt at this batch, whose row write carried it.
func (w *writer) analytics(ctx context.Context, changes []change) (rows []stmt, err error) {
	contrib := map[aggKey][]eventstore.Position{}
	var keys []aggKey
	add := func(k aggKey, pos eventstore.Position) {
		if _, ok := contrib[k]; !ok {
			keys = append(keys, k)
		}
		contrib[k] = append(contrib[k], pos)
	}
	for _, c := range changes {
		n := c.before.n
		for _, s := range c.steps {
			before := n
			n = domain.EvolveNotification(n, s.ev)
			if !n.Exists() {
				continue
			}
			pos := s.rec.Position
			at := projections.EventTime(s.ev, s.rec.RecordedAt)
			hour := bucketStart(at, projections.BucketHour).UnixNano()
			for _, d := range n.Deliveries() {
				old, had := before.Delivery(d.ID())
				if had && old.Status() == d.Status() {
					continue
				}
				for _, b := range []string{projections.BucketMinute, projections.BucketHour, projections.BucketDay} {
					start := bucketStart(at, b).UnixNano()
					add(aggKey{kind: kindDeliveries + b, bucket: b, span: spanOf(b, start), start: start,
						channel: string(d.Channel()), a: string(d.Status()), b: string(n.Priority())}, pos)
				}
				if d.Status().Succeeded() && (!had || !old.Status().Succeeded()) {
					lat := max(0, at.Sub(n.RequestedAt()))
					add(aggKey{kind: kindLatency, span: spanOf(projections.BucketHour, hour), start: hour,
						channel: string(d.Channel()), le: latencyBucket(lat)}, pos)
				}
			}
			switch ev := s.ev.(type) {
			case domain.DeliveryFailed:
				if _, ok := n.Delivery(ev.DeliveryID); ok {
					add(aggKey{kind: kindFailures, span: spanOf(projections.BucketHour, hour), start: hour,
						channel: string(ev.DeliveryID.Channel()), a: ev.Reason}, pos)
				}
			case domain.DeliveryReceiptRecorded:
				if ev.Outcome == domain.ReceiptBounced || ev.Outcome == domain.ReceiptFailed {
					if _, ok := n.Delivery(ev.DeliveryID); ok {
						reason := ev.Reason
						if reason == "" {
							reason = string(ev.Outcome)
						}
						add(aggKey{kind: kindFailures, span: spanOf(projections.BucketHour, hour), start: hour,
							channel: string(ev.DeliveryID.Channel()), a: reason}, pos)
					}
				}
			}
		}
	}
	if err := w.loadAggs(ctx, keys); err != nil {
		return nil, err
	}
	spanCQL := `INSERT INTO ` + w.t["analytics_spans"] + ` (kind, span) VALUES (?, ?)`
	deliveriesCQL := `INSERT INTO ` + w.t["analytics_deliveries"] + ` (bucket, span, start, channel, status, priority, count, through)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	latencyCQL := `INSERT INTO ` + w.t["analytics_latency"] + ` (span, start, channel, le, count, through) VALUES (?, ?, ?, ?, ?, ?)`
	failuresCQL := `INSERT INTO ` + w.t["analytics_failures"] + ` (span, start, channel, reason, count, through) VALUES (?, ?, ?, ?, ?, ?)`
	pending := map[aggKey]aggValue{}
	for _, k := range keys {
		cur := w.aggs[k]
		next := cur
		for _, pos := range contrib[k] {
			if pos > cur.through {
				next.count++
				next.through = max(next.through, pos)
			}
		}
		if next == cur {
			continue
		}
		pending[k] = next
		group := fmt.Sprint(k.kind, "/", k.span)
		switch k.kind {
		case kindLatency:
			rows = append(rows, stmt{group, latencyCQL, []any{k.span, k.start, k.channel, k.le, next.count, int64(next.through)}})
		case kindFailures:
			rows = append(rows, stmt{group, failuresCQL, []any{k.span, k.start, k.channel, k.a, next.count, int64(next.through)}})
		default:
			rows = append(rows, stmt{group, deliveriesCQL, []any{k.bucket, k.span, k.start, k.channel, k.a, k.b, next.count, int64(next.through)}})
		}
		if sk := fmt.Sprint("span/", k.kind, "/", k.span); !w.known[sk] {
			w.known[sk] = true
			rows = append(rows, stmt{"spans/" + k.kind, spanCQL, []any{k.kind, k.span}})
		}
	}
	// The writer's copies change with the rows; should the writes fail,
	// apply's reset drops them all.
	for k, val := range pending {
		w.aggs[k] = val
	}
	return rows, nil
}

// maxCachedAggs bounds the analytics rows a writer keeps; past it the copy
// is dropped and rows are read again as batches touch them.
const maxCachedAggs = 200_000

// loadAggs reads the analytics rows of keys that the writer has no copy of.
func (w *writer) loadAggs(ctx context.Context, keys []aggKey) error {
	if len(w.aggs)+len(keys) > maxCachedAggs {
		w.aggs = map[aggKey]aggValue{}
	}
	var missing []aggKey
	for _, k := range keys {
		if _, ok := w.aggs[k]; !ok {
			missing = append(missing, k)
		}
	}
	loaded := make([]aggValue, len(missing))
	err := parallel(ctx, w.v.opts.Concurrency, len(missing), func(ctx context.Context, i int) error {
		k := missing[i]
		var q *gocql.Query
		switch k.kind {
		case kindLatency:
			q = w.v.s.Query(`SELECT count, through FROM `+w.t["analytics_latency"]+` WHERE span = ? AND start = ? AND channel = ? AND le = ?`,
				k.span, k.start, k.channel, k.le)
		case kindFailures:
			q = w.v.s.Query(`SELECT count, through FROM `+w.t["analytics_failures"]+` WHERE span = ? AND start = ? AND channel = ? AND reason = ?`,
				k.span, k.start, k.channel, k.a)
		default:
			q = w.v.s.Query(`SELECT count, through FROM `+w.t["analytics_deliveries"]+
				` WHERE bucket = ? AND span = ? AND start = ? AND channel = ? AND status = ? AND priority = ?`,
				k.bucket, k.span, k.start, k.channel, k.a, k.b)
		}
		var count, through int64
		err := q.WithContext(ctx).Scan(&count, &through)
		if errors.Is(err, gocql.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		loaded[i] = aggValue{count, eventstore.Position(through)}
		return nil
	})
	if err != nil {
		return err
	}
	for i, k := range missing {
		w.aggs[k] = loaded[i]
	}
	return nil
}
