package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// applier applies one batch to one projection inside the batch's
// transaction.
type applier struct {
	ctx   context.Context
	tx    *sql.Tx
	n     names
	stmts map[string]*sql.Stmt
}

// exec runs a statement written with {table} placeholders, preparing it
// once per transaction: a batch runs the same few statements thousands of
// times, and preparing dominated the cost before.
func (a *applier) exec(query string, args ...any) error {
	st, err := a.stmt(query)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(a.ctx, args...)
	return err
}

func (a *applier) stmt(query string) (*sql.Stmt, error) {
	if st, ok := a.stmts[query]; ok {
		return st, nil
	}
	st, err := a.tx.PrepareContext(a.ctx, a.n.q(query))
	if err != nil {
		return nil, err
	}
	if a.stmts == nil {
		a.stmts = map[string]*sql.Stmt{}
	}
	a.stmts[query] = st
	return st, nil
}

// close releases the prepared statements (the transaction's end would too).
func (a *applier) close() {
	for _, st := range a.stmts {
		st.Close()
	}
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

func (a *applier) apply(projection string, order []domain.NotificationID, steps map[domain.NotificationID][]step) error {
	switch projection {
	case projections.ProjectionNotifications:
		return a.notifications(order, steps)
	case projections.ProjectionInbox:
		return a.inbox(order, steps)
	case projections.ProjectionAnalytics:
		return a.analytics(order, steps)
	}
	return fmt.Errorf("%q: %w", projection, projections.ErrUnknownProjection)
}

// load restores the notification's state from snapshot column col of the
// given table, or the zero Notification when there is none.
func (a *applier) load(tableQuery string, id domain.NotificationID) (domain.Notification, error) {
	var raw string
	st, err := a.stmt(tableQuery)
	if err != nil {
		return domain.Notification{}, err
	}
	err = st.QueryRowContext(a.ctx, string(id)).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Notification{}, nil
	}
	if err != nil {
		return domain.Notification{}, err
	}
	var s domain.NotificationSnapshot
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return domain.Notification{}, fmt.Errorf("decode snapshot of %s: %w", id, err)
	}
	return domain.RestoreNotification(s), nil
}

func snapshotJSON(n domain.Notification) (string, error) {
	b, err := json.Marshal(n.Snapshot())
	return string(b), err
}

// ---- notifications: status view and search index ----

func (a *applier) notifications(order []domain.NotificationID, steps map[domain.NotificationID][]step) error {
	for _, id := range order {
		n, err := a.load(`SELECT snapshot FROM {notifications} WHERE id = ?`, id)
		if err != nil {
			return err
		}
		existed := n.Exists()
		var updated time.Time
		for _, s := range steps[id] {
			n = domain.EvolveNotification(n, s.ev)
			updated = projections.EventTime(s.ev, s.rec.RecordedAt)
		}
		if !n.Exists() {
			continue
		}
		if err := a.writeNotification(n, updated, existed); err != nil {
			return err
		}
	}
	return nil
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

func (a *applier) writeNotification(n domain.Notification, updated time.Time, existed bool) error {
	snap, err := snapshotJSON(n)
	if err != nil {
		return err
	}
	req := n.Request()
	recipient, err := json.Marshal(req.Recipient)
	if err != nil {
		return err
	}
	if err := a.exec(`INSERT INTO {notifications}
		(id, status, priority, category, recipient_id, batch_id, channels, created_at, updated_at, version, recipient, snapshot)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, priority = excluded.priority,
			category = excluded.category, channels = excluded.channels, updated_at = excluded.updated_at,
			version = excluded.version, snapshot = excluded.snapshot`,
		string(n.ID()), string(n.Status()), string(n.Priority()), n.Category(), req.Recipient.ID, req.BatchID,
		joinChannels(channelsOf(n)), n.RequestedAt().UnixNano(), updated.UnixNano(), n.Version(),
		string(recipient), snap); err != nil {
		return err
	}
	if existed {
		if err := a.exec(`DELETE FROM {notification_deliveries} WHERE notification_id = ?`, string(n.ID())); err != nil {
			return err
		}
	}
	for i, d := range n.Deliveries() {
		var next int64
		if t := d.NextAttemptAt(); !t.IsZero() {
			next = t.UnixNano()
		}
		if err := a.exec(`INSERT INTO {notification_deliveries}
			(notification_id, seq, delivery_id, channel, address, status, attempts, last_error,
			 provider_message_id, next_attempt_at, repeats, suppression_reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(n.ID()), i, string(d.ID()), string(d.Channel()), d.Address(), string(d.Status()),
			d.Attempts(), d.LastError(), d.ProviderMessageID(), next, string(d.Repeats()), d.SuppressionReason()); err != nil {
			return err
		}
	}
	return nil
}

// ---- inbox ----

// inInbox reports whether an in-app delivery in status s is shown: once the
// in-app write happened (the adapter records delivered, or sent).
func inInbox(s domain.DeliveryStatus) bool { return s.Succeeded() }

func (a *applier) inbox(order []domain.NotificationID, steps map[domain.NotificationID][]step) error {
	touched := map[string]bool{}
	var recipients []string
	for _, id := range order {
		n, err := a.load(`SELECT snapshot FROM {inbox_state} WHERE notification_id = ?`, id)
		if err != nil {
			return err
		}
		var updated time.Time
		for _, s := range steps[id] {
			n = domain.EvolveNotification(n, s.ev)
			updated = projections.EventTime(s.ev, s.rec.RecordedAt)
		}
		if !n.Exists() {
			continue
		}
		snap, err := snapshotJSON(n)
		if err != nil {
			return err
		}
		if err := a.exec(`INSERT INTO {inbox_state} (notification_id, snapshot) VALUES (?, ?)
			ON CONFLICT (notification_id) DO UPDATE SET snapshot = excluded.snapshot`, string(id), snap); err != nil {
			return err
		}
		req := n.Request()
		rid := req.Recipient.ID
		if rid == "" {
			continue
		}
		if !touched[rid] {
			touched[rid] = true
			recipients = append(recipients, rid)
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
			key := id.DeliveryKey(d.ID())
			if !inInbox(d.Status()) {
				if err := a.exec(`DELETE FROM {inbox_items} WHERE recipient_id = ? AND item_key = ?`, rid, key); err != nil {
					return err
				}
				continue
			}
			read := 0
			if d.Status() == domain.DeliveryStatusRead {
				read = 1
			}
			if err := a.exec(`INSERT INTO {inbox_items}
				(recipient_id, item_key, notification_id, delivery_id, status, read, category, priority,
				 subject, body, template, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (recipient_id, item_key) DO UPDATE SET status = excluded.status,
					read = excluded.read, updated_at = excluded.updated_at
				WHERE status <> excluded.status`,
				rid, key, string(id), string(d.ID()), string(d.Status()), read, n.Category(), string(n.Priority()),
				subject, body, tmpl, n.RequestedAt().UnixNano(), updated.UnixNano()); err != nil {
				return err
			}
		}
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
func (a *applier) analytics(order []domain.NotificationID, steps map[domain.NotificationID][]step) error {
	deliveries := map[deliveryKey]int64{}
	latency := map[latencyKey]int64{}
	failures := map[failureKey]int64{}
	for _, id := range order {
		n, err := a.load(`SELECT snapshot FROM {analytics_state} WHERE notification_id = ?`, id)
		if err != nil {
			return err
		}
		for _, s := range steps[id] {
			before := n
			n = domain.EvolveNotification(n, s.ev)
			if !n.Exists() {
				continue
			}
			at := projections.EventTime(s.ev, s.rec.RecordedAt)
			for _, d := range n.Deliveries() {
				old, had := before.Delivery(d.ID())
				if had && old.Status() == d.Status() {
					continue
				}
				for _, b := range []string{projections.BucketMinute, projections.BucketHour, projections.BucketDay} {
					deliveries[deliveryKey{b, bucketStart(at, b).UnixNano(), d.Channel(), d.Status(), n.Priority()}]++
				}
				if d.Status().Succeeded() && (!had || !old.Status().Succeeded()) {
					lat := max(0, at.Sub(n.RequestedAt()))
					latency[latencyKey{bucketStart(at, projections.BucketHour).UnixNano(), d.Channel(), latencyBucket(lat)}]++
				}
			}
			hour := bucketStart(at, projections.BucketHour).UnixNano()
			switch ev := s.ev.(type) {
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
		if !n.Exists() {
			continue
		}
		snap, err := snapshotJSON(n)
		if err != nil {
			return err
		}
		if err := a.exec(`INSERT INTO {analytics_state} (notification_id, snapshot) VALUES (?, ?)
			ON CONFLICT (notification_id) DO UPDATE SET snapshot = excluded.snapshot`, string(id), snap); err != nil {
			return err
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
