package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// applier plans the writes of one batch to one projection. It reads no
// view: it folds the states it needs (from memory, or from the log) and
// only records its writes, which run later, in the write transaction
// (runWrites). Planning so happens in parallel with the other projections'
// writes, and the single writer connection is held only to write: holding
// it for the whole apply made it the bottleneck of a catch-up (the writer
// was busy 9.9 s of a 10.8 s run while the CPU was half idle).
type applier struct {
	ctx   context.Context
	n     names
	batch *projections.Batch
	// shared is true when the projection's checkpoint is the page's start,
	// so it may use and leave folds in batch.
	shared bool
	states *eventstore.StateCache[domain.NotificationID, domain.Notification]
	// history is the log, where the projections fold the states they find
	// nowhere else (they store none).
	history projections.History
	writes  []write
	phys    map[string]string // logical statement → physical
}

// write is one planned statement, with physical table names.
type write struct {
	query string
	args  []any
}

// exec plans a statement written with {table} placeholders.
func (a *applier) exec(query string, args ...any) error {
	a.writes = append(a.writes, write{a.physical(query), args})
	return nil
}

func (a *applier) physical(query string) string {
	if q, ok := a.phys[query]; ok {
		return q
	}
	if a.phys == nil {
		a.phys = map[string]string{}
	}
	q := a.n.q(query)
	a.phys[query] = q
	return q
}

// plan returns the writes that apply events to projection p (or its
// shadow) holding checkpoint cur.
func plan(ctx context.Context, states *eventstore.StateCache[domain.NotificationID, domain.Notification], history projections.History, p string, shadow bool, batch *projections.Batch, events []projections.Event, cur eventstore.Position) ([]write, error) {
	// Skip what this projection already has: a batch re-applied after a
	// crash between the log read and the commit changes nothing.
	for len(events) > 0 && events[0].Position <= cur {
		events = events[1:]
	}
	if len(events) == 0 {
		return nil, nil
	}
	after, page := batch.Page()
	shared := page && after == cur
	var changes []change
	if shared {
		changes = changesOf(batch.Streams()) // grouped once for every projection
	} else {
		changes = changesOf(projections.Streams(events))
	}
	a := &applier{ctx: ctx, n: tableNames(p, shadow), batch: batch, shared: shared, states: states, history: history}
	if err := a.apply(p, changes); err != nil {
		return nil, err
	}
	return a.writes, nil
}

// runWrites runs planned writes in tx. Statements are not prepared here:
// the driver keeps each connection's prepared statements across
// transactions (_stmt_cache_size), which only its Exec and Query paths use.
//
// The statements run on a context that cannot be cancelled, and ctx is
// checked between them: mattn's driver runs each Exec whose context can
// end on a goroutine of its own, to interrupt it (9% of the CPU of
// delivering webhooks went to statements handed over that way). A
// cancelled ctx still ends the apply at the next statement, and the
// caller's deferred rollback undoes it.
func runWrites(ctx context.Context, tx *sql.Tx, writes []write) error {
	uncancelled := context.WithoutCancel(ctx)
	for _, w := range writes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(uncancelled, w.query, w.args...); err != nil {
			return err
		}
	}
	return nil
}

// change is one notification a batch touches: its events in the batch (in
// log order) and its state before and after them.
type change struct {
	id            domain.NotificationID
	steps         []projections.Event
	before, after domain.Notification
	fold          *projections.Fold
}

func changesOf(streams []projections.Stream) []change {
	out := make([]change, len(streams))
	for i, st := range streams {
		out[i] = change{id: st.Notification, steps: st.Events}
	}
	return out
}

func (a *applier) apply(projection string, changes []change) error {
	switch projection {
	case projections.ProjectionNotifications:
		return a.notifications(changes)
	case projections.ProjectionInbox:
		return a.inbox(changes)
	case projections.ProjectionAnalytics:
		return a.analytics(changes)
	}
	return fmt.Errorf("%q: %w", projection, projections.ErrUnknownProjection)
}

// resolve fills in every change's state before and after the batch.
//
// The state before comes, in this order of preference, from the fold
// another projection computed for the same page from the same checkpoint
// (a.shared); from nothing at all when the notification's first event in
// the batch is its stream's first (no state can exist yet); from the
// state the projection computed last (a.states), when it was folded up to
// the stream version just before that event — the fold of the stream up to
// there, committed or not (a stream version, not the state's own count of
// the events it applied, which skips events that do not decode); or from
// the log: the notification's stream folded up to the version before its
// first event in the batch (after a restart, or for a notification
// untouched for longer than the cache holds).
func (a *applier) resolve(changes []change) error {
	if a.shared {
		defer a.batch.LockFolds()()
	}
	for i := range changes {
		c := &changes[i]
		if a.shared {
			if f, ok := a.batch.SharedFold(c.id); ok {
				c.before, c.after, c.fold = f.Before, f.After, f
				continue
			}
		}
		if first := c.steps[0].StreamVersion; first != 1 {
			if n, v, ok := a.states.Get(c.id); ok && v == first-1 {
				c.before = n
				continue
			}
			n, err := projections.FoldHistory(a.ctx, a.history, c.id, first-1)
			if err != nil {
				return err
			}
			c.before = n
		}
	}
	for i := range changes {
		c := &changes[i]
		last := c.steps[len(c.steps)-1].StreamVersion
		if c.fold != nil {
			a.states.Put(c.id, c.after, last)
			continue
		}
		n := c.before
		for _, s := range c.steps {
			n = domain.EvolveNotification(n, s.Event)
		}
		c.after = n
		a.states.Put(c.id, c.after, last)
		if a.shared {
			c.fold = a.batch.ShareFold(c.id, c.before, c.after)
		} else {
			c.fold = &projections.Fold{Before: c.before, After: c.after}
		}
	}
	return nil
}

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// updatedAt is when the last of the change's events happened.
func (c *change) updatedAt() time.Time {
	last := c.steps[len(c.steps)-1]
	return projections.EventTime(last.Event, last.RecordedAt)
}

// rowWriter gathers the rows of one INSERT and writes them with multi-row
// statements: one statement per row pays database/sql, binding and cgo
// overhead per row, inside the single writer. In a rebuild of 300,000
// events the writes took 1.6 s of CPU one row at a time, 0.42 s 64 rows at
// a time.
type rowWriter struct {
	a          *applier
	head, tail string // "INSERT INTO t (cols) VALUES", "ON CONFLICT ..."
	cols       int
	args       []any
	rows       int
}

// rowChunks are the statement sizes rows are written with, largest first:
// a few fixed sizes keep the prepared statements few.
var rowChunks = []int{64, 16, 4, 1}

func (a *applier) rows(head, tail string, cols int) *rowWriter {
	return &rowWriter{a: a, head: head, tail: tail, cols: cols}
}

func (w *rowWriter) add(args ...any) error {
	w.args = append(w.args, args...)
	w.rows++
	if w.rows == rowChunks[0] {
		return w.flush()
	}
	return nil
}

func (w *rowWriter) flush() error {
	for w.rows > 0 {
		size := 1
		for _, s := range rowChunks {
			if s <= w.rows {
				size = s
				break
			}
		}
		row := "(" + placeholders(w.cols) + ")"
		values := strings.TrimSuffix(strings.Repeat(row+", ", size), ", ")
		n := size * w.cols
		// The plan keeps the arguments: never write over them.
		if err := w.a.exec(w.head+" "+values+" "+w.tail, w.args[:n:n]...); err != nil {
			return err
		}
		w.args = w.args[n:]
		w.rows -= size
	}
	return nil
}

// ---- notifications: status view and search index ----

func (a *applier) notifications(changes []change) error {
	if err := a.resolve(changes); err != nil {
		return err
	}
	const (
		noteCols = `(id, status, priority, category, recipient_id, batch_id, channels, created_at, updated_at, version, recipient)
			VALUES`
		deliveryCols = `(notification_id, seq, delivery_id, channel, address, status, attempts, last_error,
			 provider_message_id, next_attempt_at, repeats, suppression_reason)
			VALUES`
	)
	// The rows of a notification the batch creates are plain inserts: no
	// row of it can be there yet, since the batch commits with the
	// checkpoint. OR FAIL, because the apply is all or nothing anyway
	// (an error rolls the whole transaction back): a statement that may
	// abort halfway makes SQLite keep a statement journal, a copy of every
	// page the statement changes, which for the multi-row statements here
	// meant a copy of about one page of the recipient index per row, and
	// a spill of the copies to a temporary file past 64 KiB.
	created := a.rows(`INSERT OR FAIL INTO {notifications} `+noteCols, ``, 11)
	createdDeliveries := a.rows(`INSERT OR FAIL INTO {notification_deliveries} `+deliveryCols, ``, 12)
	notes := a.rows(`INSERT INTO {notifications} `+noteCols, `ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority,
			category = excluded.category, channels = excluded.channels, updated_at = excluded.updated_at,
			version = excluded.version`, 11)
	// Delivery rows are upserted by position, and only those that changed:
	// deliveries are only ever appended, so seq keeps naming the same one.
	deliveries := a.rows(`INSERT INTO {notification_deliveries} `+deliveryCols, `ON CONFLICT (notification_id, seq) DO UPDATE SET delivery_id = excluded.delivery_id,
			channel = excluded.channel, address = excluded.address, status = excluded.status,
			attempts = excluded.attempts, last_error = excluded.last_error,
			provider_message_id = excluded.provider_message_id, next_attempt_at = excluded.next_attempt_at,
			repeats = excluded.repeats, suppression_reason = excluded.suppression_reason`, 12)
	for i := range changes {
		c := &changes[i]
		n := c.after
		if !n.Exists() {
			continue
		}
		req := n.Request()
		// The recipient column is only written by the insert (an update
		// keeps it), so it is encoded only for a new row.
		var recipient []byte
		if !c.before.Exists() {
			var err error
			if recipient, err = fastjson.Marshal(req.Recipient); err != nil {
				return err
			}
		}
		noteRows, deliveryRows := notes, deliveries
		if !c.before.Exists() {
			noteRows, deliveryRows = created, createdDeliveries
		}
		if err := noteRows.add(string(n.ID()), string(n.Status()), string(n.Priority()), n.Category(), req.Recipient.ID,
			req.BatchID, joinChannels(channelsOf(n)), n.RequestedAt().UnixNano(), c.updatedAt().UnixNano(),
			n.Version(), string(recipient)); err != nil {
			return err
		}
		var old []domain.Delivery
		if c.before.Exists() {
			old = c.before.Deliveries()
		}
		ds := n.Deliveries()
		for seq, d := range ds {
			row := deliveryRow(d)
			if seq < len(old) && deliveryRow(old[seq]) == row {
				continue
			}
			if err := deliveryRows.add(string(n.ID()), seq, row.id, row.channel, row.address, row.status,
				row.attempts, row.lastError, row.providerMessageID, row.next, row.repeats, row.suppression); err != nil {
				return err
			}
		}
		if len(ds) < len(old) {
			// The domain never drops a delivery; should it ever, no
			// row may outlive it.
			if err := a.exec(`DELETE FROM {notification_deliveries} WHERE notification_id = ? AND seq >= ?`,
				string(n.ID()), len(ds)); err != nil {
				return err
			}
		}
	}
	for _, w := range []*rowWriter{created, notes, createdDeliveries, deliveries} {
		if err := w.flush(); err != nil {
			return err
		}
	}
	return nil
}

// deliveryColumns is what notification_deliveries holds of a delivery.
type deliveryColumns struct {
	id, channel, address, status string
	attempts                     int
	lastError, providerMessageID string
	next                         int64
	repeats, suppression         string
}

func deliveryRow(d domain.Delivery) deliveryColumns {
	var next int64
	if t := d.NextAttemptAt(); !t.IsZero() {
		next = t.UnixNano()
	}
	return deliveryColumns{string(d.ID()), string(d.Channel()), d.Address(), string(d.Status()), d.Attempts(),
		d.LastError(), d.ProviderMessageID(), next, string(d.Repeats()), d.SuppressionReason()}
}

func channelsOf(n domain.Notification) []domain.Channel {
	var out []domain.Channel
	seen := map[domain.Channel]bool{}
	add := func(c domain.Channel) {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
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

func joinChannels(cs []domain.Channel) string {
	var b strings.Builder
	b.WriteByte(',')
	for _, c := range cs {
		b.WriteString(string(c))
		b.WriteByte(',')
	}
	return b.String()
}

// ---- inbox ----

// inInbox reports whether an in-app delivery in status s is shown: once the
// in-app write happened (the adapter records delivered, or sent).
func inInbox(s domain.DeliveryStatus) bool { return s.Succeeded() }

// inbox writes only the items whose row the batch changes, comparing each
// in-app delivery's status before and after the batch (the items always
// mirror the stored state, in the same transaction), and recounts unread
// only for recipients whose items' presence or read flag changed. It used to
// issue a DELETE for every in-app delivery not (yet) shown and a count per
// touched recipient.
func (a *applier) inbox(changes []change) error {
	if err := a.resolve(changes); err != nil {
		return err
	}
	items := a.rows(`INSERT INTO {inbox_items}
				(recipient_id, item_key, notification_id, delivery_id, status, read, category, priority,
				 subject, body, template, created_at, updated_at)
				VALUES`, `ON CONFLICT (recipient_id, item_key) DO UPDATE SET status = excluded.status,
					read = excluded.read, updated_at = excluded.updated_at
				WHERE status <> excluded.status`, 13)
	recount := map[string]bool{}
	var recipients []string
	dirty := func(rid string) {
		if !recount[rid] {
			recount[rid] = true
			recipients = append(recipients, rid)
		}
	}
	for i := range changes {
		c := &changes[i]
		n := c.after
		if !n.Exists() {
			continue
		}
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
		for _, d := range n.Deliveries() {
			if d.Channel() != domain.ChannelInApp {
				continue
			}
			subject, body := subject, body
			if r, ok := d.Rendered(); ok {
				subject, body = r.Subject, r.Body
			}
			var wasIn bool
			var was domain.DeliveryStatus
			if old, had := c.before.Delivery(d.ID()); had && c.before.Exists() {
				wasIn, was = inInbox(old.Status()), old.Status()
			}
			key := c.id.DeliveryKey(d.ID())
			if !inInbox(d.Status()) {
				if wasIn {
					if err := a.exec(`DELETE FROM {inbox_items} WHERE recipient_id = ? AND item_key = ?`, rid, key); err != nil {
						return err
					}
					dirty(rid)
				}
				continue
			}
			if wasIn && was == d.Status() {
				continue // the upsert would change nothing
			}
			read := 0
			if d.Status() == domain.DeliveryStatusRead {
				read = 1
			}
			if !wasIn || (was == domain.DeliveryStatusRead) != (read == 1) {
				dirty(rid)
			}
			if err := items.add(rid, key, string(c.id), string(d.ID()), string(d.Status()), read, n.Category(),
				string(n.Priority()), subject, body, tmpl, n.RequestedAt().UnixNano(), c.updatedAt().UnixNano()); err != nil {
				return err
			}
		}
	}
	if err := items.flush(); err != nil {
		return err
	}
	// The unread count is recomputed from the items, an absolute number,
	// so it can never drift from them whatever order events come in.
	for _, rid := range recipients {
		if err := a.exec(`INSERT INTO {inbox_unread} (recipient_id, unread)
			SELECT ?, count(*) FROM {inbox_items} WHERE recipient_id = ? AND read = 0
			ON CONFLICT (recipient_id) DO UPDATE SET unread = excluded.unread`, rid, rid); err != nil {
			return err
		}
	}
	return nil
}

// ---- analytics ----

type deliveryKey struct {
	bucket   string
	start    int64
	channel  domain.Channel
	status   domain.DeliveryStatus
	priority domain.Priority
}

type latencyKey struct {
	start   int64
	channel domain.Channel
	le      int
}

type failureKey struct {
	start   int64
	channel domain.Channel
	reason  string
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
// changed, a success's latency and a failure's reason.
//
// The counts are increments (count = count + n). That is replay-safe here
// because Apply commits them in the same SQLite transaction as the
// checkpoint and skips events at or below it: an event is counted exactly
// once or not at all. An engine without such transactions (Cassandra) must
// write absolute values from its single writer instead.
func (a *applier) analytics(changes []change) error {
	if err := a.resolve(changes); err != nil {
		return err
	}
	deliveries := map[deliveryKey]int64{}
	latency := map[latencyKey]int64{}
	failures := map[failureKey]int64{}
	for i := range changes {
		c := &changes[i]
		n := c.before
		for _, s := range c.steps {
			before := n
			n = domain.EvolveNotification(n, s.Event)
			if !n.Exists() {
				continue
			}
			at := projections.EventTime(s.Event, s.RecordedAt)
			minute, hour, day := bucketStart(at, projections.BucketMinute).UnixNano(),
				bucketStart(at, projections.BucketHour).UnixNano(), bucketStart(at, projections.BucketDay).UnixNano()
			for _, d := range n.Deliveries() {
				old, had := before.Delivery(d.ID())
				if had && old.Status() == d.Status() {
					continue
				}
				deliveries[deliveryKey{projections.BucketMinute, minute, d.Channel(), d.Status(), n.Priority()}]++
				deliveries[deliveryKey{projections.BucketHour, hour, d.Channel(), d.Status(), n.Priority()}]++
				deliveries[deliveryKey{projections.BucketDay, day, d.Channel(), d.Status(), n.Priority()}]++
				if d.Status().Succeeded() && (!had || !old.Status().Succeeded()) {
					lat := max(0, at.Sub(n.RequestedAt()))
					latency[latencyKey{hour, d.Channel(), latencyBucket(lat)}]++
				}
			}
			switch ev := s.Event.(type) {
			case domain.DeliveryFailed:
				if _, ok := n.Delivery(ev.DeliveryID); ok {
					failures[failureKey{hour, ev.DeliveryID.Channel(), ev.Reason}]++
				}
			case domain.DeliveryReceiptRecorded:
				if ev.Outcome == domain.ReceiptBounced || ev.Outcome == domain.ReceiptFailed {
					if _, ok := n.Delivery(ev.DeliveryID); ok {
						reason := ev.Reason
						if reason == "" {
							reason = string(ev.Outcome)
						}
						failures[failureKey{hour, ev.DeliveryID.Channel(), reason}]++
					}
				}
			}
		}
	}
	for k, c := range deliveries {
		if err := a.exec(`INSERT INTO {analytics_deliveries} (bucket, start, channel, status, priority, count)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bucket, start, channel, status, priority) DO UPDATE SET count = count + excluded.count`,
			k.bucket, k.start, string(k.channel), string(k.status), string(k.priority), c); err != nil {
			return err
		}
	}
	for k, c := range latency {
		if err := a.exec(`INSERT INTO {analytics_latency} (start, channel, le, count)
			VALUES (?, ?, ?, ?) ON CONFLICT (start, channel, le) DO UPDATE SET count = count + excluded.count`,
			k.start, string(k.channel), k.le, c); err != nil {
			return err
		}
	}
	for k, c := range failures {
		if err := a.exec(`INSERT INTO {analytics_failures} (start, channel, reason, count)
			VALUES (?, ?, ?, ?) ON CONFLICT (start, channel, reason) DO UPDATE SET count = count + excluded.count`,
			k.start, string(k.channel), k.reason, c); err != nil {
			return err
		}
	}
	return nil
}
