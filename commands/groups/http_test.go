package groups_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/groups"
	"herald/domain"
	"herald/infra/eventstore/sqlite"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	t   *testing.T
	srv *httptest.Server
}

// newEnv serves the group API over a real SQLite event log. The caller's
// name is the X-Test-Actor header; "root" is the only admin.
func newEnv(t *testing.T, threshold int) *env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	svc, err := groups.NewService(groups.Deps{
		Store: store, Clock: func() time.Time { return t0 }, NewID: func() string { return uuid.Must(uuid.NewV7()).String() },
		ApprovalThreshold: threshold,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(groups.NewHTTP(svc, groups.Options{
		Actor:   func(r *http.Request) string { return r.Header.Get("X-Test-Actor") },
		IsAdmin: func(r *http.Request) bool { return r.Header.Get("X-Test-Actor") == "root" },
	}))
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(method, path, contentType string, body io.Reader, headers ...string) response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: data}
}

func (e *env) json(method, path string, v any, headers ...string) response {
	e.t.Helper()
	var body io.Reader
	ct := ""
	if v != nil {
		data, err := json.Marshal(v)
		if err != nil {
			e.t.Fatal(err)
		}
		body, ct = bytes.NewReader(data), "application/json"
	}
	return e.do(method, path, ct, body, headers...)
}

func (r response) ok(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
}

type problemJSON struct {
	Type   string              `json:"type"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Errors []domain.FieldError `json:"errors"`
	Lines  []groups.LineError  `json:"lines"`
}

func (r response) problem(t *testing.T, status int, name string) problemJSON {
	t.Helper()
	if r.status != status || r.header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d (%s), want %d problem: %s", r.status, r.header.Get("Content-Type"), status, r.body)
	}
	var p problemJSON
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Type != groups.ProblemTypeBase+name {
		t.Fatalf("problem type %s, want %s: %s", p.Type, name, r.body)
	}
	return p
}

func TestImport100kCSVWithBadLines(t *testing.T) {
	e := newEnv(t, 0)
	e.json("POST", "/v1/groups", map[string]any{"id": "customers", "name": "Customers"}, "X-Test-Actor", "ann").ok(t, 201, nil)

	// 100,000 data lines after a header; a few are bad, one repeats.
	const n = 100_000
	bad := map[int]string{ // data line index -> content
		17:    "",
		4242:  `"unterminated,x`,
		50000: "has space,y",
		77777: strings.Repeat("x", 200),
		99998: `"a"b`,
	}
	var body bytes.Buffer
	body.WriteString("recipient_id,name\n")
	for i := range n {
		switch {
		case bad[i] != "" || i == 17:
			body.WriteString(bad[i])
		case i == 600:
			body.WriteString(`"user-000005",again`)
		default:
			fmt.Fprintf(&body, "user-%06d,Name %d", i, i)
		}
		body.WriteString("\r\n")
	}
	var rep struct {
		Lines          int                `json:"lines"`
		Valid          int                `json:"valid"`
		Added          int                `json:"added"`
		AlreadyMembers int                `json:"already_members"`
		Rejected       int                `json:"rejected"`
		MemberCount    int                `json:"member_count"`
		Errors         []groups.LineError `json:"errors"`
	}
	res := e.do("POST", "/v1/groups/customers/members/import", "text/csv", &body, "X-Test-Actor", "ann")
	res.ok(t, 200, &rep)
	// Line numbers count the header as line 1. Line 18 is blank: skipped,
	// not an error.
	wantLines := []int{4244, 50002, 77779, 100000}
	if rep.Lines != n+1 || rep.Rejected != len(wantLines) || len(rep.Errors) != len(wantLines) {
		t.Fatalf("report %+v", rep)
	}
	for i, le := range rep.Errors {
		if le.Line != wantLines[i] || le.Problem == "" {
			t.Errorf("error %d: %+v, want line %d", i, le, wantLines[i])
		}
	}
	wantMembers := n - 5 // four bad lines and the blank one; line 600 repeats member 5
	if rep.Valid != wantMembers || rep.Added != wantMembers-1 || rep.AlreadyMembers != 1 || rep.MemberCount != wantMembers-1 {
		t.Errorf("valid %d, added %d, already %d, count %d", rep.Valid, rep.Added, rep.AlreadyMembers, rep.MemberCount)
	}

	// Page through every member with the cursor.
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		var page struct {
			Members    []string `json:"members"`
			NextCursor string   `json:"next_cursor"`
		}
		e.do("GET", "/v1/groups/customers/members?limit=10000&cursor="+cursor, "", nil).ok(t, 200, &page)
		all = append(all, page.Members...)
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 20 {
			t.Fatal("too many pages")
		}
	}
	if len(all) != wantMembers-1 || all[0] != "user-000000" || all[len(all)-1] != "user-099999" {
		t.Errorf("paged %d members, %s .. %s", len(all), all[0], all[len(all)-1])
	}

	// A repeated import adds nothing.
	again := e.do("POST", "/v1/groups/customers/members/import", "application/x-ndjson",
		strings.NewReader("\"user-000001\"\n{\"recipient_id\":\"user-000002\"}\n{\"id\":\"new-one\"}\n[1]\n"), "X-Test-Actor", "ann")
	again.ok(t, 200, &rep)
	if rep.Added != 1 || rep.Valid != 3 || rep.Rejected != 1 || rep.Errors[0].Line != 4 {
		t.Errorf("JSON lines report %+v", rep)
	}
	// Every line bad: 422 listing them.
	p := e.do("POST", "/v1/groups/customers/members/import", "text/csv", strings.NewReader("bad id\n\n\"x\n")).problem(t, 422, "import-failed")
	if len(p.Lines) != 2 || p.Lines[0].Line != 1 || p.Lines[1].Line != 3 {
		t.Errorf("lines %+v", p.Lines)
	}
	e.do("POST", "/v1/groups/customers/members/import", "application/json", strings.NewReader("[]")).problem(t, 415, "unsupported-media-type")
	e.do("POST", "/v1/groups/nobody/members/import", "text/csv", strings.NewReader("a\n")).problem(t, 404, "not-found")
}

type batchJSON struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Size     int    `json:"size"`
	Decision *struct {
		Outcome, Actor, Reason string
	} `json:"decision"`
	Progress struct{ Done, Failed, Total int } `json:"progress"`
}

func TestSendApproveReject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 3)
	ann := []string{"X-Test-Actor", "ann"}
	root := []string{"X-Test-Actor", "root"}
	e.json("POST", "/v1/groups", map[string]any{"id": "small", "name": "Small"}, ann...).ok(t, 201, nil)
	e.json("POST", "/v1/groups", map[string]any{"id": "small", "name": "Small"}, ann...).ok(t, 200, nil)
	e.json("POST", "/v1/groups", map[string]any{"id": "small", "name": "Other"}, ann...).problem(t, 409, "conflict")
	e.json("POST", "/v1/groups", map[string]any{"id": "big", "name": "Big"}, ann...).ok(t, 201, nil)
	e.json("POST", "/v1/groups", map[string]any{"id": "board", "name": "Board", "protected": true}, ann...).ok(t, 201, nil)
	var mres struct {
		Added       int `json:"added"`
		Removed     int `json:"removed"`
		MemberCount int `json:"member_count"`
	}
	e.json("POST", "/v1/groups/small/members", map[string]any{"add": []string{"a", "b", "c"}, "remove": []string{"c"}}, ann...).ok(t, 200, &mres)
	if mres.Added != 3 || mres.Removed != 1 || mres.MemberCount != 2 {
		t.Errorf("members: %+v", mres)
	}
	e.json("POST", "/v1/groups/big/members", map[string]any{"add": []string{"a", "b", "c", "d"}}, ann...).ok(t, 200, nil)
	e.json("POST", "/v1/groups/board/members", map[string]any{"add": []string{"ceo"}}, ann...).ok(t, 200, nil)
	p := e.json("POST", "/v1/groups/small/members", map[string]any{"add": []string{"ok", "not ok"}}, ann...).problem(t, 422, "validation-failed")
	if len(p.Errors) != 1 || p.Errors[0].Field != "add[1]" {
		t.Errorf("fields %+v", p.Errors)
	}

	msg := map[string]any{"content": map[string]any{"body": "Hello"}, "channels": []string{"inapp"}}
	var b batchJSON
	e.json("POST", "/v1/groups/small/send", msg, append(ann, "Idempotency-Key", "k1")...).ok(t, 202, &b)
	if b.Status != "accepted" || b.Size != 2 {
		t.Errorf("small send: %+v", b)
	}
	var again batchJSON
	e.json("POST", "/v1/groups/small/send", msg, append(ann, "Idempotency-Key", "k1")...).ok(t, 200, &again)
	if again.ID != b.ID {
		t.Errorf("repeat made batch %s, first %s", again.ID, b.ID)
	}
	e.json("POST", "/v1/groups/small/send", map[string]any{"content": map[string]any{"body": "Other"}}, append(ann, "Idempotency-Key", "k1")...).problem(t, 409, "idempotency-conflict")
	e.json("POST", "/v1/groups/small/send", map[string]any{"recipient": map[string]any{"id": "x"}, "content": map[string]any{"body": "x"}}, ann...).problem(t, 422, "validation-failed")

	var big, board batchJSON
	e.json("POST", "/v1/groups/big/send", msg, ann...).ok(t, 202, &big)
	e.json("POST", "/v1/groups/board/send", msg, ann...).ok(t, 202, &board)
	if big.Status != "awaiting_approval" || board.Status != "awaiting_approval" {
		t.Fatalf("big %s, board %s", big.Status, board.Status)
	}
	// Only admins decide.
	p = e.json("POST", "/v1/batches/"+big.ID+"/approve", nil, ann...).problem(t, 403, "forbidden")
	if !strings.Contains(p.Detail, "admin") {
		t.Errorf("403 detail %q", p.Detail)
	}
	e.json("POST", "/v1/batches/"+board.ID+"/reject", map[string]any{"reason": "no"}, ann...).problem(t, 403, "forbidden")
	e.json("POST", "/v1/batches/"+board.ID+"/reject", map[string]any{}, root...).problem(t, 422, "validation-failed")

	var decided batchJSON
	e.json("POST", "/v1/batches/"+big.ID+"/approve", map[string]any{"reason": "planned"}, root...).ok(t, 200, &decided)
	if decided.Status != "accepted" || decided.Decision == nil || decided.Decision.Actor != "root" || decided.Decision.Outcome != "approved" {
		t.Errorf("approved: %+v", decided)
	}
	e.json("POST", "/v1/batches/"+big.ID+"/approve", nil, root...).ok(t, 200, nil) // a repeat
	e.json("POST", "/v1/batches/"+big.ID+"/reject", map[string]any{"reason": "late"}, root...).problem(t, 409, "conflict")
	e.json("POST", "/v1/batches/"+board.ID+"/reject", map[string]any{"reason": "not before the AGM"}, root...).ok(t, 200, &decided)
	if decided.Status != "rejected" || decided.Decision.Reason != "not before the AGM" {
		t.Errorf("rejected: %+v", decided)
	}
	e.json("POST", "/v1/batches/"+board.ID+"/approve", nil, root...).problem(t, 409, "conflict")
	e.json("POST", "/v1/batches/"+b.ID+"/approve", nil, root...).problem(t, 409, "conflict")

	var got batchJSON
	e.do("GET", "/v1/batches/"+big.ID, "", nil).ok(t, 200, &got)
	if got.Status != "accepted" || got.Progress.Total != 4 || got.Progress.Done != 0 {
		t.Errorf("GET batch %+v", got)
	}
	e.do("GET", "/v1/batches/nope", "", nil).problem(t, 404, "not-found")
	e.do("POST", "/v1/groups/small/send", "text/plain", strings.NewReader("hi")).problem(t, 415, "unsupported-media-type")
	e.do("POST", "/v1/groups/small/send", "application/json", strings.NewReader("{")).problem(t, 400, "malformed-json")
	e.do("POST", "/v1/groups/small/send", "application/json", strings.NewReader(`{"nope":1}`)).problem(t, 400, "unknown-field")
	e.do("POST", "/v1/groups", "application/json", bytes.NewReader(make([]byte, 2<<20))).problem(t, 413, "body-too-large")
	var g struct {
		MemberCount int  `json:"member_count"`
		Protected   bool `json:"protected"`
	}
	e.do("GET", "/v1/groups/board", "", nil).ok(t, 200, &g)
	if g.MemberCount != 1 || !g.Protected {
		t.Errorf("board: %+v", g)
	}
	e.do("GET", "/v1/groups/none", "", nil).problem(t, 404, "not-found")
}
