package projections

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
)

// The projections every view store maintains. Each has its own checkpoint
// and tables, so each can lag, fail or be rebuilt alone.
const (
	// ProjectionNotifications holds the notification status view (overall
	// and per delivery) and the search index.
	ProjectionNotifications = "notifications"
	// ProjectionInbox holds the recipients' in-app inboxes.
	ProjectionInbox = "inbox"
	// ProjectionAnalytics holds delivery buckets, latency histograms and
	// failure reasons.
	ProjectionAnalytics = "analytics"
)

// Names returns every projection name in a fixed order. The slice is fresh
// on every call.
func Names() []string {
	return []string{ProjectionNotifications, ProjectionInbox, ProjectionAnalytics}
}

var (
	// ErrNotFound means the view holds no such item (yet: views are
	// eventually consistent with the log).
	ErrNotFound = errors.New("not found")
	// ErrUnknownProjection means no projection has that name.
	ErrUnknownProjection = errors.New("unknown projection")
	// ErrRebuildInProgress means a rebuild of the projection is already
	// running.
	ErrRebuildInProgress = errors.New("rebuild already in progress")
	// ErrNotRunning means the Runner is not running, so it cannot start a
	// rebuild.
	ErrNotRunning = errors.New("projection runner not running")
	// ErrInvalidCursor means a pagination cursor was not one this package
	// produced.
	ErrInvalidCursor = errors.New("invalid cursor")
	// ErrInvalidQuery means a query's parameters make no sense (an unknown
	// group-by dimension, from after to...). Errors returned for it are
	// *QueryError naming the parameter.
	ErrInvalidQuery = errors.New("invalid query")
)

// QueryError names the query parameter a view refused.
type QueryError struct {
	Param  string
	Reason string
}

func (e *QueryError) Error() string { return "invalid query parameter " + e.Param + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalidQuery) true.
func (e *QueryError) Unwrap() error { return ErrInvalidQuery }

// Store is the write side of a view store, as the Runner drives it.
// Implementations are safe for concurrent use; the Runner calls Apply for a
// given projection from one goroutine at a time (the single writer).
type Store interface {
	// Checkpoint returns the position of the last event applied to the
	// projection (0 when none). Shadow(name) names a rebuild in progress.
	Checkpoint(ctx context.Context, projection string) (eventstore.Position, error)

	// Apply applies events (in log order) and records checkpoint as the
	// projection's new checkpoint, all in one transaction: after a crash
	// either both are there or neither is. Events at or below the stored
	// checkpoint are skipped, so re-applying a batch changes nothing.
	// Events of other aggregates and of unknown types are skipped too.
	Apply(ctx context.Context, projection string, events []eventstore.RecordedEvent, checkpoint eventstore.Position) error

	// BeginRebuild drops any leftover shadow of the projection and creates
	// fresh, empty shadow tables with checkpoint 0. The live tables keep
	// answering queries and keep taking Apply calls.
	BeginRebuild(ctx context.Context, projection string) error

	// CompleteRebuild atomically replaces the projection's live tables and
	// checkpoint by its shadow's, in one transaction: readers see either
	// the old view or the new one, never a mix.
	CompleteRebuild(ctx context.Context, projection string) error
}

// CatchUpFinisher is a Store that defers work while a projection catches
// up from far behind, to do it once when it has (the SQLite views build
// the secondary indexes of tables created empty then). The Runner calls
// FinishCatchUp for the projection, or Shadow(projection), each time a
// catch-up reaches the log's end, before it follows live appends or swaps
// a rebuild in; while the live projection's call is pending, Status shows
// it CatchingUp. FinishCatchUp must be cheap when nothing is deferred.
type CatchUpFinisher interface {
	FinishCatchUp(ctx context.Context, projection string) error
}

// PendingDelivery is a delivery the dispatcher still owes an attempt:
// planned, retry scheduled, or in flight with an outcome never recorded
// (its worker may have died; DueAt is then when the attempt's lease ends).
type PendingDelivery struct {
	NotificationID domain.NotificationID
	DeliveryID     domain.DeliveryID
	Channel        domain.Channel
	Priority       domain.Priority
	Status         domain.DeliveryStatus
	// DueAt is when the next attempt may start; zero means now.
	DueAt time.Time
	// Address is where the delivery goes, for the dispatcher's limits per
	// address; empty in a row written before the store kept it (a
	// Cassandra keyspace migrated from schema version 3, until the
	// notification changes again or the projection is rebuilt).
	Address string
}

// DeliveryBacklog lets a dispatcher recover its work at start from the
// notifications projection instead of replaying the whole log.
type DeliveryBacklog interface {
	// PendingDeliveries calls fn for every pending delivery as of one
	// consistent read, and returns the checkpoint of the notifications
	// projection that read reflects: following the log after it misses
	// nothing.
	PendingDeliveries(ctx context.Context, fn func(PendingDelivery) error) (eventstore.Position, error)
}

// Shadow returns the name under which Store keeps the rebuild of projection
// (its tables and checkpoint) until CompleteRebuild swaps it in.
func Shadow(projection string) string { return projection + "#rebuild" }

// NotificationDetail is the status view of one notification.
type NotificationDetail struct {
	NotificationSummary
	Recipient  domain.Recipient `json:"recipient"`
	Deliveries []DeliveryView   `json:"deliveries"`
}

// NotificationSummary is one notification as the search index holds it.
type NotificationSummary struct {
	ID          domain.NotificationID     `json:"id"`
	Status      domain.NotificationStatus `json:"status"`
	Priority    domain.Priority           `json:"priority"`
	Category    string                    `json:"category,omitempty"`
	RecipientID string                    `json:"recipient_id,omitempty"`
	BatchID     string                    `json:"batch_id,omitempty"`
	Channels    []domain.Channel          `json:"channels"`
	CreatedAt   time.Time                 `json:"created_at"`
	UpdatedAt   time.Time                 `json:"updated_at"`
	// Version is the stream version the view reflects.
	Version int `json:"version"`
}

// DeliveryView is one delivery of a notification.
type DeliveryView struct {
	ID                domain.DeliveryID     `json:"id"`
	Channel           domain.Channel        `json:"channel"`
	Address           string                `json:"address,omitempty"`
	Status            domain.DeliveryStatus `json:"status"`
	Attempts          int                   `json:"attempts"`
	LastError         string                `json:"last_error,omitempty"`
	ProviderMessageID string                `json:"provider_message_id,omitempty"`
	NextAttemptAt     *time.Time            `json:"next_attempt_at,omitempty"`
	Repeats           domain.DeliveryID     `json:"repeats,omitempty"`
	SuppressionReason string                `json:"suppression_reason,omitempty"`
}

// NotificationView answers "what happened to notification X".
type NotificationView interface {
	// Notification returns the notification's current view, or an error
	// matching ErrNotFound.
	Notification(ctx context.Context, id domain.NotificationID) (NotificationDetail, error)
}

// SearchQuery filters the search index. Zero fields do not filter. From is
// inclusive, To exclusive (both on created_at). Limit 0 means
// DefaultLimit; it is capped at MaxLimit.
type SearchQuery struct {
	Status      domain.NotificationStatus
	Channel     domain.Channel
	Priority    domain.Priority
	Category    string
	RecipientID string
	BatchID     string
	From, To    time.Time
	Limit       int
	Cursor      string
}

// Page sizes of Search and Inbox.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// ClampLimit returns the page size to use for a requested limit.
func ClampLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultLimit
	case limit > MaxLimit:
		return MaxLimit
	}
	return limit
}

// SearchPage is one page of search results, newest first (created_at, then
// id, descending). NextCursor is "" on the last page.
type SearchPage struct {
	Items      []NotificationSummary `json:"items"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// Search answers filtered listings of notifications.
type Search interface {
	// Search returns one page. A cursor that is not from a previous page
	// gives an error matching ErrInvalidCursor.
	Search(ctx context.Context, q SearchQuery) (SearchPage, error)
}

// InboxItem is one in-app delivery in a recipient's inbox.
type InboxItem struct {
	NotificationID domain.NotificationID `json:"notification_id"`
	DeliveryID     domain.DeliveryID     `json:"delivery_id"`
	Status         domain.DeliveryStatus `json:"status"`
	Read           bool                  `json:"read"`
	Category       string                `json:"category,omitempty"`
	Priority       domain.Priority       `json:"priority"`
	Subject        string                `json:"subject,omitempty"`
	Body           string                `json:"body,omitempty"`
	Template       string                `json:"template,omitempty"`
	CreatedAt      time.Time             `json:"created_at"`
	UpdatedAt      time.Time             `json:"updated_at"`
}

// InboxQuery selects a page of an inbox, newest first.
type InboxQuery struct {
	UnreadOnly bool
	Limit      int
	Cursor     string
}

// InboxPage is one page of an inbox. UnreadCount is the whole inbox's
// unread count, not the page's.
type InboxPage struct {
	Items       []InboxItem `json:"items"`
	UnreadCount int         `json:"unread_count"`
	NextCursor  string      `json:"next_cursor,omitempty"`
}

// Inbox answers "what did we show user Y in app". An in-app delivery enters
// the inbox once it is delivered (or sent), and counts as unread until it
// is read. An unknown recipient has an empty inbox.
type Inbox interface {
	Inbox(ctx context.Context, recipientID string, q InboxQuery) (InboxPage, error)
}

// Bucket sizes of the analytics.
const (
	BucketMinute = "minute"
	BucketHour   = "hour"
	BucketDay    = "day"
)

// Dimensions a DeliveriesQuery may group by.
const (
	DimChannel  = "channel"
	DimStatus   = "status"
	DimPriority = "priority"
)

// DeliveriesQuery asks how many deliveries entered each status, per bucket
// of time in [From, To). GroupBy lists the dimensions kept apart (the others
// are summed); filters narrow before grouping.
type DeliveriesQuery struct {
	From, To time.Time
	Bucket   string
	GroupBy  []string
	Channel  domain.Channel
	Status   domain.DeliveryStatus
	Priority domain.Priority
}

// DeliveryCount is one row of deliveries analytics. Dimensions not grouped
// by are "".
type DeliveryCount struct {
	BucketStart time.Time             `json:"bucket_start"`
	Channel     domain.Channel        `json:"channel,omitempty"`
	Status      domain.DeliveryStatus `json:"status,omitempty"`
	Priority    domain.Priority       `json:"priority,omitempty"`
	Count       int64                 `json:"count"`
}

// LatencyBoundsMillis are the fixed upper bounds of the latency histogram
// buckets (requested → first success), in milliseconds; one more bucket
// holds everything slower than the last bound.
var LatencyBoundsMillis = []int64{
	10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000,
	60_000, 300_000, 900_000, 3_600_000, 86_400_000,
}

// LatencyQuery selects the successes in [From, To) (by time of success),
// on Channel or on every channel when "".
type LatencyQuery struct {
	Channel  domain.Channel
	From, To time.Time
}

// LatencyBucket is one histogram bucket: successes slower than the previous
// bound and at most LeMillis (-1 for the last, unbounded bucket).
type LatencyBucket struct {
	LeMillis int64 `json:"le_ms"`
	Count    int64 `json:"count"`
}

// LatencySummary is a latency histogram and its percentiles, estimated by
// linear interpolation inside the bucket that holds them.
type LatencySummary struct {
	Count     int64           `json:"count"`
	P50Millis float64         `json:"p50_ms"`
	P90Millis float64         `json:"p90_ms"`
	P99Millis float64         `json:"p99_ms"`
	Buckets   []LatencyBucket `json:"buckets"`
}

// FailuresQuery selects failures in [From, To), on Channel or all when "".
type FailuresQuery struct {
	Channel  domain.Channel
	From, To time.Time
}

// FailureCount is how often one reason made deliveries on one channel fail
// (failed attempts and failure receipts).
type FailureCount struct {
	Channel domain.Channel `json:"channel"`
	Reason  string         `json:"reason"`
	Count   int64          `json:"count"`
}

// Analytics answers aggregate questions. Times are bucketed at the time an
// event says the thing happened (attempted_at, succeeded_at...).
type Analytics interface {
	Deliveries(ctx context.Context, q DeliveriesQuery) ([]DeliveryCount, error)
	Latency(ctx context.Context, q LatencyQuery) (LatencySummary, error)
	Failures(ctx context.Context, q FailuresQuery) ([]FailureCount, error)
}

// EncodeCursor returns the opaque cursor that resumes a newest-first listing
// after the item created at createdAt with key id.
func EncodeCursor(createdAt time.Time, id string) string {
	b, _ := json.Marshal([2]any{createdAt.UnixNano(), id})
	return base64URL.EncodeToString(b)
}

// DecodeCursor reverses EncodeCursor; anything else gives ErrInvalidCursor.
func DecodeCursor(cursor string) (createdAt time.Time, id string, err error) {
	b, err := base64URL.DecodeString(cursor)
	if err != nil {
		return time.Time{}, "", ErrInvalidCursor
	}
	var raw [2]json.RawMessage
	var ns int64
	if json.Unmarshal(b, &raw) != nil || json.Unmarshal(raw[0], &ns) != nil || json.Unmarshal(raw[1], &id) != nil || id == "" {
		return time.Time{}, "", ErrInvalidCursor
	}
	return time.Unix(0, ns).UTC(), id, nil
}
