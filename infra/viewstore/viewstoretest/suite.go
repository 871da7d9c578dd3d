package viewstoretest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/projections"
)

// Views is what an engine must implement: the Runner's write side and every
// query port.
type Views interface {
	projections.Store
	projections.NotificationView
	projections.Search
	projections.Inbox
	projections.Analytics
}

// Run runs the contract suite. newViews returns a fresh, empty store each
// time it is called (and arranges its cleanup), folding the states it holds
// none of from h: the Recorder each test records its events with. reopen
// closes v and returns a store over the same data with nothing in memory,
// as a restart of the process would.
func Run(t *testing.T, newViews func(t *testing.T, h projections.History) Views, reopen func(t *testing.T, v Views, h projections.History) Views) {
	with := func(test func(t *testing.T, rec *Recorder, v Views)) func(t *testing.T) {
		return func(t *testing.T) {
			t.Parallel()
			rec := &Recorder{}
			test(t, rec, newViews(t, rec))
		}
	}
	with2 := func(test func(t *testing.T, rec *Recorder, a, b Views)) func(t *testing.T) {
		return func(t *testing.T) {
			t.Parallel()
			rec := &Recorder{}
			test(t, rec, newViews(t, rec), newViews(t, rec))
		}
	}
	t.Run("Checkpoint", with(testCheckpoint))
	t.Run("StatusFollowsDomain", with(testStatus))
	t.Run("BatchingDoesNotMatter", with2(testBatching))
	t.Run("ReapplyIsNoop", with(testReapply))
	t.Run("Search", with(testSearch))
	t.Run("Inbox", with(testInbox))
	t.Run("Analytics", with(testAnalytics))
	t.Run("Rebuild", with(testRebuild))
	t.Run("SharedBatches", with2(testSharedBatches))
	t.Run("Restarts", func(t *testing.T) {
		t.Parallel()
		rec := &Recorder{}
		testRestarts(t, rec, newViews(t, rec), newViews(t, rec), func(v Views) Views { return reopen(t, v, rec) })
	})
}

// testRestarts applies a scenario one event at a time with a restart before
// each, so that every notification's state comes from what the store keeps
// or folds from the log (the Recorder) rather than from memory, and
// compares the answers with a store that applied it all in one go. Every
// stream holds an event this domain does not decode, which takes a stream
// version but changes no state.
func testRestarts(t *testing.T, rec *Recorder, restarted, straight Views, reopen func(Views) Views) {
	var evs []eventstore.RecordedEvent
	for _, s := range Scenario() {
		evs = append(evs, rec.Record(s.ID, s.Events[0]), rec.RecordUnknown(s.ID, "delivery_frobnicated"))
		for _, e := range s.Events[1:] {
			evs = append(evs, rec.Record(s.ID, e))
		}
	}
	eachAgainstAll(t, evs, restarted, straight, reopen, "restarted before every event")
}

// eachAgainstAll applies evs one event at a time to each (reopening it
// with reopen first, when not nil) and in one batch to all, and fails
// unless the two answer the same; what names the first way.
func eachAgainstAll(t *testing.T, evs []eventstore.RecordedEvent, each, all Views, reopen func(Views) Views, what string) {
	t.Helper()
	for i := range evs {
		if reopen != nil {
			each = reopen(each)
		}
		ApplyAll(t, each, evs[i:i+1])
	}
	ApplyAll(t, all, evs)
	a := Capture(t, each, scenarioIDs(), scenarioRecipients)
	b := Capture(t, all, scenarioIDs(), scenarioRecipients)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("%s and one batch differ:\n%+v\n%+v", what, a, b)
	}
}

// ApplyAll applies events to every projection, checkpointing at the last.
func ApplyAll(t testing.TB, v projections.Store, events []eventstore.RecordedEvent) {
	t.Helper()
	if len(events) == 0 {
		return
	}
	for _, p := range projections.Names() {
		if err := v.Apply(context.Background(), p, events, events[len(events)-1].Position); err != nil {
			t.Fatalf("apply %s: %v", p, err)
		}
	}
}

// Snapshot is everything a store answers about the scenario, for comparing
// two stores (or one store before and after a rebuild).
type Snapshot struct {
	Details    map[domain.NotificationID]projections.NotificationDetail
	Search     projections.SearchPage
	Inboxes    map[string]projections.InboxPage
	Deliveries []projections.DeliveryCount
	Latency    projections.LatencySummary
	Failures   []projections.FailureCount
}

// Capture reads Snapshot from v for the given notifications and recipients.
func Capture(t testing.TB, v Views, ids []domain.NotificationID, recipients []string) Snapshot {
	t.Helper()
	ctx := context.Background()
	s := Snapshot{Details: map[domain.NotificationID]projections.NotificationDetail{}, Inboxes: map[string]projections.InboxPage{}}
	for _, id := range ids {
		d, err := v.Notification(ctx, id)
		if err != nil {
			t.Fatalf("notification %s: %v", id, err)
		}
		s.Details[id] = d
	}
	var err error
	if s.Search, err = v.Search(ctx, projections.SearchQuery{Limit: projections.MaxLimit}); err != nil {
		t.Fatalf("search: %v", err)
	}
	for _, r := range recipients {
		if s.Inboxes[r], err = v.Inbox(ctx, r, projections.InboxQuery{Limit: projections.MaxLimit}); err != nil {
			t.Fatalf("inbox %s: %v", r, err)
		}
	}
	if s.Deliveries, err = v.Deliveries(ctx, projections.DeliveriesQuery{Bucket: projections.BucketMinute,
		GroupBy: []string{projections.DimChannel, projections.DimStatus, projections.DimPriority}}); err != nil {
		t.Fatalf("deliveries: %v", err)
	}
	if s.Latency, err = v.Latency(ctx, projections.LatencyQuery{}); err != nil {
		t.Fatalf("latency: %v", err)
	}
	if s.Failures, err = v.Failures(ctx, projections.FailuresQuery{}); err != nil {
		t.Fatalf("failures: %v", err)
	}
	return s
}

func scenarioIDs() []domain.NotificationID { return []domain.NotificationID{N1, N2, N3} }

var scenarioRecipients = []string{"user-1", "user-2", "nobody"}

func testCheckpoint(t *testing.T, rec *Recorder, v Views) {
	ctx := context.Background()
	for _, p := range projections.Names() {
		cp, err := v.Checkpoint(ctx, p)
		if err != nil || cp != 0 {
			t.Fatalf("fresh checkpoint %s = %d, %v; want 0, nil", p, cp, err)
		}
	}
	evs := rec.RecordAll(Scenario()...)
	ApplyAll(t, v, evs)
	for _, p := range projections.Names() {
		cp, err := v.Checkpoint(ctx, p)
		if err != nil || cp != evs[len(evs)-1].Position {
			t.Fatalf("checkpoint %s = %d, %v; want %d", p, cp, err, evs[len(evs)-1].Position)
		}
	}
	// A checkpoint beyond the events (the log's other aggregates) is kept.
	if err := v.Apply(ctx, projections.ProjectionInbox, nil, 1000); err != nil {
		t.Fatal(err)
	}
	if cp, _ := v.Checkpoint(ctx, projections.ProjectionInbox); cp != 1000 {
		t.Fatalf("checkpoint after empty batch = %d, want 1000", cp)
	}
	if _, err := v.Checkpoint(ctx, "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("unknown projection checkpoint: %v", err)
	}
	if err := v.Apply(ctx, "nope", evs, 1); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("unknown projection apply: %v", err)
	}
}

func testStatus(t *testing.T, rec *Recorder, v Views) {
	ctx := context.Background()
	// Events of other aggregates and of unknown types are skipped.
	other := rec.Record("x", domain.NotificationExpired{ExpiredAt: Base})
	other.Stream = "template-x"
	evs := append([]eventstore.RecordedEvent{other}, rec.RecordAll(Scenario()...)...)
	ApplyAll(t, v, evs)

	for _, s := range Scenario() {
		want := domain.ReplayNotification(s.Events)
		got, err := v.Notification(ctx, s.ID)
		if err != nil {
			t.Fatalf("notification %s: %v", s.ID, err)
		}
		if got.Status != want.Status() || got.Priority != want.Priority() || got.Version != want.Version() {
			t.Errorf("%s: status %s priority %s version %d; domain says %s %s %d", s.ID, got.Status, got.Priority, got.Version,
				want.Status(), want.Priority(), want.Version())
		}
		if len(got.Deliveries) != len(want.Deliveries()) {
			t.Fatalf("%s: %d deliveries, domain has %d", s.ID, len(got.Deliveries), len(want.Deliveries()))
		}
		for i, d := range want.Deliveries() {
			g := got.Deliveries[i]
			if g.ID != d.ID() || g.Status != d.Status() || g.Attempts != d.Attempts() || g.LastError != d.LastError() ||
				g.ProviderMessageID != d.ProviderMessageID() || g.Channel != d.Channel() || g.Address != d.Address() {
				t.Errorf("%s delivery %d = %+v, domain says %+v", s.ID, i, g, want.Snapshot().Deliveries[i])
			}
		}
		if !got.CreatedAt.Equal(want.RequestedAt()) {
			t.Errorf("%s created_at %v, want %v", s.ID, got.CreatedAt, want.RequestedAt())
		}
	}
	n1, _ := v.Notification(ctx, N1)
	if n1.Status != domain.StatusDelivered || n1.Category != "security" || n1.BatchID != "b-1" || n1.RecipientID != "user-1" ||
		n1.Recipient.Email != "ada@example.com" || !reflect.DeepEqual(n1.Channels, []domain.Channel{domain.ChannelEmail, domain.ChannelInApp}) {
		t.Errorf("n-1 = %+v", n1)
	}
	if e := n1.Deliveries[0]; e.Status != domain.DeliveryStatusSent || e.Attempts != 2 || e.LastError != "timeout" || e.ProviderMessageID != "smtp-42" {
		t.Errorf("n-1 email delivery = %+v", e)
	}
	if !n1.UpdatedAt.Equal(Base.Add(time.Minute)) {
		t.Errorf("n-1 updated_at = %v, want the read time", n1.UpdatedAt)
	}
	if n2, _ := v.Notification(ctx, N2); n2.Status != domain.StatusFailed || n2.Deliveries[0].LastError != "invalid number" {
		t.Errorf("n-2 = %+v", n2)
	}
	if _, err := v.Notification(ctx, "missing"); !errors.Is(err, projections.ErrNotFound) {
		t.Errorf("missing notification: %v, want ErrNotFound", err)
	}
}

func testBatching(t *testing.T, rec *Recorder, oneByOne, allAtOnce Views) {
	eachAgainstAll(t, rec.RecordAll(Scenario()...), oneByOne, allAtOnce, nil, "event by event")
}

func testReapply(t *testing.T, rec *Recorder, v Views) {
	evs := rec.RecordAll(Scenario()...)
	ApplyAll(t, v, evs[:10])
	ApplyAll(t, v, evs)
	before := Capture(t, v, scenarioIDs(), scenarioRecipients)
	// As after a crash between commit and the runner noting it: the same
	// batches again, and an overlapping one.
	ApplyAll(t, v, evs)
	ApplyAll(t, v, evs[5:])
	after := Capture(t, v, scenarioIDs(), scenarioRecipients)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("re-applying changed the views:\n%+v\n%+v", before, after)
	}
	if after.Latency.Count != 3 {
		t.Fatalf("latency count %d after re-apply, want 3", after.Latency.Count)
	}
}

func testSearch(t *testing.T, rec *Recorder, v Views) {
	ctx := context.Background()
	var streams []Stream
	for i := range 7 {
		ch := domain.ChannelWebhook
		if i%2 == 1 {
			ch = domain.ChannelEmail
		}
		streams = append(streams, SimpleStream(domain.NotificationID("s-"+string(rune('a'+i))), "user-s", ch, domain.PriorityNormal, Base.Add(time.Duration(i)*time.Minute)))
	}
	// Two notifications at the same instant: the id breaks the tie.
	streams = append(streams, SimpleStream("s-tie", "user-t", domain.ChannelWebhook, domain.PriorityHigh, Base.Add(3*time.Minute)))
	ApplyAll(t, v, rec.RecordAll(append(streams, Scenario()...)...))

	var got []domain.NotificationID
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		page, err := v.Search(ctx, projections.SearchQuery{RecipientID: "user-s", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 3 {
			t.Fatalf("page of %d items, limit 3", len(page.Items))
		}
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	want := []domain.NotificationID{"s-g", "s-f", "s-e", "s-d", "s-c", "s-b", "s-a"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("paged search = %v, want %v", got, want)
	}

	cases := []struct {
		name string
		q    projections.SearchQuery
		want []domain.NotificationID
	}{
		{"status", projections.SearchQuery{Status: domain.StatusFailed}, []domain.NotificationID{N2}},
		{"channel", projections.SearchQuery{Channel: domain.ChannelInApp}, []domain.NotificationID{N3, N1}},
		{"priority", projections.SearchQuery{Priority: domain.PriorityHigh}, []domain.NotificationID{"s-tie", N1}},
		{"category", projections.SearchQuery{Category: "billing"}, []domain.NotificationID{N2}},
		{"batch", projections.SearchQuery{BatchID: "b-1"}, []domain.NotificationID{N3, N1}},
		{"recipient", projections.SearchQuery{RecipientID: "user-1"}, []domain.NotificationID{N2, N1}},
		{"range", projections.SearchQuery{From: Base.Add(2 * time.Minute), To: Base.Add(4 * time.Minute)}, []domain.NotificationID{"s-tie", "s-d", "s-c"}},
		{"combined", projections.SearchQuery{Channel: domain.ChannelEmail, RecipientID: "user-s", From: Base.Add(2 * time.Minute)}, []domain.NotificationID{"s-f", "s-d"}},
	}
	for _, c := range cases {
		page, err := v.Search(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var ids []domain.NotificationID
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if !reflect.DeepEqual(ids, c.want) || page.NextCursor != "" {
			t.Errorf("%s: %v (next %q), want %v", c.name, ids, page.NextCursor, c.want)
		}
	}
	if _, err := v.Search(ctx, projections.SearchQuery{Cursor: "not-a-cursor"}); !errors.Is(err, projections.ErrInvalidCursor) {
		t.Errorf("bad cursor: %v, want ErrInvalidCursor", err)
	}
}

func testInbox(t *testing.T, rec *Recorder, v Views) {
	ctx := context.Background()
	ApplyAll(t, v, rec.RecordAll(Scenario()...))

	u1, err := v.Inbox(ctx, "user-1", projections.InboxQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if u1.UnreadCount != 0 || len(u1.Items) != 1 || !u1.Items[0].Read || u1.Items[0].NotificationID != N1 ||
		u1.Items[0].Subject != "Your code" || u1.Items[0].Status != domain.DeliveryStatusRead {
		t.Fatalf("user-1 inbox = %+v", u1)
	}
	u2, err := v.Inbox(ctx, "user-2", projections.InboxQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if u2.UnreadCount != 1 || len(u2.Items) != 1 || u2.Items[0].Read || u2.Items[0].Body != "Welcome aboard" {
		t.Fatalf("user-2 inbox = %+v", u2)
	}
	// More in-app notifications, then reading one: the count follows.
	var more []Stream
	for i := range 4 {
		more = append(more, SimpleStream(domain.NotificationID("i-"+string(rune('a'+i))), "user-2", domain.ChannelInApp, domain.PriorityNormal, Base.Add(3*time.Hour+time.Duration(i)*time.Minute)))
	}
	ApplyAll(t, v, rec.RecordAll(more...))
	ApplyAll(t, v, []eventstore.RecordedEvent{
		rec.Record(N3, domain.NotificationRead{DeliveryID: domain.NewDeliveryID(domain.ChannelInApp, 1), Actor: "user-2", ReadAt: Base.Add(4 * time.Hour)}),
		// A duplicate read mark does not count twice.
		rec.Record(N3, domain.NotificationRead{DeliveryID: domain.NewDeliveryID(domain.ChannelInApp, 1), Actor: "user-2", ReadAt: Base.Add(4 * time.Hour)}),
	})
	u2, _ = v.Inbox(ctx, "user-2", projections.InboxQuery{})
	if u2.UnreadCount != 4 || len(u2.Items) != 5 || u2.Items[0].NotificationID != "i-d" {
		t.Fatalf("user-2 inbox after more = %+v", u2)
	}
	unread, _ := v.Inbox(ctx, "user-2", projections.InboxQuery{UnreadOnly: true, Limit: 3})
	if len(unread.Items) != 3 || unread.NextCursor == "" || unread.UnreadCount != 4 {
		t.Fatalf("unread page = %+v", unread)
	}
	rest, err := v.Inbox(ctx, "user-2", projections.InboxQuery{UnreadOnly: true, Limit: 3, Cursor: unread.NextCursor})
	if err != nil || len(rest.Items) != 1 || rest.Items[0].NotificationID != "i-a" || rest.NextCursor != "" {
		t.Fatalf("second unread page = %+v, %v", rest, err)
	}
	if none, err := v.Inbox(ctx, "nobody", projections.InboxQuery{}); err != nil || len(none.Items) != 0 || none.UnreadCount != 0 {
		t.Fatalf("unknown recipient inbox = %+v, %v", none, err)
	}
	if _, err := v.Inbox(ctx, "user-2", projections.InboxQuery{Cursor: "%%%"}); !errors.Is(err, projections.ErrInvalidCursor) {
		t.Fatalf("bad inbox cursor: %v", err)
	}
}

func testAnalytics(t *testing.T, rec *Recorder, v Views) {
	ctx := context.Background()
	ApplyAll(t, v, rec.RecordAll(Scenario()...))

	rows, err := v.Deliveries(ctx, projections.DeliveriesQuery{
		From: Base, To: Base.Add(24 * time.Hour), Bucket: projections.BucketDay,
		GroupBy: []string{projections.DimChannel, projections.DimStatus},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range rows {
		if !r.BucketStart.Equal(Base.Truncate(24*time.Hour)) || r.Priority != "" {
			t.Errorf("row %+v: wrong bucket or ungrouped dimension set", r)
		}
		got[string(r.Channel)+"/"+string(r.Status)] = r.Count
	}
	want := map[string]int64{
		"email/planned": 1, "email/in_flight": 2, "email/retry_scheduled": 1, "email/sent": 1,
		"inapp/planned": 2, "inapp/in_flight": 2, "inapp/delivered": 2, "inapp/read": 1,
		"sms/planned": 1, "sms/in_flight": 1, "sms/failed": 1,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("day deliveries by channel/status = %v, want %v", got, want)
	}

	hourly, err := v.Deliveries(ctx, projections.DeliveriesQuery{Bucket: projections.BucketHour, GroupBy: []string{projections.DimPriority}, Status: domain.DeliveryStatusFailed})
	if err != nil {
		t.Fatal(err)
	}
	if len(hourly) != 1 || hourly[0].Priority != domain.PriorityLow || hourly[0].Count != 1 || !hourly[0].BucketStart.Equal(Base.Add(time.Hour)) {
		t.Errorf("hourly failed by priority = %+v", hourly)
	}
	minutes, err := v.Deliveries(ctx, projections.DeliveriesQuery{Bucket: projections.BucketMinute, From: Base, To: Base.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, r := range minutes {
		total += r.Count
	}
	if len(minutes) != 2 || total != 9 { // n-1: 8 transitions in minute 0, the read in minute 1
		t.Errorf("minute buckets of the first hour = %+v", minutes)
	}
	if _, err := v.Deliveries(ctx, projections.DeliveriesQuery{GroupBy: []string{"colour"}}); !errors.Is(err, projections.ErrInvalidQuery) {
		t.Errorf("unknown group_by: %v", err)
	}
	var qe *projections.QueryError
	if _, err := v.Deliveries(ctx, projections.DeliveriesQuery{Bucket: "week"}); !errors.As(err, &qe) || qe.Param != "bucket" {
		t.Errorf("unknown bucket: %v", err)
	}

	lat, err := v.Latency(ctx, projections.LatencyQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// Successes: n-1 in-app 400 ms, n-1 email 2 s, n-3 in-app 40 ms.
	if lat.Count != 3 || lat.P50Millis <= 250 || lat.P50Millis > 500 || lat.P99Millis <= 1000 || lat.P99Millis > 2500 {
		t.Errorf("latency = %+v", lat)
	}
	email, _ := v.Latency(ctx, projections.LatencyQuery{Channel: domain.ChannelEmail})
	if email.Count != 1 || email.P50Millis <= 1000 || email.P50Millis > 2500 {
		t.Errorf("email latency = %+v", email)
	}
	late, _ := v.Latency(ctx, projections.LatencyQuery{Channel: domain.ChannelInApp, From: Base.Add(time.Hour)})
	if late.Count != 1 || late.P50Millis <= 25 || late.P50Millis > 50 {
		t.Errorf("in-app latency after the first hour = %+v", late)
	}

	fails, err := v.Failures(ctx, projections.FailuresQuery{})
	if err != nil {
		t.Fatal(err)
	}
	wantFails := []projections.FailureCount{{Channel: domain.ChannelEmail, Reason: "timeout", Count: 1}, {Channel: domain.ChannelSMS, Reason: "invalid number", Count: 1}}
	if !reflect.DeepEqual(fails, wantFails) {
		t.Errorf("failures = %+v, want %+v", fails, wantFails)
	}
	smsFails, _ := v.Failures(ctx, projections.FailuresQuery{Channel: domain.ChannelSMS, From: Base, To: Base.Add(30 * time.Minute)})
	if len(smsFails) != 0 {
		t.Errorf("sms failures in the first half hour = %+v, want none", smsFails)
	}
	if _, err := v.Failures(ctx, projections.FailuresQuery{From: Base, To: Base}); !errors.Is(err, projections.ErrInvalidQuery) {
		t.Errorf("empty range: %v", err)
	}
}

func testRebuild(t *testing.T, rec *Recorder, v Views) {
	ctx := context.Background()
	evs := rec.RecordAll(Scenario()...)
	ApplyAll(t, v, evs)
	want := Capture(t, v, scenarioIDs(), scenarioRecipients)

	for _, p := range projections.Names() {
		if err := v.CompleteRebuild(ctx, p); err == nil {
			t.Fatalf("%s: CompleteRebuild without BeginRebuild succeeded", p)
		}
		if err := v.BeginRebuild(ctx, p); err != nil {
			t.Fatal(err)
		}
		// The live view keeps answering while the shadow is empty.
		if got := Capture(t, v, scenarioIDs(), scenarioRecipients); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: live view changed by BeginRebuild", p)
		}
		if cp, _ := v.Checkpoint(ctx, projections.Shadow(p)); cp != 0 {
			t.Fatalf("%s: shadow checkpoint %d, want 0", p, cp)
		}
		mid := len(evs) / 2
		for _, part := range [][]eventstore.RecordedEvent{evs[:mid], evs[mid:]} {
			if err := v.Apply(ctx, projections.Shadow(p), part, part[len(part)-1].Position); err != nil {
				t.Fatal(err)
			}
		}
		if err := v.CompleteRebuild(ctx, p); err != nil {
			t.Fatal(err)
		}
		if cp, _ := v.Checkpoint(ctx, p); cp != evs[len(evs)-1].Position {
			t.Fatalf("%s: checkpoint after swap = %d", p, cp)
		}
	}
	if got := Capture(t, v, scenarioIDs(), scenarioRecipients); !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt views differ:\n%+v\nwant\n%+v", got, want)
	}
	// The rebuilt tables keep working, and a second rebuild works too.
	more := rec.RecordAll(SimpleStream("r-1", "user-1", domain.ChannelInApp, domain.PriorityNormal, Base.Add(5*time.Hour)))
	ApplyAll(t, v, more)
	if u1, _ := v.Inbox(ctx, "user-1", projections.InboxQuery{}); u1.UnreadCount != 1 || len(u1.Items) != 2 {
		t.Fatalf("inbox after rebuild and more events = %+v", u1)
	}
	if err := v.BeginRebuild(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatalf("second rebuild: %v", err)
	}
	all := append(evs, more...)
	if err := v.Apply(ctx, projections.Shadow(projections.ProjectionNotifications), all, all[len(all)-1].Position); err != nil {
		t.Fatal(err)
	}
	if err := v.CompleteRebuild(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatalf("second swap: %v", err)
	}
	if d, err := v.Notification(ctx, "r-1"); err != nil || d.Status != domain.StatusDelivered {
		t.Fatalf("r-1 after second rebuild = %+v, %v", d, err)
	}
	// The swap must put the shadow in place, not keep the live tables: a
	// shadow holding less than the live view (the runner never swaps one
	// in, but the store must not care) shows which tables answer.
	if err := v.BeginRebuild(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatalf("third rebuild: %v", err)
	}
	part := evs[:len(evs)/2]
	if err := v.Apply(ctx, projections.Shadow(projections.ProjectionNotifications), part, part[len(part)-1].Position); err != nil {
		t.Fatal(err)
	}
	if err := v.CompleteRebuild(ctx, projections.ProjectionNotifications); err != nil {
		t.Fatalf("third swap: %v", err)
	}
	if cp, _ := v.Checkpoint(ctx, projections.ProjectionNotifications); cp != part[len(part)-1].Position {
		t.Fatalf("checkpoint after swapping in a partial shadow = %d, want %d", cp, part[len(part)-1].Position)
	}
	if _, err := v.Notification(ctx, "r-1"); !errors.Is(err, projections.ErrNotFound) {
		t.Fatalf("r-1 is not in the swapped-in shadow, yet the view answers: %v", err)
	}
	if err := v.BeginRebuild(ctx, "nope"); !errors.Is(err, projections.ErrUnknownProjection) {
		t.Fatalf("rebuild of unknown projection: %v", err)
	}
}

// testSharedBatches checks a BatchStore the way the Runner drives it: the
// same log pages (one Batch each) go to every projection and to a shadow,
// so stores may share decoded events and states between them; pages that
// overlap a checkpoint and a page some projection skipped must not let a
// store use what does not apply to it. The answers must be those of Apply.
func testSharedBatches(t *testing.T, rec *Recorder, plain, batched Views) {
	bs, ok := batched.(projections.BatchStore)
	if !ok {
		t.Skip("store does not implement projections.BatchStore")
	}
	ctx := context.Background()
	evs := rec.RecordAll(Scenario()...)
	ApplyAll(t, plain, evs)
	want := Capture(t, plain, scenarioIDs(), scenarioRecipients)

	apply := func(name string, b *projections.Batch) {
		t.Helper()
		if err := bs.ApplyBatch(ctx, name, b, b.Last()); err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
	}
	var pages []*projections.Batch
	for i := 0; i < len(evs); i += 4 {
		pages = append(pages, projections.NewLogPage(eventstore.Position(i), evs[i:min(i+4, len(evs))]))
	}
	for i, b := range pages {
		for _, p := range projections.Names() {
			if p == projections.ProjectionAnalytics && i == 1 {
				continue // analytics lags: it gets this page inside an overlapping one
			}
			apply(p, b)
		}
		if i == 1 {
			after, _ := pages[0].Page()
			apply(projections.ProjectionAnalytics, projections.NewLogPage(after, evs[:8]))
		}
		// A replay of the page, as after a crash before the runner noted
		// the commit, changes nothing.
		apply(projections.ProjectionInbox, b)
	}
	if got := Capture(t, batched, scenarioIDs(), scenarioRecipients); !reflect.DeepEqual(got, want) {
		t.Fatalf("batched views differ:\n%+v\nwant\n%+v", got, want)
	}
	// A rebuild fed the very same pages (their shared states included).
	for _, p := range projections.Names() {
		if err := batched.BeginRebuild(ctx, p); err != nil {
			t.Fatal(err)
		}
		for _, b := range pages {
			apply(projections.Shadow(p), b)
		}
		if err := batched.CompleteRebuild(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if got := Capture(t, batched, scenarioIDs(), scenarioRecipients); !reflect.DeepEqual(got, want) {
		t.Fatalf("rebuilt batched views differ:\n%+v\nwant\n%+v", got, want)
	}
}
