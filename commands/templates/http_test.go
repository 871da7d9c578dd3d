package templates_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"herald/commands/templates"
	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/eventstore/sqlite"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

type env struct {
	t     *testing.T
	store *sqlite.Store
	svc   *templates.Service
	srv   *httptest.Server
}

// newEnv serves the template API over a real SQLite event log in a
// temporary directory. The clock advances a minute per reading.
func newEnv(t *testing.T, opt templates.Options) *env {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "events.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	var ticks atomic.Int64
	svc, err := templates.NewService(templates.Deps{
		Store: store,
		Clock: func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * time.Minute) },
		NewID: func() string { return uuid.Must(uuid.NewV7()).String() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if opt.Actor == nil {
		opt.Actor = func(r *http.Request) string { return r.Header.Get("X-Test-Actor") }
	}
	srv := httptest.NewServer(templates.NewHTTP(svc, opt))
	t.Cleanup(srv.Close)
	return &env{t: t, store: store, svc: svc, srv: srv}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes a problem+json answer and checks its status and type.
func (r response) problem(t *testing.T, status int, typ string) problemJSON {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q for a problem", ct)
	}
	var p problemJSON
	r.decode(t, &p)
	if p.Type != templates.ProblemTypeBase+typ || p.Status != status {
		t.Fatalf("problem %+v, want type %s", p, typ)
	}
	return p
}

type problemJSON struct {
	Type   string              `json:"type"`
	Status int                 `json:"status"`
	Detail string              `json:"detail"`
	Errors []domain.FieldError `json:"errors"`
}

func (p problemJSON) fields() []string {
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func (e *env) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
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

func (e *env) head() eventstore.Position {
	e.t.Helper()
	p, err := e.store.Head(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func otpContent() map[string]any {
	return map[string]any{
		"name":           "One-time code",
		"default_locale": "en",
		"variables": []map[string]any{
			{"name": "code", "type": "string", "required": true},
			{"name": "minutes", "type": "number", "required": true},
		},
		"locales": map[string]any{
			"en": map[string]any{
				"email": map[string]any{"subject": "Code {{.code}}", "text": "Your code is {{.code}}", "html": "<p>Your code is <b>{{.code}}</b></p>"},
				"sms":   map[string]any{"text": "Code {{.code}}, valid {{.minutes}} minutes"},
			},
			"de": map[string]any{
				"sms": map[string]any{"text": "Code {{.code}}, gültig {{.minutes}} Minuten"},
			},
		},
	}
}

func otpCreate() map[string]any {
	c := otpContent()
	c["id"] = "otp"
	return c
}

func otpV2() map[string]any {
	c := otpContent()
	c["locales"].(map[string]any)["en"].(map[string]any)["sms"] = map[string]any{"text": "v2: {{.code}} ({{.minutes}} min) €"}
	return c
}

type templateJSON struct {
	ID            string `json:"id"`
	Name          string `json:"name"`
	Status        string `json:"status"`
	CreatedBy     string `json:"created_by"`
	LatestVersion struct {
		Version     int                    `json:"version"`
		PublishedBy string                 `json:"published_by"`
		Content     domain.TemplateContent `json:"content"`
	} `json:"latest_version"`
	Versions []struct {
		Version int    `json:"version"`
		URL     string `json:"url"`
	} `json:"versions"`
}

type previewJSON struct {
	TemplateID string `json:"template_id"`
	Version    int    `json:"version"`
	Channels   []struct {
		Channel string          `json:"channel"`
		Locale  string          `json:"locale"`
		Subject string          `json:"subject"`
		Body    string          `json:"body"`
		HTML    string          `json:"html"`
		SMS     *domain.SMSInfo `json:"sms"`
	} `json:"channels"`
}

func TestTemplateLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{})
	ctx := t.Context()

	// The index follower runs alongside, as in production.
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- e.svc.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Create.
	res := e.do("POST", "/v1/templates", otpCreate(), "X-Test-Actor", "ops")
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v1/templates/otp" || res.header.Get("ETag") != `"1"` {
		t.Fatalf("create: %d %v %s", res.status, res.header, res.body)
	}
	var created templateJSON
	res.decode(t, &created)
	if created.ID != "otp" || created.Name != "One-time code" || created.Status != "active" || created.CreatedBy != "ops" ||
		created.LatestVersion.Version != 1 || created.LatestVersion.PublishedBy != "ops" {
		t.Errorf("created = %+v", created)
	}
	// A repeated create changes nothing.
	before := e.head()
	if res := e.do("POST", "/v1/templates", otpCreate()); res.status != http.StatusOK {
		t.Fatalf("repeated create: %d %s", res.status, res.body)
	}
	if e.head() != before {
		t.Error("a repeated create appended events")
	}

	// Update publishes version 2; a stale If-Match is a conflict.
	res = e.do("PUT", "/v1/templates/otp", otpV2(), "If-Match", `"1"`)
	if res.status != http.StatusOK || res.header.Get("ETag") != `"2"` {
		t.Fatalf("update: %d %v %s", res.status, res.header, res.body)
	}
	other := otpV2()
	other["name"] = "Someone else's edit"
	e.do("PUT", "/v1/templates/otp", other, "If-Match", `"1"`).problem(t, http.StatusConflict, "version-conflict")

	// Both versions stay readable.
	var v1, v2 struct {
		Version int                    `json:"version"`
		Content domain.TemplateContent `json:"content"`
	}
	e.do("GET", "/v1/templates/otp/versions/1", nil).decode(t, &v1)
	e.do("GET", "/v1/templates/otp/versions/2", nil).decode(t, &v2)
	if v1.Version != 1 || v1.Content.Locales["en"].SMS.Text != "Code {{.code}}, valid {{.minutes}} minutes" {
		t.Errorf("version 1 = %+v", v1)
	}
	if v2.Version != 2 || !strings.HasPrefix(v2.Content.Locales["en"].SMS.Text, "v2:") {
		t.Errorf("version 2 = %+v", v2)
	}
	e.do("GET", "/v1/templates/otp/versions/3", nil).problem(t, http.StatusNotFound, "not-found")
	e.do("GET", "/v1/templates/otp/versions/x", nil).problem(t, http.StatusNotFound, "not-found")

	var got templateJSON
	res = e.do("GET", "/v1/templates/otp", nil)
	res.decode(t, &got)
	if res.header.Get("ETag") != `"2"` || got.LatestVersion.Version != 2 || len(got.Versions) != 2 ||
		got.Versions[0].URL != "/v1/templates/otp/versions/1" {
		t.Errorf("get = %+v", got)
	}

	// Preview: locale fallback per channel, HTML escaping, SMS encoding.
	var pv previewJSON
	res = e.do("POST", "/v1/templates/otp/preview", map[string]any{
		"locale": "de-AT", "channels": []string{"email", "sms"},
		"vars": map[string]any{"code": "<1234>", "minutes": 10},
	})
	if res.status != http.StatusOK {
		t.Fatalf("preview: %d %s", res.status, res.body)
	}
	res.decode(t, &pv)
	if pv.Version != 2 || len(pv.Channels) != 2 {
		t.Fatalf("preview = %+v", pv)
	}
	em, sm := pv.Channels[0], pv.Channels[1]
	if em.Channel != "email" || em.Locale != "en" || em.Subject != "Code <1234>" || em.HTML != "<p>Your code is <b>&lt;1234&gt;</b></p>" || em.SMS != nil {
		t.Errorf("email preview = %+v", em)
	}
	if sm.Channel != "sms" || sm.Locale != "de" || sm.Body != "Code <1234>, gültig 10 Minuten" ||
		sm.SMS == nil || *sm.SMS != (domain.SMSInfo{Encoding: domain.SMSEncodingGSM7, Units: 30, Segments: 1, PerSegment: 160}) {
		t.Errorf("sms preview = %+v %+v", sm, sm.SMS)
	}
	// An old version previews too; the euro sign of version 2 counts double.
	e.do("POST", "/v1/templates/otp/preview", map[string]any{
		"channels": []string{"sms"}, "vars": map[string]any{"code": "1", "minutes": 1},
	}).decode(t, &pv)
	if pv.Channels[0].Body != "v2: 1 (1 min) €" || pv.Channels[0].SMS.Units != 16 {
		t.Errorf("latest sms preview = %+v %+v", pv.Channels[0], pv.Channels[0].SMS)
	}
	e.do("POST", "/v1/templates/otp/preview", map[string]any{
		"version": 1, "vars": map[string]any{"code": "1", "minutes": 1},
	}).decode(t, &pv)
	if pv.Version != 1 || len(pv.Channels) != 2 || pv.Channels[1].Body != "Code 1, valid 1 minutes" {
		t.Errorf("version 1 preview of every channel = %+v", pv)
	}

	// A missing variable is a 422 naming it, for a preview and for a send.
	p := e.do("POST", "/v1/templates/otp/preview", map[string]any{
		"channels": []string{"sms"}, "vars": map[string]any{"minutes": "soon"},
	}).problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if !slices.Equal(p.fields(), []string{"vars.code", "vars.minutes"}) {
		t.Errorf("preview fields = %v", p.fields())
	}
	_, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Vars: map[string]any{"minutes": 3}}, []domain.Channel{domain.ChannelSMS})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Field != "template.vars.code" {
		t.Errorf("resolve without code: %v", err)
	}

	// Resolve pins the version; Render renders the pinned one.
	vars := map[string]any{"code": "42", "minutes": json.Number("5")}
	ref, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Locale: "de", Vars: vars}, []domain.Channel{domain.ChannelSMS, domain.ChannelEmail})
	if err != nil || ref.Version != 2 || ref.Locale != "de" || ref.Vars["code"] != "42" {
		t.Fatalf("resolve latest = %+v, %v", ref, err)
	}
	old, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Version: 1, Vars: vars}, []domain.Channel{domain.ChannelSMS})
	if err != nil || old.Version != 1 {
		t.Fatalf("resolve version 1 = %+v, %v", old, err)
	}
	if _, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Version: 9, Vars: vars}, nil); !errors.Is(err, domain.ErrTemplateVersionNotFound) ||
		!errors.As(err, &ve) || ve.Fields[0].Field != "template.version" {
		t.Errorf("resolve version 9: %v", err)
	}
	if _, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Vars: vars}, []domain.Channel{domain.ChannelSlack}); !errors.As(err, &ve) || ve.Fields[0].Field != "channels" {
		t.Errorf("resolve for a channel without content: %v", err)
	}
	if _, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "nope", Vars: vars}, nil); !errors.Is(err, domain.ErrTemplateNotFound) ||
		!errors.As(err, &ve) || ve.Fields[0].Field != "template.id" {
		t.Errorf("resolve a missing template: %v", err)
	}
	rendered, err := e.svc.Render(ctx, old, domain.ChannelSMS)
	if err != nil || rendered.Body != "Code 42, valid 5 minutes" {
		t.Errorf("render version 1 = %+v, %v", rendered, err)
	}

	// Archive; archiving again is fine; updates are refused afterwards.
	res = e.do("POST", "/v1/templates/otp/archive", map[string]any{"reason": "replaced by otp2"})
	var archived templateJSON
	res.decode(t, &archived)
	if res.status != http.StatusOK || archived.Status != "archived" {
		t.Fatalf("archive: %d %s", res.status, res.body)
	}
	before = e.head()
	if res := e.do("POST", "/v1/templates/otp/archive", nil); res.status != http.StatusOK {
		t.Errorf("archive again: %d %s", res.status, res.body)
	}
	e.do("PUT", "/v1/templates/otp", otpContent()).problem(t, http.StatusConflict, "conflict")
	if e.head() != before {
		t.Error("refused writes appended events")
	}

	// Resolve refuses the archived template; pinned sends still render and
	// old versions stay readable.
	if _, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Vars: vars}, nil); !errors.Is(err, domain.ErrTemplateArchived) ||
		!errors.As(err, &ve) || ve.Fields[0].Field != "template.id" {
		t.Errorf("resolve archived: %v", err)
	}
	if _, err := e.svc.Resolve(ctx, domain.TemplateRef{ID: "otp", Version: 1, Vars: vars}, nil); !errors.Is(err, domain.ErrTemplateArchived) {
		t.Errorf("resolve archived, pinned: %v", err)
	}
	if r, err := e.svc.Render(ctx, ref, domain.ChannelSMS); err != nil || r.Body != "Code 42, gültig 5 Minuten" {
		t.Errorf("render pinned version of an archived template = %+v, %v", r, err)
	}
	if res := e.do("GET", "/v1/templates/otp/versions/1", nil); res.status != http.StatusOK {
		t.Errorf("read version 1 after archive: %d", res.status)
	}
}

// The events a command appends are the domain's, in the template's stream,
// with the caller's metadata.
func TestTemplateEventsInTheLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{})
	e.do("POST", "/v1/templates", otpCreate(), "X-Test-Actor", "ops", "X-Request-ID", "req-1")
	e.do("PUT", "/v1/templates/otp", otpV2())
	recs, err := e.store.ReadStream(t.Context(), "template-otp", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range recs {
		types = append(types, r.Type)
	}
	want := []string{domain.TypeTemplateCreated, domain.TypeTemplateVersionPublished, domain.TypeTemplateVersionPublished}
	if !slices.Equal(types, want) {
		t.Fatalf("stream types %v, want %v", types, want)
	}
	if m := recs[0].Metadata; m.Actor != "ops" || m.CausationID != "req-1" || m.CorrelationID != "template-otp" {
		t.Errorf("metadata = %+v", m)
	}
	if m := recs[2].Metadata; m.Actor != "anonymous" {
		t.Errorf("anonymous actor = %+v", m)
	}
	ev, err := domain.UnmarshalEvent(recs[2].Type, recs[2].Data)
	if pub, ok := ev.(domain.TemplateVersionPublished); err != nil || !ok || pub.Version != 2 || pub.TemplateID != "otp" {
		t.Errorf("third event = %#v, %v", ev, err)
	}
}

func TestConcurrentUpdatesWithTheSameIfMatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{})
	e.do("POST", "/v1/templates", otpCreate())
	const n = 4
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			c := otpContent()
			c["name"] = "edit " + string(rune('A'+i))
			statuses[i] = e.do("PUT", "/v1/templates/otp", c, "If-Match", `"1"`).status
		})
	}
	wg.Wait()
	slices.Sort(statuses)
	if want := []int{200, 409, 409, 409}; !slices.Equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	tpl, err := e.svc.Get(t.Context(), "otp")
	if err != nil || len(tpl.Versions()) != 2 {
		t.Errorf("after concurrent edits: %d versions, %v", len(tpl.Versions()), err)
	}
}

func TestListTemplates(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{})
	ids := []string{"e", "a", "d", "b", "c"}
	for _, id := range ids {
		c := otpContent()
		c["id"] = id
		c["name"] = "T " + id
		if res := e.do("POST", "/v1/templates", c); res.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", id, res.status, res.body)
		}
	}
	e.do("PUT", "/v1/templates/b", otpV2())
	e.do("POST", "/v1/templates/d/archive", nil)

	type page struct {
		Templates []struct {
			ID            string `json:"id"`
			Name          string `json:"name"`
			Status        string `json:"status"`
			LatestVersion int    `json:"latest_version"`
		} `json:"templates"`
		NextCursor string `json:"next_cursor"`
	}
	var seen []string
	cursor := ""
	for range 10 {
		var p page
		res := e.do("GET", "/v1/templates?limit=2&cursor="+cursor, nil)
		if res.status != http.StatusOK {
			t.Fatalf("list: %d %s", res.status, res.body)
		}
		res.decode(t, &p)
		for _, s := range p.Templates {
			seen = append(seen, s.ID)
			switch s.ID {
			case "b":
				if s.LatestVersion != 2 || s.Name != "One-time code" {
					t.Errorf("b = %+v", s)
				}
			case "d":
				if s.Status != "archived" {
					t.Errorf("d = %+v", s)
				}
			}
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if want := []string{"a", "b", "c", "d", "e"}; !slices.Equal(seen, want) {
		t.Errorf("paged through %v, want %v", seen, want)
	}

	var active, archived page
	e.do("GET", "/v1/templates?status=active", nil).decode(t, &active)
	e.do("GET", "/v1/templates?status=archived", nil).decode(t, &archived)
	if len(active.Templates) != 4 || len(archived.Templates) != 1 || archived.Templates[0].ID != "d" {
		t.Errorf("active %+v, archived %+v", active, archived)
	}

	for _, q := range []string{"limit=0", "limit=501", "limit=x", "cursor=%21%21", "status=gone"} {
		e.do("GET", "/v1/templates?"+q, nil).problem(t, http.StatusUnprocessableEntity, "validation-failed")
	}
}

func TestTemplateRequestErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{MaxBodyBytes: 4096})
	e.do("POST", "/v1/templates", otpCreate())
	start := e.head()

	undeclared := otpCreate()
	undeclared["id"] = "x"
	undeclared["locales"].(map[string]any)["en"].(map[string]any)["sms"] = map[string]any{"text": "{{.cod}}"}
	p := e.do("POST", "/v1/templates", undeclared).problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if !slices.Equal(p.fields(), []string{"locales.en.sms.text"}) || !strings.Contains(p.Errors[0].Problem, `"cod"`) {
		t.Errorf("undeclared variable: %+v", p)
	}
	badID := otpCreate()
	badID["id"] = "has space"
	if p := e.do("POST", "/v1/templates", badID).problem(t, http.StatusUnprocessableEntity, "validation-failed"); !slices.Equal(p.fields(), []string{"id"}) {
		t.Errorf("bad id fields %v", p.fields())
	}
	conflicting := otpV2()
	conflicting["id"] = "otp"
	e.do("POST", "/v1/templates", conflicting).problem(t, http.StatusConflict, "conflict")

	e.do("POST", "/v1/templates", `{"id": "x",`).problem(t, http.StatusBadRequest, "malformed-json")
	e.do("POST", "/v1/templates", `{"id": "x"} {}`).problem(t, http.StatusBadRequest, "malformed-json")
	e.do("POST", "/v1/templates", "").problem(t, http.StatusBadRequest, "malformed-json")
	if p := e.do("POST", "/v1/templates", `{"id": "x", "colour": 1}`).problem(t, http.StatusBadRequest, "unknown-field"); !slices.Equal(p.fields(), []string{"colour"}) {
		t.Errorf("unknown field: %+v", p)
	}
	if p := e.do("POST", "/v1/templates", `{"id": 7}`).problem(t, http.StatusUnprocessableEntity, "validation-failed"); !slices.Equal(p.fields(), []string{"id"}) {
		t.Errorf("wrong type: %+v", p)
	}
	e.do("POST", "/v1/templates", `{}`, "Content-Type", "text/plain").problem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
	big := otpCreate()
	big["description"] = strings.Repeat("x", 5000)
	e.do("POST", "/v1/templates", big).problem(t, http.StatusRequestEntityTooLarge, "body-too-large")

	e.do("PUT", "/v1/templates/otp", otpV2(), "If-Match", "yesterday").problem(t, http.StatusUnprocessableEntity, "validation-failed")
	e.do("PUT", "/v1/templates/missing", otpV2()).problem(t, http.StatusNotFound, "not-found")
	e.do("GET", "/v1/templates/missing", nil).problem(t, http.StatusNotFound, "not-found")
	e.do("GET", "/v1/templates/a%20b", nil).problem(t, http.StatusNotFound, "not-found")
	e.do("POST", "/v1/templates/missing/archive", nil).problem(t, http.StatusNotFound, "not-found")
	e.do("POST", "/v1/templates/missing/preview", map[string]any{}).problem(t, http.StatusNotFound, "not-found")
	e.do("DELETE", "/v1/templates/otp", nil).problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
	e.do("GET", "/v1/nothing", nil).problem(t, http.StatusNotFound, "not-found")

	// Preview input errors name the body's fields.
	p = e.do("POST", "/v1/templates/otp/preview", map[string]any{"channels": []string{"sms", "fax", "slack"}}).problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if !slices.Equal(p.fields(), []string{"channels[1]", "channels[2]"}) {
		t.Errorf("preview channels: %v", p.fields())
	}
	if p := e.do("POST", "/v1/templates/otp/preview", map[string]any{"version": 7}).problem(t, http.StatusUnprocessableEntity, "validation-failed"); !slices.Equal(p.fields(), []string{"version"}) {
		t.Errorf("preview version: %v", p.fields())
	}

	if e.head() != start {
		t.Error("refused requests appended events")
	}
}

// A render that fails at run time is a 422 render-failed problem with no
// partial output.
func TestPreviewRenderFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{})
	c := map[string]any{
		"id": "short", "default_locale": "en",
		"variables": []map[string]any{{"name": "s", "type": "string", "required": true}},
		"locales":   map[string]any{"en": map[string]any{"sms": map[string]any{"text": "{{slice .s 0 4}}"}}},
	}
	if res := e.do("POST", "/v1/templates", c); res.status != http.StatusCreated {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	p := e.do("POST", "/v1/templates/short/preview", map[string]any{"vars": map[string]any{"s": "ab"}}).problem(t, http.StatusUnprocessableEntity, "render-failed")
	if !strings.Contains(p.Detail, "slice") {
		t.Errorf("detail %q does not say what failed", p.Detail)
	}
	if _, err := e.svc.Render(t.Context(), domain.TemplateRef{ID: "short", Version: 1, Vars: map[string]any{"s": "ab"}}, domain.ChannelSMS); !errors.Is(err, domain.ErrTemplateRender) {
		t.Errorf("Render: %v", err)
	}
	if _, err := e.svc.Render(t.Context(), domain.TemplateRef{ID: "short", Version: 2}, domain.ChannelSMS); !errors.Is(err, domain.ErrTemplateVersionNotFound) {
		t.Errorf("Render a missing version: %v", err)
	}
	if _, err := e.svc.Render(t.Context(), domain.TemplateRef{ID: "short", Version: 1, Vars: map[string]any{"s": "abcd"}}, domain.ChannelEmail); !errors.Is(err, domain.ErrTemplateChannelMissing) {
		t.Errorf("Render a channel without content: %v", err)
	}
}

func TestNewServiceRefusesMissingDeps(t *testing.T) {
	t.Parallel()
	if _, err := templates.NewService(templates.Deps{}); err == nil {
		t.Error("NewService accepted empty Deps")
	}
	for _, f := range []func(templates.Deps) error{
		func(d templates.Deps) error { _, err := templates.NewCreateHandler(d); return err },
		func(d templates.Deps) error { _, err := templates.NewUpdateHandler(d); return err },
		func(d templates.Deps) error { _, err := templates.NewArchiveHandler(d); return err },
	} {
		if err := f(templates.Deps{Clock: time.Now}); err == nil {
			t.Error("a handler accepted Deps without Store and NewID")
		}
	}
}

// The list index lives in memory: a fresh service over the same log (a
// restart, or another process) rebuilds it from the log before answering.
func TestListIndexIsRebuiltFromTheLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, templates.Options{})
	e.do("POST", "/v1/templates", otpCreate())
	e.do("POST", "/v1/templates/otp/archive", nil)

	fresh, err := templates.NewService(templates.Deps{
		Store: e.store, Clock: func() time.Time { return t0 }, NewID: func() string { return uuid.NewString() },
	})
	if err != nil {
		t.Fatal(err)
	}
	page, err := fresh.List(t.Context(), templates.ListQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Templates) != 1 {
		t.Fatalf("fresh list = %+v", page)
	}
	if s := page.Templates[0]; s.ID != "otp" || !s.Archived || s.LatestVersion != 1 || s.Name != "One-time code" || page.NextCursor != "" {
		t.Errorf("summary = %+v", s)
	}
	// A write through the first service shows in the second's next list.
	c := otpContent()
	c["id"] = "welcome"
	e.do("POST", "/v1/templates", c)
	page, err = fresh.List(t.Context(), templates.ListQuery{Status: "active"})
	if err != nil || len(page.Templates) != 1 || page.Templates[0].ID != "welcome" {
		t.Errorf("active after another service's create = %+v, %v", page, err)
	}
}
