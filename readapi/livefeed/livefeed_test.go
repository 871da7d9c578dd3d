package livefeed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/readapi/livefeed"
)

func TestSSEDeliversInAppItems(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	s := openSSE(t, f.streamURL("user-1"), nil)
	if ct := s.resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", ct)
	}

	// A content notification, delivered and confirmed.
	req := inAppRequest("user-1", "Your invoice")
	req.Category, req.Priority = "billing", domain.PriorityHigh
	evs := append(requestEvents("n-content", req, domain.ChannelInApp, base), successEvents(inapp1, true, base.Add(2*time.Second))...)
	pos1 := f.appendEvents(t, "n-content", evs...)
	// An email delivery to the same person: not an in-app item.
	email := domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-1", Email: "u1@example.com"},
		Channels: []domain.Channel{domain.ChannelEmail}, Content: &domain.Content{Body: "mail"}}
	f.appendEvents(t, "n-email", append(requestEvents("n-email", email, domain.ChannelEmail, base),
		successEvents(domain.NewDeliveryID(domain.ChannelEmail, 1), true, base)...)...)
	// A template notification, only accepted (not confirmed): no content yet.
	tmpl := domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-1"}, Channels: []domain.Channel{domain.ChannelInApp},
		Template: &domain.TemplateRef{ID: "otp", Vars: map[string]any{"code": "1"}}}
	pos3 := f.appendEvents(t, "n-template", append(requestEvents("n-template", tmpl, domain.ChannelInApp, base.Add(time.Minute)),
		successEvents(inapp1, false, base.Add(time.Minute+time.Second))...)...)

	want := map[string]any{
		"notification_id": "n-content", "delivery_id": "inapp-1", "status": "delivered", "read": false,
		"category": "billing", "priority": "high", "subject": "Your invoice", "body": "body of Your invoice",
		"created_at": "2026-05-01T12:00:00Z", "updated_at": "2026-05-01T12:00:02Z",
	}
	if got := inboxItemOf(t, s.next(t), pos1); !reflect.DeepEqual(got, want) {
		t.Errorf("content item:\n got %v\nwant %v", got, want)
	}
	want = map[string]any{
		"notification_id": "n-template", "delivery_id": "inapp-1", "status": "sent", "read": false,
		"priority": "normal", "template": "otp",
		"created_at": "2026-05-01T12:01:00Z", "updated_at": "2026-05-01T12:01:01Z",
	}
	if got := inboxItemOf(t, s.next(t), pos3); !reflect.DeepEqual(got, want) {
		t.Errorf("template item:\n got %v\nwant %v", got, want)
	}
	if st := f.hub.Stats(); st.Clients != 1 || st.Recipients != 1 || !st.Following || st.Pushed != 2 || st.Position < pos3 {
		t.Errorf("Stats = %+v, want 1 client following, 2 pushed, position >= %d", st, pos3)
	}
}

func TestWebSocketDeliversInAppItems(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(f.streamURL("user-ws"), "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.CloseNow()

	pos := f.deliverInApp(t, "n-ws", "user-ws")
	typ, msg, err := conn.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var got struct {
		ID    string                `json:"id"`
		Event string                `json:"event"`
		Data  livefeedInboxItemJSON `json:"data"`
	}
	if typ != websocket.MessageText || json.Unmarshal(msg, &got) != nil {
		t.Fatalf("got %v message %s, want a JSON text message", typ, msg)
	}
	if got.ID != strconv.FormatUint(uint64(pos), 10) || got.Event != livefeed.EventInbox ||
		got.Data.NotificationID != "n-ws" || got.Data.DeliveryID != "inapp-1" || got.Data.Subject != "n-ws" || got.Data.Status != "delivered" {
		t.Errorf("got %s, want inbox item n-ws/inapp-1 with id %d", msg, pos)
	}
}

type livefeedInboxItemJSON struct {
	NotificationID string `json:"notification_id"`
	DeliveryID     string `json:"delivery_id"`
	Status         string `json:"status"`
	Subject        string `json:"subject"`
}

func TestItemsReachOnlyTheirRecipient(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	a := openSSE(t, f.streamURL("user-a"), nil)
	a2 := openSSE(t, f.streamURL("user-a"), nil) // a second tab
	b := openSSE(t, f.streamURL("user-b"), nil)

	pa1 := f.deliverInApp(t, "n-a1", "user-a")
	pb1 := f.deliverInApp(t, "n-b1", "user-b")
	pa2 := f.deliverInApp(t, "n-a2", "user-a")
	pb2 := f.deliverInApp(t, "n-b2", "user-b")

	// Each stream's events come in log order, so the next event after one
	// recipient's item being the same recipient's next item proves the
	// other recipient's item in between was not sent.
	for _, tab := range []*sseStream{a, a2} {
		if got := inboxItemOf(t, tab.next(t), pa1)["notification_id"]; got != "n-a1" {
			t.Errorf("user-a got %v, want n-a1", got)
		}
		if got := inboxItemOf(t, tab.next(t), pa2)["notification_id"]; got != "n-a2" {
			t.Errorf("user-a got %v, want n-a2", got)
		}
	}
	if got := inboxItemOf(t, b.next(t), pb1)["notification_id"]; got != "n-b1" {
		t.Errorf("user-b got %v, want n-b1", got)
	}
	if got := inboxItemOf(t, b.next(t), pb2)["notification_id"]; got != "n-b2" {
		t.Errorf("user-b got %v, want n-b2", got)
	}
}

func TestReadMarksReachOtherTabs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	// Delivered while nobody was connected: the hub did not follow the log
	// then, so its read mark needs the notification's stream.
	f.deliverInApp(t, "n-old", "user-r")

	s := openSSE(t, f.streamURL("user-r"), nil)
	pos := f.deliverInApp(t, "n-new", "user-r")
	inboxItemOf(t, s.next(t), pos)

	readAt := base.Add(time.Hour)
	for _, id := range []domain.NotificationID{"n-new", "n-old"} {
		pos := f.appendEvents(t, id, domain.NotificationRead{DeliveryID: inapp1, Actor: "user-r", ReadAt: readAt})
		ev := s.next(t)
		want := fmt.Sprintf(`{"notification_id":%q,"delivery_id":"inapp-1","read_at":"2026-05-01T13:00:00Z"}`, id)
		if ev.Event != livefeed.EventRead || ev.ID != fmt.Sprint(pos) || ev.Data != want {
			t.Errorf("got %+v, want read event id %d data %s", ev, pos, want)
		}
	}
	if st := f.hub.Stats(); st.StreamLoads < 1 {
		t.Errorf("StreamLoads = %d, want the old delivery's stream read", st.StreamLoads)
	}
}

func TestItemsWhoseContextWasForgotten(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{opts: livefeed.Options{MaxTracked: 1}})
	// Requested and planned while the hub was idle: it never saw them.
	f.appendEvents(t, "n-idle", requestEvents("n-idle", inAppRequest("user-c", "idle"), domain.ChannelInApp, base)...)

	s := openSSE(t, f.streamURL("user-c"), nil)
	// Seen, but the hub remembers only one in-flight notification.
	for _, id := range []domain.NotificationID{"n-1", "n-2", "n-3"} {
		f.appendEvents(t, id, requestEvents(id, inAppRequest("user-c", string(id)), domain.ChannelInApp, base)...)
	}
	for _, id := range []domain.NotificationID{"n-idle", "n-1", "n-2", "n-3"} {
		pos := f.appendEvents(t, id, successEvents(inapp1, true, base)...)
		item := inboxItemOf(t, s.next(t), pos)
		if item["notification_id"] != string(id) || item["body"] != "body of "+item["subject"].(string) || item["subject"] == "" {
			t.Errorf("item %v, want %s with its content", item, id)
		}
	}
	if st := f.hub.Stats(); st.StreamLoads < 3 || st.Tracked > 1 {
		t.Errorf("Stats = %+v, want >= 3 stream loads and at most 1 tracked", st)
	}
}

func TestResumeHasNoGapAndNoDuplicate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// hubBusy keeps another client connected, so the hub is following
		// and fanning out while the client resumes; otherwise the hub is
		// idle and the resuming client starts it.
		hubBusy   bool
		transport string // "header" and "query" (SSE) or "ws" (query)
	}{
		{"idle hub, Last-Event-ID", false, "header"},
		{"busy hub, Last-Event-ID", true, "header"},
		{"busy hub, query", true, "query"},
		{"busy hub, websocket", true, "ws"},
		{"idle hub, websocket", false, "ws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, fixtureConfig{})
			wantClients := 0
			if tc.hubBusy {
				openSSE(t, f.streamURL("someone-else"), nil)
				wantClients = 1
			}
			first := openSSE(t, f.streamURL("user-z"), nil)
			var resumeAfter eventstore.Position
			for i := range 3 {
				pos := f.deliverInApp(t, domain.NotificationID(fmt.Sprintf("before-%d", i)), "user-z")
				inboxItemOf(t, first.next(t), pos)
				resumeAfter = pos
			}
			first.close()
			eventually(t, "the first client to leave", func() bool {
				st := f.hub.Stats()
				return st.Clients == wantClients && st.Following == tc.hubBusy
			})

			// Appends go on while the client comes back: some of its items
			// land before it reconnects, some during its replay, some after
			// it is live. Each item's request and success are separate
			// appends, with other recipients' items in between.
			const items = 200
			positions := make([]eventstore.Position, items)
			reconnect, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				for i := range items {
					id := domain.NotificationID(fmt.Sprintf("z-%03d", i))
					f.appendEvents(t, id, requestEvents(id, inAppRequest("user-z", string(id)), domain.ChannelInApp, base)...)
					f.deliverInApp(t, domain.NotificationID(fmt.Sprintf("other-%03d", i)), "someone-else")
					positions[i] = f.appendEvents(t, id, successEvents(inapp1, true, base)...)
					if i == items/4 {
						close(reconnect)
					}
				}
			}()
			<-reconnect
			resumed := openFeed(t, f, "user-z", tc.transport, resumeAfter)
			var got []string
			for len(got) < items {
				ev := resumed.next(t)
				if ev.Event != livefeed.EventInbox {
					t.Fatalf("got %+v, want inbox items only", ev)
				}
				got = append(got, ev.ID)
			}
			<-done
			want := make([]string, items)
			for i, p := range positions {
				want[i] = fmt.Sprint(p)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("resumed ids:\n got %v\nwant %v", got, want)
			}
			// Nothing is repeated after the seam either.
			pos := f.deliverInApp(t, "after", "user-z")
			if ev := resumed.next(t); ev.ID != fmt.Sprint(pos) {
				t.Fatalf("after the resumed items got %+v, want id %d", ev, pos)
			}
		})
	}
}

// feed is a stream of events whatever the transport.
type feed interface{ next(t testing.TB) sseEvent }

// openFeed connects recipient's client resuming after position after.
func openFeed(t *testing.T, f *fixture, recipient, transport string, after eventstore.Position) feed {
	t.Helper()
	url := f.streamURL(recipient)
	switch transport {
	case "header":
		// A stale query parameter too: the header, newer, wins.
		return openSSE(t, url+"?last_event_id=1", http.Header{"Last-Event-Id": {fmt.Sprint(after)}})
	case "query":
		return openSSE(t, url+"?last_event_id="+fmt.Sprint(after), nil)
	}
	return openWS(t, url+"?last_event_id="+fmt.Sprint(after))
}

type wsStream struct {
	conn *websocket.Conn
}

func openWS(t testing.TB, url string) *wsStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http"), nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	conn.SetReadLimit(-1)
	t.Cleanup(func() { conn.CloseNow() })
	return &wsStream{conn: conn}
}

func (w *wsStream) next(t testing.TB) sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	_, msg, err := w.conn.Read(ctx)
	if err != nil {
		t.Fatalf("websocket read: %v", err)
	}
	var m struct {
		ID    string          `json:"id"`
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		t.Fatalf("websocket message %s: %v", msg, err)
	}
	return sseEvent{ID: m.ID, Event: m.Event, Data: string(m.Data)}
}

func TestReplayIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{opts: livefeed.Options{MaxReplayEvents: 6}})
	var first eventstore.Position
	for i := range 3 { // 4 events each
		pos := f.deliverInApp(t, domain.NotificationID(fmt.Sprintf("r-%d", i)), "user-b")
		if i == 0 {
			first = pos
		}
	}
	head, err := f.log.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s := openSSE(t, f.streamURL("user-b"), http.Header{"Last-Event-Id": {"0"}})
	// The first item lies within the 6 events scanned; the others do not.
	inboxItemOf(t, s.next(t), first)
	ev := s.next(t)
	want := `{"reason":"replay-too-long","inbox":"/v1/recipients/user-b/inbox"}`
	if ev.Event != livefeed.EventResync || ev.ID != fmt.Sprint(head) || ev.Data != want {
		t.Fatalf("got %+v, want resync id %d data %s", ev, head, want)
	}
	// The stream goes on live.
	pos := f.deliverInApp(t, "live", "user-b")
	inboxItemOf(t, s.next(t), pos)
}

func TestSlowClientIsDroppedWithoutHoldingOthers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{opts: livefeed.Options{ClientBuffer: 8, WriteTimeout: time.Minute}, smallSendBuffers: true})
	// The slow tab never reads until the end; the fast tab reads all along.
	slowResp, slowCancel := dialSSE(t, smallReceiveBufferClient(), f.streamURL("user-s"), nil)
	fast := openSSE(t, f.streamURL("user-s"), nil)

	const items = 60
	big := strings.Repeat("x", 32<<10)
	for i := range items {
		id := domain.NotificationID(fmt.Sprintf("s-%03d", i))
		req := inAppRequest("user-s", string(id))
		req.Content.Body = big
		pos := f.appendEvents(t, id, append(requestEvents(id, req, domain.ChannelInApp, base), successEvents(inapp1, true, base)...)...)
		// Each item reaches the fast tab while the slow one backs up.
		inboxItemOf(t, fast.next(t), pos)
	}
	eventually(t, "the slow client to be dropped", func() bool {
		st := f.hub.Stats()
		return st.DroppedClients == 1 && st.Clients == 1
	})

	// Reading at last, the slow tab finds what its buffers held, then the
	// resync, then the end of the stream.
	slow := readSSE(slowResp, slowCancel)
	var got int
	for {
		ev := slow.next(t)
		if ev.Event == livefeed.EventInbox {
			got++
			continue
		}
		want := `{"reason":"slow-client","inbox":"/v1/recipients/user-s/inbox"}`
		if ev.Event != livefeed.EventResync || ev.ID != "" || ev.Data != want {
			t.Fatalf("got %+v, want a resync without id, data %s", ev, want)
		}
		break
	}
	if got >= items {
		t.Errorf("slow client got all %d items, want it dropped before", got)
	}
	slow.expectEnd(t)
}

func TestDisconnectCleansUp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	sse := openSSE(t, f.streamURL("user-d"), nil)
	ws := openWS(t, f.streamURL("user-d"))
	eventually(t, "two clients, following", func() bool {
		st := f.hub.Stats()
		return st.Clients == 2 && st.Recipients == 1 && st.Following
	})
	sse.close()
	ws.conn.CloseNow()
	eventually(t, "no clients, not following", func() bool {
		st := f.hub.Stats()
		return st.Clients == 0 && st.Recipients == 0 && !st.Following
	})
	// The next client makes the hub follow again.
	again := openSSE(t, f.streamURL("user-d"), nil)
	pos := f.deliverInApp(t, "n-again", "user-d")
	inboxItemOf(t, again.next(t), pos)
}

func TestShutdownEndsStreams(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	sse := openSSE(t, f.streamURL("user-x"), nil)
	ws := openWS(t, f.streamURL("user-x"))
	eventually(t, "two clients", func() bool { return f.hub.Stats().Clients == 2 })

	f.stop()
	select {
	case err := <-f.runErr:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
		f.runErr <- err // for the fixture's cleanup
	case <-time.After(wait):
		t.Fatal("Run did not return")
	}
	sse.expectEnd(t)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, _, err := ws.conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("websocket read after shutdown: %v, want close status going away", err)
	}

	resp, err := http.Get(f.streamURL("user-x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := decodeProblem(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || p.Type != "https://herald.dev/problems/unavailable" {
		t.Errorf("after shutdown: %s %+v, want 503 unavailable", resp.Status, p)
	}
}

type problemJSON struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

func decodeProblem(t *testing.T, resp *http.Response) problemJSON {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json", ct)
	}
	body, _ := io.ReadAll(resp.Body)
	var p problemJSON
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	return p
}

func TestMalformedResumePointIsABadRequest(t *testing.T) {
	t.Parallel()
	f := newFixture(t, fixtureConfig{})
	for _, tc := range []struct {
		name, query, header, field string
	}{
		{"query", "?last_event_id=abc", "", "last_event_id"},
		{"header", "", "-1", "Last-Event-ID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.streamURL("user-q")+tc.query, nil)
			if tc.header != "" {
				req.Header.Set("Last-Event-ID", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			p := decodeProblem(t, resp)
			if resp.StatusCode != http.StatusBadRequest || p.Type != "https://herald.dev/problems/invalid-query" ||
				len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Errorf("got %s %+v, want 400 invalid-query naming %s", resp.Status, p, tc.field)
			}
		})
	}
	if st := f.hub.Stats(); st.Clients != 0 || st.Following {
		t.Errorf("Stats = %+v, want no client registered by a refused request", st)
	}
}

func TestNewHubRefusesBadConfig(t *testing.T) {
	t.Parallel()
	if _, err := livefeed.NewHub(nil, livefeed.Options{}); err == nil {
		t.Error("NewHub(nil log) succeeded")
	}
	f := newFixture(t, fixtureConfig{})
	if _, err := livefeed.NewHub(f.log, livefeed.Options{ClientBuffer: -1, Heartbeat: -time.Second}); err == nil ||
		!strings.Contains(err.Error(), "ClientBuffer") || !strings.Contains(err.Error(), "Heartbeat") {
		t.Errorf("NewHub(negative options) = %v, want both named", err)
	}
}
