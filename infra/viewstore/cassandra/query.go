package cassandra

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gocql/gocql"
	fastjson "github.com/segmentio/encoding/json" // see domain/codec.go

	"herald/domain"
	"herald/projections"
)

func fromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }

func toChannels(cs []string) []domain.Channel {
	out := make([]domain.Channel, 0, len(cs))
	for _, c := range cs {
		out = append(out, domain.Channel(c))
	}
	return out
}

// Notification implements projections.NotificationView. The summary and
// the deliveries live in one row, so they always agree.
func (v *Views) Notification(ctx context.Context, id domain.NotificationID) (projections.NotificationDetail, error) {
	t, err := v.liveTable(ctx, projections.ProjectionNotifications, "notifications")
	if err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	var (
		d                     projections.NotificationDetail
		status, prio          string
		channels              []string
		created, updated      int64
		recipient, deliveries string
	)
	err = v.s.Query(`SELECT status, priority, category, recipient_id, batch_id, channels, created_at, updated_at, version,
		recipient, deliveries FROM `+t+` WHERE id = ?`, string(id)).WithContext(ctx).
		Scan(&status, &prio, &d.Category, &d.RecipientID, &d.BatchID, &channels, &created, &updated, &d.Version, &recipient, &deliveries)
	if errors.Is(err, gocql.ErrNotFound) {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, projections.ErrNotFound)
	}
	if err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	d.ID, d.Status, d.Priority = id, domain.NotificationStatus(status), domain.Priority(prio)
	d.Channels = toChannels(channels)
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	if err := fastjson.Unmarshal([]byte(recipient), &d.Recipient); err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	d.Deliveries = []projections.DeliveryView{}
	if err := fastjson.Unmarshal([]byte(deliveries), &d.Deliveries); err != nil {
		return projections.NotificationDetail{}, fmt.Errorf("read notification %s: %w", id, err)
	}
	return d, nil
}

// Search implements projections.Search. It walks the day partitions that
// hold notifications, newest first, asking each for the rest of the page
// with the filters (SAI indexes) and the bounds as a (created_at, id)
// slice, so the order is (created_at, id) descending and a cursor resumes
// strictly after the last item of the previous page, as with SQLite.
func (v *Views) Search(ctx context.Context, q projections.SearchQuery) (projections.SearchPage, error) {
	ptr, err := v.livePointer(ctx, projections.ProjectionNotifications)
	if err != nil {
		return projections.SearchPage{}, fmt.Errorf("search: %w", err)
	}
	table := tableName(v.ks, "search", ptr.live)
	days := tableName(v.ks, "search_days", ptr.live)

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
		where = append(where, "channels CONTAINS ?")
		args = append(args, string(q.Channel))
	}
	// Bounds on (created_at, id): from (From, "") inclusive, to the lesser
	// of (To, "") and the cursor exclusive.
	var (
		lower, upper       int64
		upperID            string
		hasLower, hasUpper bool
	)
	if !q.From.IsZero() {
		lower, hasLower = q.From.UnixNano(), true
	}
	if !q.To.IsZero() {
		upper, hasUpper = q.To.UnixNano(), true
	}
	if q.Cursor != "" {
		at, id, err := projections.DecodeCursor(q.Cursor)
		if err != nil {
			return projections.SearchPage{}, fmt.Errorf("search: %w", err)
		}
		if c := at.UnixNano(); !hasUpper || c < upper || (c == upper && id < upperID) {
			upper, upperID, hasUpper = c, id, true
		}
	}
	if hasLower {
		where = append(where, "(created_at, id) >= (?, ?)")
		args = append(args, lower, "")
	}
	if hasUpper {
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, upper, upperID)
	}

	dayQuery := `SELECT day FROM ` + days + ` WHERE shard = 0`
	var dayArgs []any
	if hasLower {
		dayQuery += ` AND day >= ?`
		dayArgs = append(dayArgs, dayOf(lower))
	}
	if hasUpper {
		dayQuery += ` AND day <= ?`
		dayArgs = append(dayArgs, dayOf(upper))
	}
	var dayList []int
	it := v.s.Query(dayQuery, dayArgs...).WithContext(ctx).Iter()
	var d int
	for it.Scan(&d) {
		dayList = append(dayList, d)
	}
	if err := it.Close(); err != nil {
		return projections.SearchPage{}, fmt.Errorf("search: %w", err)
	}

	limit := projections.ClampLimit(q.Limit)
	stmt := `SELECT id, status, priority, category, recipient_id, batch_id, channel_list, created_at, updated_at, version
		FROM ` + table + ` WHERE ` + strings.Join(append([]string{"day = ?"}, where...), " AND ") + ` LIMIT ?`
	page := projections.SearchPage{Items: []projections.NotificationSummary{}}
	for _, d := range dayList { // newest day first (clustering order)
		want := limit + 1 - len(page.Items)
		if want <= 0 {
			break
		}
		it := v.s.Query(stmt, append(append([]any{d}, args...), want)...).WithContext(ctx).PageSize(want).Iter()
		for {
			var (
				s                projections.NotificationSummary
				id, status, prio string
				channels         []string
				created, updated int64
			)
			if !it.Scan(&id, &status, &prio, &s.Category, &s.RecipientID, &s.BatchID, &channels, &created, &updated, &s.Version) {
				break
			}
			s.ID, s.Status, s.Priority = domain.NotificationID(id), domain.NotificationStatus(status), domain.Priority(prio)
			s.Channels = toChannels(channels)
			s.CreatedAt, s.UpdatedAt = fromNanos(created), fromNanos(updated)
			page.Items = append(page.Items, s)
		}
		if err := it.Close(); err != nil {
			return projections.SearchPage{}, fmt.Errorf("search: %w", err)
		}
	}
	if len(page.Items) > limit {
		page.Items = page.Items[:limit]
		last := page.Items[limit-1]
		page.NextCursor = projections.EncodeCursor(last.CreatedAt, string(last.ID))
	}
	return page, nil
}

// Inbox implements projections.Inbox. The unread count and the page are
// two reads, not one snapshot: under concurrent writes they may differ by
// the items of the batch in between.
func (v *Views) Inbox(ctx context.Context, recipientID string, q projections.InboxQuery) (projections.InboxPage, error) {
	ptr, err := v.livePointer(ctx, projections.ProjectionInbox)
	if err != nil {
		return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
	}
	unreadTable := tableName(v.ks, "inbox_unread", ptr.live)
	page := projections.InboxPage{Items: []projections.InboxItem{}}
	var unread int64
	if err := v.s.Query(`SELECT count(*) FROM `+unreadTable+` WHERE recipient_id = ?`, recipientID).WithContext(ctx).Scan(&unread); err != nil {
		return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
	}
	page.UnreadCount = int(unread)
	table := tableName(v.ks, "inbox_items", ptr.live)
	if q.UnreadOnly {
		table = unreadTable
	}
	where := "recipient_id = ?"
	args := []any{recipientID}
	if q.Cursor != "" {
		at, key, err := projections.DecodeCursor(q.Cursor)
		if err != nil {
			return projections.InboxPage{}, fmt.Errorf("read inbox: %w", err)
		}
		where += " AND (created_at, item_key) < (?, ?)"
		args = append(args, at.UnixNano(), key)
	}
	limit := projections.ClampLimit(q.Limit)
	args = append(args, limit+1)
	it := v.s.Query(`SELECT item_key, notification_id, delivery_id, status, read, category, priority, subject, body, template,
		created_at, updated_at FROM `+table+` WHERE `+where+` LIMIT ?`, args...).WithContext(ctx).PageSize(limit + 1).Iter()
	var keys []string
	for {
		var (
			item                  projections.InboxItem
			key, nid, did, st, pr string
			created, updated      int64
		)
		if !it.Scan(&key, &nid, &did, &st, &item.Read, &item.Category, &pr, &item.Subject, &item.Body, &item.Template, &created, &updated) {
			break
		}
		item.NotificationID, item.DeliveryID, item.Status, item.Priority = domain.NotificationID(nid), domain.DeliveryID(did), domain.DeliveryStatus(st), domain.Priority(pr)
		item.CreatedAt, item.UpdatedAt = fromNanos(created), fromNanos(updated)
		page.Items = append(page.Items, item)
		keys = append(keys, key)
	}
	if err := it.Close(); err != nil {
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

// spans returns the partitions of an analytics kind that may hold buckets
// starting in [from, to) (zero bounds are open).
func (v *Views) spans(ctx context.Context, table, kind, bucket string, from, to int64, hasFrom, hasTo bool) ([]int64, error) {
	stmt := `SELECT span FROM ` + table + ` WHERE kind = ?`
	args := []any{kind}
	if hasFrom {
		stmt += ` AND span >= ?`
		args = append(args, spanOf(bucket, from))
	}
	if hasTo {
		stmt += ` AND span < ?`
		args = append(args, to)
	}
	var out []int64
	it := v.s.Query(stmt, args...).WithContext(ctx).Iter()
	var s int64
	for it.Scan(&s) {
		out = append(out, s)
	}
	return out, it.Close()
}

// analyticsRange is a query's [from, to) on bucket starts: from is widened
// to the start of its bucket.
type analyticsRange struct {
	from, to       int64
	hasFrom, hasTo bool
}

func newAnalyticsRange(from, to time.Time, bucket string) analyticsRange {
	var r analyticsRange
	if !from.IsZero() {
		r.from, r.hasFrom = bucketStart(from, bucket).UnixNano(), true
	}
	if !to.IsZero() {
		r.to, r.hasTo = to.UnixNano(), true
	}
	return r
}

// scanRange reads, from every partition of kind in r, the rows whose start
// is in r, calling row with a scanner positioned on each.
func (v *Views) scanRange(ctx context.Context, projection, kind, bucket, table, cols, partition string, partArgs []any, r analyticsRange,
	row func(scan func(dest ...any) bool) bool) error {
	ptr, err := v.livePointer(ctx, projection)
	if err != nil {
		return err
	}
	spans, err := v.spans(ctx, tableName(v.ks, "analytics_spans", ptr.live), kind, bucket, r.from, r.to, r.hasFrom, r.hasTo)
	if err != nil {
		return err
	}
	conds := []string{"span = ?"}
	if partition != "" {
		conds = append([]string{partition}, conds...)
	}
	stmt := `SELECT ` + cols + ` FROM ` + tableName(v.ks, table, ptr.live) + ` WHERE ` + strings.Join(conds, " AND ")
	if r.hasFrom {
		stmt += ` AND start >= ?`
	}
	if r.hasTo {
		stmt += ` AND start < ?`
	}
	for _, s := range spans {
		args := append(append([]any{}, partArgs...), s)
		if r.hasFrom {
			args = append(args, r.from)
		}
		if r.hasTo {
			args = append(args, r.to)
		}
		it := v.s.Query(stmt, args...).WithContext(ctx).Iter()
		for row(it.Scan) {
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Deliveries implements projections.Analytics. Rows are read per partition
// and grouped and summed here: a partition holds at most one span of
// buckets, and Cassandra's GROUP BY could not sum across the dimensions
// left out.
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
	keep := map[string]bool{}
	for _, g := range q.GroupBy {
		switch g {
		case projections.DimChannel, projections.DimStatus, projections.DimPriority:
			keep[g] = true
		default:
			return nil, fmt.Errorf("delivery analytics: %w", &projections.QueryError{Param: "group_by", Reason: fmt.Sprintf("unknown dimension %q", g)})
		}
	}
	type groupKey struct {
		start       int64
		ch, st, pri string
	}
	sums := map[groupKey]int64{}
	r := newAnalyticsRange(q.From, q.To, q.Bucket)
	err := v.scanRange(ctx, projections.ProjectionAnalytics, kindDeliveries+q.Bucket, q.Bucket, "analytics_deliveries",
		"start, channel, status, priority, count", "bucket = ?", []any{q.Bucket}, r,
		func(scan func(dest ...any) bool) bool {
			var (
				k     groupKey
				count int64
			)
			if !scan(&k.start, &k.ch, &k.st, &k.pri, &count) {
				return false
			}
			if (q.Channel != "" && k.ch != string(q.Channel)) || (q.Status != "" && k.st != string(q.Status)) ||
				(q.Priority != "" && k.pri != string(q.Priority)) {
				return true
			}
			if !keep[projections.DimChannel] {
				k.ch = ""
			}
			if !keep[projections.DimStatus] {
				k.st = ""
			}
			if !keep[projections.DimPriority] {
				k.pri = ""
			}
			sums[k] += count
			return true
		})
	if err != nil {
		return nil, fmt.Errorf("delivery analytics: %w", err)
	}
	out := make([]projections.DeliveryCount, 0, len(sums))
	for k, n := range sums {
		out = append(out, projections.DeliveryCount{BucketStart: fromNanos(k.start), Channel: domain.Channel(k.ch),
			Status: domain.DeliveryStatus(k.st), Priority: domain.Priority(k.pri), Count: n})
	}
	slices.SortFunc(out, func(a, b projections.DeliveryCount) int {
		return cmp.Or(a.BucketStart.Compare(b.BucketStart), cmp.Compare(a.Channel, b.Channel),
			cmp.Compare(a.Status, b.Status), cmp.Compare(a.Priority, b.Priority))
	})
	return out, nil
}

// Latency implements projections.Analytics. Ranges are widened to whole
// hours, the histogram's time resolution.
func (v *Views) Latency(ctx context.Context, q projections.LatencyQuery) (projections.LatencySummary, error) {
	if err := validRange(q.From, q.To); err != nil {
		return projections.LatencySummary{}, fmt.Errorf("latency analytics: %w", err)
	}
	counts := make([]int64, len(projections.LatencyBoundsMillis)+1)
	r := newAnalyticsRange(q.From, q.To, projections.BucketHour)
	err := v.scanRange(ctx, projections.ProjectionAnalytics, kindLatency, projections.BucketHour, "analytics_latency",
		"channel, le, count", "", nil, r,
		func(scan func(dest ...any) bool) bool {
			var (
				ch    string
				le    int
				count int64
			)
			if !scan(&ch, &le, &count) {
				return false
			}
			if (q.Channel == "" || ch == string(q.Channel)) && le >= 0 && le < len(counts) {
				counts[le] += count
			}
			return true
		})
	if err != nil {
		return projections.LatencySummary{}, fmt.Errorf("latency analytics: %w", err)
	}
	return projections.SummarizeLatency(counts), nil
}

// Failures implements projections.Analytics, most frequent first.
func (v *Views) Failures(ctx context.Context, q projections.FailuresQuery) ([]projections.FailureCount, error) {
	if err := validRange(q.From, q.To); err != nil {
		return nil, fmt.Errorf("failure analytics: %w", err)
	}
	type key struct{ ch, reason string }
	sums := map[key]int64{}
	r := newAnalyticsRange(q.From, q.To, projections.BucketHour)
	err := v.scanRange(ctx, projections.ProjectionAnalytics, kindFailures, projections.BucketHour, "analytics_failures",
		"channel, reason, count", "", nil, r,
		func(scan func(dest ...any) bool) bool {
			var (
				k     key
				count int64
			)
			if !scan(&k.ch, &k.reason, &count) {
				return false
			}
			if q.Channel == "" || k.ch == string(q.Channel) {
				sums[k] += count
			}
			return true
		})
	if err != nil {
		return nil, fmt.Errorf("failure analytics: %w", err)
	}
	out := make([]projections.FailureCount, 0, len(sums))
	for k, n := range sums {
		out = append(out, projections.FailureCount{Channel: domain.Channel(k.ch), Reason: k.reason, Count: n})
	}
	slices.SortFunc(out, func(a, b projections.FailureCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Reason, b.Reason))
	})
	return out, nil
}
