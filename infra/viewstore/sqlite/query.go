package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func splitChannels(s string) []domain.Channel {
	out := []domain.Channel{}
	for c := range strings.SplitSeq(strings.Trim(s, ","), ",") {
		if c != "" {
			out = append(out, domain.Channel(c))
		}
	}
	return out
}

const summaryColumns = `id, status, priority, category, recipient_id, batch_id, channels, created_at, updated_at, version`

func scanSummary(sc interface{ Scan(...any) error }, extra ...any) (projections.NotificationSummary, error) {
	var (
		s                projections.NotificationSummary
		channels         string
		created, updated int64
		id, status, prio string
	)
	dest := append([]any{&id, &status, &prio, &s.Category, &s.RecipientID, &s.BatchID, &channels, &created, &updated, &s.Version}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return s, err
	}
	s.ID, s.Status, s.Priority = domain.NotificationID(id), domain.NotificationStatus(status), domain.Priority(prio)
	s.Channels = splitChannels(channels)
	s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
	return s, nil
}

// Notification implements projections.NotificationView. The notification
// and its deliveries are read in one read transaction, so they agree.
func (v *Views) Notification(ctx context.Context, id domain.NotificationID) (projections.NotificationDetail, error) {
	tx, err := v.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	defer tx.Rollback()
	var recipient string
	s, err := scanSummary(tx.QueryRowContext(ctx, `SELECT `+summaryColumns+`, recipient FROM notifications WHERE id = ?`, string(id)), &recipient)
	if errors.Is(err, sql.ErrNoRows) {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	d := projections.NotificationDetail{NotificationSummary: s, Deliveries: []projections.DeliveryView{}}
	if err := fastjson.Unmarshal([]byte(recipient), &d.Recipient); err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT delivery_id, channel, address, status, attempts, last_error,
		provider_message_id, next_attempt_at, repeats, suppression_reason
		FROM notification_deliveries WHERE notification_id = ? ORDER BY seq`, string(id))
	if err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			dv               projections.DeliveryView
			did, ch, st, rep string
			next             int64
		)
		if err := rows.Scan(&did, &ch, &dv.Address, &st, &dv.Attempts, &dv.LastError, &dv.ProviderMessageID, &next, &rep, &dv.SuppressionReason); err != nil {
			return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
		}
		dv.ID, dv.Channel, dv.Status, dv.Repeats = domain.DeliveryID(did), domain.Channel(ch), domain.DeliveryStatus(st), domain.DeliveryID(rep)
		if next != 0 {
			t := fromNanos(next)
			dv.NextAttemptAt = &t
		}
		d.Deliveries = append(d.Deliveries, dv)
	}
	if err := rows.Err(); err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	return d, nil
}

// Search implements projections.Search. The newest-first order is
// (created_at, id) descending, and a cursor resumes strictly after the
// last item of the previous page, so pages neither skip nor repeat items
// even while new notifications arrive.
func (v *Views) Search(ctx context.Context, q projections.SearchQuery) (projections.SearchPage, error) {
	var (
		where []string
		args  []any
	)
	eq := func(col, val string) {
		if val != "" {
			where = append(where, col+" = ?")
			args = append(args, val)
		}
	}
	eq("status", string(q.Status))
	eq("priority", string(q.Priority))
	eq("category", q.Category)
	eq("recipient_id", q.RecipientID)
	eq("batch_id", q.BatchID)
	if q.Channel != "" {
		where = append(where, "instr(channels, ?) > 0")
		args = append(args, ","+string(q.Channel)+",")
	}
	if !q.From.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, q.From.UnixNano())
	}
	if !q.To.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, q.To.UnixNano())
	}
	if q.Cursor != "" {
		at, id, err := projections.DecodeCursor(q.Cursor)
		if err != nil {
			return projections.SearchPage{}, fmt.Errorf("search: %w", err)
		}
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, at.UnixNano(), id)
	}
	limit := projections.ClampLimit(q.Limit)
	stmt := `SELECT ` + summaryColumns + ` FROM notifications`
	if len(where) > 0 {
		stmt += ` WHERE ` + strings.Join(where, " AND ")
	}
	stmt += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	args = append(args, limit+1)
	rows, err := v.readDB.QueryContext(ctx, stmt, args...)
	if err != nil {
		return projections.SearchPage{}, fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	page := projections.SearchPage{Items: []projections.NotificationSummary{}}
	for rows.Next() {
		s, err := scanSummary(rows)
		if err != nil {
			return projections.SearchPage{}, fmt.Errorf("search: %w", err)
		}
		page.Items = append(page.Items, s)
	}
	if err := rows.Err(); err != nil {
		return projections.SearchPage{}, fmt.Errorf("search: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = projections.EncodeCursor(last.CreatedAt, string(last.ID))
	}
	return page, nil
}

// Inbox implements projections.Inbox.
func (v *Views) Inbox(ctx context.Context, recipientID string, q projections.InboxQuery) (projections.InboxPage, error) {
	tx, err := v.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
	}
	defer tx.Rollback()
	page := projections.InboxPage{Items: []projections.InboxItem{}}
	err = tx.QueryRowContext(ctx, `SELECT unread FROM inbox_unread WHERE recipient_id = ?`, recipientID).Scan(&page.UnreadCount)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
	}
	where := []string{"recipient_id = ?"}
	args := []any{recipientID}
	if q.UnreadOnly {
		where = append(where, "read = 0")
	}
	if q.Cursor != "" {
		at, key, err := projections.DecodeCursor(q.Cursor)
		if err != nil {
			return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
		}
		where = append(where, "(created_at, item_key) < (?, ?)")
		args = append(args, at.UnixNano(), key)
	}
	limit := projections.ClampLimit(q.Limit)
	args = append(args, limit+1)
	rows, err := tx.QueryContext(ctx, `SELECT item_key, notification_id, delivery_id, status, read, category, priority,
		subject, body, template, created_at, updated_at FROM inbox_items WHERE `+strings.Join(where, " AND ")+`
		ORDER BY created_at DESC, item_key DESC LIMIT ?`, args...)
	if err != nil {
		return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var (
			it                    projections.InboxItem
			key, nid, did, st, pr string
			created, updated      int64
		)
		if err := rows.Scan(&key, &nid, &did, &st, &it.Read, &it.Category, &pr, &it.Subject, &it.Body, &it.Template, &created, &updated); err != nil {
			return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
		}
		it.NotificationID, it.DeliveryID, it.Status, it.Priority = domain.NotificationID(nid), domain.DeliveryID(did), domain.DeliveryStatus(st), domain.Priority(pr)
		it.CreatedAt, it.UpdatedAt = fromNanos(created), fromNanos(updated)
		page.Items = append(page.Items, it)
		keys = append(keys, key)
	}
	if err := rows.Err(); err != nil {
		return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		page.NextCursor = projections.EncodeCursor(page.Items[limit-1].CreatedAt, keys[limit-1])
	}
	return page, nil
}

func validRange(from, to time.Time) error {
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return &projections.QueryError{Param: "from", Reason: "must be before to"}
	}
	return nil
}

// Deliveries implements projections.Analytics.
func (v *Views) Deliveries(ctx context.Context, q projections.DeliveriesQuery) ([]projections.DeliveryCount, error) {
	if q.Bucket == "" {
		q.Bucket = projections.BucketHour
	}
	if !slices.Contains([]string{projections.BucketMinute, projections.BucketHour, projections.BucketDay}, q.Bucket) {
		return nil, fmt.Errorf("delivery analytics: %w", &projections.QueryError{Param: "bucket", Reason: "must be minute, hour or day"})
	}
	if err := validRange(q.From, q.To); err != nil {
		return nil, fmt.Errorf("delivery analytics: %w", err)
	}
	cols := map[string]string{projections.DimChannel: "''", projections.DimStatus: "''", projections.DimPriority: "''"}
	var groups []string
	for _, g := range q.GroupBy {
		if _, ok := cols[g]; !ok {
			return nil, fmt.Errorf("delivery analytics: %w", &projections.QueryError{Param: "group_by", Reason: fmt.Sprintf("unknown dimension %q", g)})
		}
		if cols[g] == "''" {
			cols[g] = g
			groups = append(groups, g)
		}
	}
	where := []string{"bucket = ?"}
	args := []any{q.Bucket}
	if !q.From.IsZero() {
		where = append(where, "start >= ?")
		args = append(args, bucketStart(q.From, q.Bucket).UnixNano())
	}
	if !q.To.IsZero() {
		where = append(where, "start < ?")
		args = append(args, q.To.UnixNano())
	}
	for col, val := range map[string]string{"channel": string(q.Channel), "status": string(q.Status), "priority": string(q.Priority)} {
		if val != "" {
			where = append(where, col+" = ?")
			args = append(args, val)
		}
	}
	stmt := fmt.Sprintf(`SELECT start, %s, %s, %s, SUM(count) FROM analytics_deliveries WHERE %s GROUP BY %s ORDER BY 1, 2, 3, 4`,
		cols[projections.DimChannel], cols[projections.DimStatus], cols[projections.DimPriority],
		strings.Join(where, " AND "), strings.Join(append([]string{"start"}, groups...), ", "))
	rows, err := v.readDB.QueryContext(ctx, stmt, args...)
	if err != nil {
		return nil, fmt.Errorf("delivery analytics: %w", err)
	}
	defer rows.Close()
	out := []projections.DeliveryCount{}
	for rows.Next() {
		var (
			c          projections.DeliveryCount
			start      int64
			ch, st, pr string
		)
		if err := rows.Scan(&start, &ch, &st, &pr, &c.Count); err != nil {
			return nil, fmt.Errorf("delivery analytics: %w", err)
		}
		c.BucketStart, c.Channel, c.Status, c.Priority = fromNanos(start), domain.Channel(ch), domain.DeliveryStatus(st), domain.Priority(pr)
		out = append(out, c)
	}
	return out, rows.Err()
}

// hourRange turns [from, to) into hour-bucket bounds: latency and failures
// are kept per hour, so a range is widened to whole hours.
func hourRange(from, to time.Time) (where []string, args []any) {
	if !from.IsZero() {
		where = append(where, "start >= ?")
		args = append(args, bucketStart(from, projections.BucketHour).UnixNano())
	}
	if !to.IsZero() {
		where = append(where, "start < ?")
		args = append(args, to.UnixNano())
	}
	return where, args
}

// Latency implements projections.Analytics. Ranges are widened to whole
// hours, the histogram's time resolution.
func (v *Views) Latency(ctx context.Context, q projections.LatencyQuery) (projections.LatencySummary, error) {
	if err := validRange(q.From, q.To); err != nil {
		return projections.LatencySummary{}, fmt.Errorf("latency analytics: %w", err)
	}
	where, args := hourRange(q.From, q.To)
	if q.Channel != "" {
		where = append(where, "channel = ?")
		args = append(args, string(q.Channel))
	}
	stmt := `SELECT le, SUM(count) FROM analytics_latency`
	if len(where) > 0 {
		stmt += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := v.readDB.QueryContext(ctx, stmt+` GROUP BY le`, args...)
	if err != nil {
		return projections.LatencySummary{}, fmt.Errorf("latency analytics: %w", err)
	}
	defer rows.Close()
	counts := make([]int64, len(projections.LatencyBoundsMillis)+1)
	for rows.Next() {
		var le int
		var c int64
		if err := rows.Scan(&le, &c); err != nil {
			return projections.LatencySummary{}, fmt.Errorf("latency analytics: %w", err)
		}
		if le >= 0 && le < len(counts) {
			counts[le] += c
		}
	}
	if err := rows.Err(); err != nil {
		return projections.LatencySummary{}, fmt.Errorf("latency analytics: %w", err)
	}
	return projections.SummarizeLatency(counts), nil
}

// Failures implements projections.Analytics, most frequent first.
func (v *Views) Failures(ctx context.Context, q projections.FailuresQuery) ([]projections.FailureCount, error) {
	if err := validRange(q.From, q.To); err != nil {
		return nil, fmt.Errorf("failure analytics: %w", err)
	}
	where, args := hourRange(q.From, q.To)
	if q.Channel != "" {
		where = append(where, "channel = ?")
		args = append(args, string(q.Channel))
	}
	stmt := `SELECT channel, reason, SUM(count) AS n FROM analytics_failures`
	if len(where) > 0 {
		stmt += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := v.readDB.QueryContext(ctx, stmt+` GROUP BY channel, reason ORDER BY n DESC, channel, reason`, args...)
	if err != nil {
		return nil, fmt.Errorf("failure analytics: %w", err)
	}
	defer rows.Close()
	out := []projections.FailureCount{}
	for rows.Next() {
		var f projections.FailureCount
		var ch string
		if err := rows.Scan(&ch, &f.Reason, &f.Count); err != nil {
			return nil, fmt.Errorf("failure analytics: %w", err)
		}
		f.Channel = domain.Channel(ch)
		out = append(out, f)
	}
	return out, rows.Err()
}

// PendingDeliveries implements projections.DeliveryBacklog: one read
// transaction gives the pending rows and the checkpoint they reflect.
func (v *Views) PendingDeliveries(ctx context.Context, fn func(projections.PendingDelivery) error) (eventstore.Position, error) {
	tx, err := v.readDB.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("read pending deliveries: %w", err)
	}
	defer tx.Rollback()
	pos, err := checkpointIn(ctx, tx, projections.ProjectionNotifications)
	if err != nil {
		return 0, fmt.Errorf("read pending deliveries: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT d.notification_id, d.delivery_id, d.channel, d.status, d.next_attempt_at, n.priority, d.address
		FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id
		WHERE d.status IN ('planned', 'retry_scheduled', 'in_flight')`)
	if err != nil {
		return 0, fmt.Errorf("read pending deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p                     projections.PendingDelivery
			nid, did, ch, st, pri string
			due                   int64
		)
		if err := rows.Scan(&nid, &did, &ch, &st, &due, &pri, &p.Address); err != nil {
			return 0, fmt.Errorf("read pending deliveries: %w", err)
		}
		p.NotificationID, p.DeliveryID, p.Channel = domain.NotificationID(nid), domain.DeliveryID(did), domain.Channel(ch)
		p.Status, p.Priority = domain.DeliveryStatus(st), domain.Priority(pri)
		if due != 0 {
			p.DueAt = fromNanos(due)
		}
		if err := fn(p); err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read pending deliveries: %w", err)
	}
	return pos, nil
}
