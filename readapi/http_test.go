package readapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"herald/infra/eventstore"
	eventsqlite "herald/infra/eventstore/sqlite"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/infra/viewstore/viewstoretest"
	"herald/projections"
	"herald/readapi"
)

// fixture is a read API over real SQLite stores fed by a running projection
// runner, holding the shared scenario.
type fixture struct {
	srv    *httptest.Server
	log    *eventsqlite.Store
	runner *projections.Runner
}

func newFixture(t *testing.T, opt readapi.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log, err := eventsqlite.Open(ctx, filepath.Join(dir, "events.db"), eventsqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	views, err := viewsqlite.Open(ctx, filepath.Join(dir, "views.db"), viewsqlite.Options{History: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { views.Close() })
	runner, err := projections.NewRunner(log, views, projections.RunnerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runner: %v", err)
		}
	})
	for _, s := range viewstoretest.Scenario() {
		r := s.AppendNew()
		if _, err := log.Append(ctx, r.Stream, r.Expected, r.Events...); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{log: log, runner: runner}
	f.waitCaughtUp(t)
	if opt.Now == nil {
		opt.Now = func() time.Time { return viewstoretest.Base.Add(12 * time.Hour) }
	}
	f.srv = httptest.NewServer(readapi.NewHTTP(readapi.Views{
		Notifications: views, Search: views, Inbox: views, Analytics: views, Audit: log, Projections: runner,
	}, opt))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) waitCaughtUp(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := f.runner.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ok := true
		for _, s := range st {
			ok = ok && s.Head > 0 && s.LagEvents == 0 && !s.Rebuilding
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projections did not catch up: %+v", st)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
}

// do sends a request and decodes the JSON answer into a generic map.
func (f *fixture) do(t *testing.T, method, path string, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: body is not a JSON object: %q", method, path, body)
	}
	return resp.StatusCode, resp.Header, m
}

func (f *fixture) get(t *testing.T, path string) map[string]any {
	t.Helper()
	code, h, m := f.do(t, http.MethodGet, path, nil)
	if code != http.StatusOK || h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %s: %v", path, code, h.Get("Content-Type"), m)
	}
	return m
}

// problem checks that a request answers the problem status and type, and
// for invalid-query that it names param.
func (f *fixture) problem(t *testing.T, method, path string, status int, typ, param string) {
	t.Helper()
	code, h, m := f.do(t, method, path, nil)
	if code != status || h.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s = %d %s, want %d problem: %v", method, path, code, h.Get("Content-Type"), status, m)
	}
	if m["type"] != "https://herald.dev/problems/"+typ || m["status"] != float64(status) || m["title"] == "" {
		t.Fatalf("%s %s problem = %v, want type %s", method, path, m, typ)
	}
	if param != "" {
		errs, _ := m["errors"].([]any)
		if len(errs) != 1 || errs[0].(map[string]any)["field"] != param || !strings.Contains(m["detail"].(string), param) {
			t.Fatalf("%s %s problem = %v, want it to name %q", method, path, m, param)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func hasKeys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q (has %v)", what, k, keys(m))
		}
	}
}

func ts(d time.Duration) string {
	return url.QueryEscape(viewstoretest.Base.Add(d).Format(time.RFC3339))
}

func TestNotificationStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	m := f.get(t, "/v1/notifications/n-1")
	hasKeys(t, "notification", m, "id", "status", "priority", "category", "created_at", "updated_at", "recipient", "deliveries", "channels", "batch_id")
	if m["id"] != "n-1" || m["status"] != "delivered" || m["priority"] != "high" || m["category"] != "security" ||
		m["created_at"] != "2026-11-02T10:00:00Z" || m["recipient"].(map[string]any)["id"] != "user-1" {
		t.Errorf("n-1 = %v", m)
	}
	ds := m["deliveries"].([]any)
	if len(ds) != 2 {
		t.Fatalf("deliveries = %v", ds)
	}
	email := ds[0].(map[string]any)
	hasKeys(t, "delivery", email, "id", "channel", "status", "attempts", "last_error", "provider_message_id", "address")
	if email["id"] != "email-1" || email["status"] != "sent" || email["attempts"] != float64(2) || email["last_error"] != "timeout" ||
		email["provider_message_id"] != "smtp-42" || email["address"] != "ada@example.com" {
		t.Errorf("email delivery = %v", email)
	}
	if inapp := ds[1].(map[string]any); inapp["status"] != "read" || inapp["last_error"] != "" {
		t.Errorf("in-app delivery = %v", inapp)
	}
	if n2 := f.get(t, "/v1/notifications/n-2"); n2["status"] != "failed" {
		t.Errorf("n-2 = %v", n2)
	}
	f.problem(t, http.MethodGet, "/v1/notifications/nope", 404, "not-found", "")
}

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	m := f.get(t, "/v1/notifications/n-1/events")
	evs := m["events"].([]any)
	want := viewstoretest.Scenario()[0].Events
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	var lastPos float64
	for i, raw := range evs {
		e := raw.(map[string]any)
		hasKeys(t, "event", e, "position", "version", "type", "recorded_at", "actor", "correlation_id", "causation_id", "data")
		if e["version"] != float64(i+1) || e["type"] != want[i].EventType() || e["position"].(float64) <= lastPos ||
			e["actor"] != "test" || e["correlation_id"] != "corr-1" {
			t.Errorf("event %d = %v", i, e)
		}
		lastPos = e["position"].(float64)
	}
	first := evs[0].(map[string]any)["data"].(map[string]any)
	if first["notification_id"] != "n-1" || first["schema_version"] != float64(1) {
		t.Errorf("first event data = %v", first)
	}
	f.problem(t, http.MethodGet, "/v1/notifications/nope/events", 404, "not-found", "")
}

func TestSearch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	ids := func(m map[string]any) []string {
		var out []string
		for _, it := range m["items"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}
	m := f.get(t, "/v1/notifications")
	if got := ids(m); !reflect.DeepEqual(got, []string{"n-3", "n-2", "n-1"}) || m["next_cursor"] != nil {
		t.Errorf("all = %v, next %v", got, m["next_cursor"])
	}
	hasKeys(t, "item", m["items"].([]any)[0].(map[string]any), "id", "status", "priority", "category", "recipient_id", "channels", "created_at", "updated_at")

	// Paging newest first with the opaque cursor.
	var got []string
	path := "/v1/notifications?limit=1"
	for range 5 {
		m := f.get(t, path)
		got = append(got, ids(m)...)
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/v1/notifications?limit=1&cursor=" + url.QueryEscape(next)
	}
	if !reflect.DeepEqual(got, []string{"n-3", "n-2", "n-1"}) {
		t.Errorf("paged = %v", got)
	}

	for q, want := range map[string][]string{
		"status=failed":              {"n-2"},
		"channel=inapp":              {"n-3", "n-1"},
		"priority=high":              {"n-1"},
		"category=news":              {"n-3"},
		"recipient=user-1":           {"n-2", "n-1"},
		"batch=b-1":                  {"n-3", "n-1"},
		"from=" + ts(30*time.Minute): {"n-3", "n-2"},
		"from=" + ts(0) + "&to=" + ts(90*time.Minute): {"n-2", "n-1"},
		"recipient=nobody":                            nil,
		// Bounds beyond the times the views hold select as the nearest.
		"from=1600-01-01T00:00:00Z":                          {"n-3", "n-2", "n-1"},
		"to=2300-01-01T00:00:00Z":                            {"n-3", "n-2", "n-1"},
		"from=1600-01-01T00:00:00Z&to=" + ts(30*time.Minute): {"n-1"},
	} {
		if got := ids(f.get(t, "/v1/notifications?"+q)); !reflect.DeepEqual(got, want) {
			t.Errorf("?%s = %v, want %v", q, got, want)
		}
	}

	for _, c := range []struct{ q, param string }{
		{"status=lost", "status"},
		{"channel=fax", "channel"},
		{"priority=urgent", "priority"},
		{"from=yesterday", "from"},
		{"to=2026-13-01", "to"},
		{"from=" + ts(time.Hour) + "&to=" + ts(0), "from"},
		{"limit=0", "limit"},
		{"limit=501", "limit"},
		{"limit=ten", "limit"},
		{"cursor=not-a-cursor", "cursor"},
		{"status=failed&status=delivered", "status"},
	} {
		f.problem(t, http.MethodGet, "/v1/notifications?"+c.q, 400, "invalid-query", c.param)
	}
}

func TestInbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	m := f.get(t, "/v1/recipients/user-2/inbox")
	items := m["items"].([]any)
	if m["unread_count"] != float64(1) || len(items) != 1 || m["recipient_id"] != "user-2" {
		t.Fatalf("user-2 inbox = %v", m)
	}
	it := items[0].(map[string]any)
	hasKeys(t, "inbox item", it, "notification_id", "delivery_id", "status", "read", "created_at")
	if it["notification_id"] != "n-3" || it["read"] != false || it["subject"] != "Hello" {
		t.Errorf("item = %v", it)
	}
	if m := f.get(t, "/v1/recipients/user-1/inbox?unread=true"); m["unread_count"] != float64(0) || len(m["items"].([]any)) != 0 {
		t.Errorf("user-1 unread inbox = %v", m)
	}
	if m := f.get(t, "/v1/recipients/nobody/inbox"); m["unread_count"] != float64(0) || len(m["items"].([]any)) != 0 {
		t.Errorf("unknown recipient inbox = %v", m)
	}
	f.problem(t, http.MethodGet, "/v1/recipients/user-2/inbox?unread=maybe", 400, "invalid-query", "unread")
	f.problem(t, http.MethodGet, "/v1/recipients/user-2/inbox?limit=-1", 400, "invalid-query", "limit")
	f.problem(t, http.MethodGet, "/v1/recipients/user-2/inbox?cursor=%25%25", 400, "invalid-query", "cursor")
	// Marking read is a command served by the command API, not here.
	f.problem(t, http.MethodPost, "/v1/recipients/user-2/inbox/n-3/read", 404, "not-found", "")
}

func TestAnalytics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	day := "from=" + ts(0) + "&to=" + ts(24*time.Hour)
	m := f.get(t, "/v1/analytics/deliveries?"+day+"&bucket=day&group_by=channel,status")
	hasKeys(t, "deliveries", m, "from", "to", "bucket", "group_by", "buckets")
	counts := map[string]float64{}
	for _, raw := range m["buckets"].([]any) {
		b := raw.(map[string]any)
		if b["start"] != "2026-11-02T00:00:00Z" || b["priority"] != nil {
			t.Errorf("bucket %v", b)
		}
		counts[fmt.Sprint(b["channel"], "/", b["status"])] = b["count"].(float64)
	}
	if counts["email/sent"] != 1 || counts["sms/failed"] != 1 || counts["inapp/delivered"] != 2 || counts["inapp/read"] != 1 {
		t.Errorf("day counts = %v", counts)
	}
	// The default range is the day before Options.Now (Base + 12 h); the
	// default bucket is the hour.
	m = f.get(t, "/v1/analytics/deliveries?group_by=priority&status=failed")
	if bs := m["buckets"].([]any); m["bucket"] != "hour" || len(bs) != 1 || bs[0].(map[string]any)["priority"] != "low" ||
		bs[0].(map[string]any)["start"] != "2026-11-02T11:00:00Z" {
		t.Errorf("failed by priority = %v", m)
	}

	lat := f.get(t, "/v1/analytics/latency?channel=email&"+day)
	hasKeys(t, "latency", lat, "count", "p50_ms", "p90_ms", "p99_ms", "buckets")
	if lat["count"] != float64(1) || lat["p50_ms"].(float64) <= 1000 || lat["p99_ms"].(float64) > 2500 {
		t.Errorf("email latency = %v", lat)
	}
	bs := lat["buckets"].([]any)
	if len(bs) != len(projections.LatencyBoundsMillis)+1 || bs[len(bs)-1].(map[string]any)["le_ms"] != nil {
		t.Errorf("latency buckets = %v", bs)
	}
	if all := f.get(t, "/v1/analytics/latency?"+day); all["count"] != float64(3) {
		t.Errorf("latency of all channels = %v", all)
	}

	fails := f.get(t, "/v1/analytics/failures?"+day)
	rows := fails["failures"].([]any)
	if len(rows) != 2 || rows[0].(map[string]any)["count"] != float64(1) {
		t.Errorf("failures = %v", fails)
	}
	sms := f.get(t, "/v1/analytics/failures?channel=sms&"+day)
	if rows := sms["failures"].([]any); len(rows) != 1 || rows[0].(map[string]any)["reason"] != "invalid number" {
		t.Errorf("sms failures = %v", sms)
	}

	for _, c := range []struct{ path, param string }{
		{"/v1/analytics/deliveries?bucket=week", "bucket"},
		{"/v1/analytics/deliveries?group_by=channel,colour", "group_by"},
		{"/v1/analytics/deliveries?status=lost", "status"},
		{"/v1/analytics/deliveries?bucket=minute&from=" + ts(-30*24*time.Hour), "from"},
		{"/v1/analytics/deliveries?from=" + ts(time.Hour) + "&to=" + ts(0), "from"},
		{"/v1/analytics/latency?channel=fax", "channel"},
		{"/v1/analytics/latency?to=soon", "to"},
		{"/v1/analytics/failures?from=" + ts(13*time.Hour), "from"}, // after the default to (Now)
		{"/v1/analytics/failures?channel=pigeon", "channel"},
	} {
		f.problem(t, http.MethodGet, c.path, 400, "invalid-query", c.param)
	}
}

func TestAdminProjections(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	m := f.get(t, "/v1/admin/projections")
	ps := m["projections"].([]any)
	if len(ps) != 3 {
		t.Fatalf("projections = %v", m)
	}
	for _, raw := range ps {
		p := raw.(map[string]any)
		hasKeys(t, "projection", p, "name", "checkpoint", "head", "lag_events", "lag_seconds", "catching_up", "rebuilding")
		if p["checkpoint"] != p["head"] || p["lag_events"] != float64(0) || p["head"] != float64(20) {
			t.Errorf("projection = %v", p)
		}
	}
	code, h, body := f.do(t, http.MethodPost, "/v1/admin/projections/analytics/rebuild", nil)
	if code != http.StatusAccepted || body["name"] != "analytics" || h.Get("Location") != "/v1/admin/projections" {
		t.Fatalf("rebuild = %d %v", code, body)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ps := f.get(t, "/v1/admin/projections")["projections"].([]any)
		a := ps[2].(map[string]any)
		if a["name"] == "analytics" && a["rebuilds"] == float64(1) && a["rebuilding"] == false {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rebuild did not finish: %v", ps)
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
	if fails := f.get(t, "/v1/analytics/failures?from="+ts(0)+"&to="+ts(24*time.Hour)); len(fails["failures"].([]any)) != 2 {
		t.Errorf("failures after rebuild = %v", fails)
	}
	f.problem(t, http.MethodPost, "/v1/admin/projections/nope/rebuild", 404, "not-found", "")
	f.problem(t, http.MethodGet, "/v1/admin/projections/inbox/rebuild", 405, "method-not-allowed", "")
	f.problem(t, http.MethodGet, "/v1/nothing-here", 404, "not-found", "")
}

func TestScopeHooks(t *testing.T) {
	t.Parallel()
	require := func(scope string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !strings.Contains(r.Header.Get("X-Scopes"), scope) {
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(http.StatusForbidden)
					_, _ = io.WriteString(w, `{"type":"https://herald.dev/problems/forbidden","status":403}`)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	f := newFixture(t, readapi.Options{RequireRead: require("read"), RequireAdmin: require("admin")})
	for _, c := range []struct {
		path, scopes string
		want         int
	}{
		{"/v1/notifications/n-1", "", 403},
		{"/v1/notifications/n-1", "read", 200},
		{"/v1/analytics/failures", "read", 200},
		{"/v1/admin/projections", "read", 403},
		{"/v1/admin/projections", "admin", 200},
		{"/v1/notifications/n-1", "admin", 403},
	} {
		code, _, m := f.do(t, http.MethodGet, c.path, http.Header{"X-Scopes": {c.scopes}})
		if code != c.want {
			t.Errorf("GET %s with scopes %q = %d %v, want %d", c.path, c.scopes, code, m, c.want)
		}
	}
}

func TestMissingPortsAreUnavailable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(readapi.NewHTTP(readapi.Views{}, readapi.Options{}))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	for _, p := range []string{
		"/v1/notifications/x", "/v1/notifications/x/events", "/v1/notifications", "/v1/recipients/x/inbox",
		"/v1/analytics/deliveries", "/v1/analytics/latency", "/v1/analytics/failures", "/v1/admin/projections",
	} {
		f.problem(t, http.MethodGet, p, 503, "unavailable", "")
	}
	f.problem(t, http.MethodPost, "/v1/admin/projections/inbox/rebuild", 503, "unavailable", "")
}

func TestProblemCatalogue(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, p := range readapi.ProblemTypes() {
		if seen[p.Name] || p.Status < 400 || p.Title == "" || !strings.HasPrefix(p.URI(), readapi.ProblemTypeBase) {
			t.Errorf("problem type %+v repeated or incomplete", p)
		}
		seen[p.Name] = true
	}
}

// busyAdmin is a runner that is always rebuilding and cannot report status.
type busyAdmin struct{}

func (busyAdmin) Status(context.Context) ([]projections.ProjectionStatus, error) {
	return nil, fmt.Errorf("read head: %w", eventstore.ErrClosed)
}

func (busyAdmin) StartRebuild(name string) error {
	return fmt.Errorf("rebuild %q: %w", name, projections.ErrRebuildInProgress)
}

func TestAdminErrorMapping(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(readapi.NewHTTP(readapi.Views{Projections: busyAdmin{}}, readapi.Options{}))
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}
	f.problem(t, http.MethodPost, "/v1/admin/projections/inbox/rebuild", 409, "conflict", "")
	f.problem(t, http.MethodGet, "/v1/admin/projections", 503, "unavailable", "")

	slow := httptest.NewServer(readapi.NewHTTP(readapi.Views{Projections: slowAdmin{}}, readapi.Options{}))
	t.Cleanup(slow.Close)
	(&fixture{srv: slow}).problem(t, http.MethodGet, "/v1/admin/projections", 503, "unavailable", "")
}

// slowAdmin is a runner whose store does not answer in time.
type slowAdmin struct{ busyAdmin }

func (slowAdmin) Status(context.Context) ([]projections.ProjectionStatus, error) {
	return nil, fmt.Errorf("read checkpoints: %w", context.DeadlineExceeded)
}
