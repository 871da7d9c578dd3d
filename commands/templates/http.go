package templates

import (
	"fmt"
	"herald/commands/jsonbody"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"herald/domain"
)

// DefaultMaxBodyBytes bounds a request body when Options leave it zero.
const DefaultMaxBodyBytes = 1 << 20

// Options configure the template endpoints.
type Options struct {
	// Actor names the caller of a request, normally the authenticated API
	// key's name. It is recorded on every event. Nil, or an empty name,
	// means "anonymous".
	Actor func(*http.Request) string
	// Middleware wraps every route, outermost first; authentication and
	// scope checks belong here.
	Middleware []func(http.Handler) http.Handler
	// MaxBodyBytes bounds every request body. Zero means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

func (o *Options) setDefaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
}

// NewHTTP returns the template endpoints:
//
//	POST /v1/templates                          create: 201, or 200 for a repeat of the same create
//	GET  /v1/templates?cursor=&limit=&status=   list in ID order: 200 {"templates", "next_cursor"}
//	GET  /v1/templates/{id}                     the template, its latest version and its version list
//	GET  /v1/templates/{id}/versions/{version}  one version, archived or superseded alike
//	PUT  /v1/templates/{id}                     publish the body as the next version: 200
//	POST /v1/templates/{id}/archive             archive: 200
//	POST /v1/templates/{id}/preview             render without sending: 200
//
// GET /v1/templates/{id} and every write answer with an ETag naming the
// latest version ("3"); a PUT with If-Match: "3" is refused with a 409
// version-conflict problem when another version was published since. Every
// error is application/problem+json with a type from ProblemTypes, and a
// refused request appends nothing. The writes are idempotent by content (a
// repeated create, update or archive changes nothing), so an
// Idempotency-Key header is accepted and needs no bookkeeping. It panics on
// a nil svc: a wiring bug.
func NewHTTP(svc *Service, opt Options) http.Handler {
	if svc == nil {
		panic("templates.NewHTTP: nil Service")
	}
	opt.setDefaults()
	a := &api{svc: svc, opt: opt}
	r := chi.NewRouter()
	r.Use(recoverProblem)
	r.Use(opt.Middleware...)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errRouteNotFound)) })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errMethodNotAllowed)) })
	r.Post("/v1/templates", a.create)
	r.Get("/v1/templates", a.list)
	r.Get("/v1/templates/{id}", a.get)
	r.Put("/v1/templates/{id}", a.update)
	r.Get("/v1/templates/{id}/versions/{version}", a.version)
	r.Post("/v1/templates/{id}/archive", a.archive)
	r.Post("/v1/templates/{id}/preview", a.preview)
	return r
}

type api struct {
	svc *Service
	opt Options
}

func recoverProblem(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				writeProblem(w, problemFor(fmt.Errorf("panic: %v", v)))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (a *api) origin(r *http.Request) Origin {
	o := Origin{CorrelationID: headerID(r, "X-Correlation-ID"), CausationID: headerID(r, "X-Request-ID")}
	if o.CausationID == "" {
		o.CausationID = middleware.GetReqID(r.Context())
	}
	if a.opt.Actor != nil {
		o.Actor = a.opt.Actor(r)
	}
	if o.Actor == "" {
		o.Actor = "anonymous"
	}
	return o
}

// headerID returns a tracing header when it is short printable ASCII, ""
// otherwise: it goes into every event, so junk is dropped, not refused.
func headerID(r *http.Request, name string) string {
	v := r.Header.Get(name)
	if len(v) > 128 {
		return ""
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return ""
		}
	}
	return v
}

// JSON shapes of the API.

type createRequestJSON struct {
	ID            domain.TemplateID               `json:"id"`
	Name          string                          `json:"name"`
	Description   string                          `json:"description"`
	DefaultLocale string                          `json:"default_locale"`
	Variables     []domain.TemplateVar            `json:"variables"`
	Locales       map[string]domain.LocaleContent `json:"locales"`
}

func (c createRequestJSON) content() domain.TemplateContent {
	return domain.TemplateContent{
		Name: c.Name, Description: c.Description, DefaultLocale: c.DefaultLocale,
		Variables: c.Variables, Locales: c.Locales,
	}
}

type versionJSON struct {
	TemplateID  domain.TemplateID      `json:"template_id"`
	Version     int                    `json:"version"`
	PublishedAt time.Time              `json:"published_at"`
	PublishedBy string                 `json:"published_by"`
	URL         string                 `json:"url"`
	Content     domain.TemplateContent `json:"content"`
}

type versionRefJSON struct {
	Version     int       `json:"version"`
	PublishedAt time.Time `json:"published_at"`
	PublishedBy string    `json:"published_by"`
	URL         string    `json:"url"`
}

type templateJSON struct {
	ID            domain.TemplateID `json:"id"`
	Name          string            `json:"name"`
	Description   string            `json:"description,omitempty"`
	Status        string            `json:"status"`
	CreatedAt     time.Time         `json:"created_at"`
	CreatedBy     string            `json:"created_by"`
	UpdatedAt     time.Time         `json:"updated_at"`
	ArchivedAt    *time.Time        `json:"archived_at,omitempty"`
	ArchiveReason string            `json:"archive_reason,omitempty"`
	LatestVersion versionJSON       `json:"latest_version"`
	Versions      []versionRefJSON  `json:"versions"`
}

func templateURL(id domain.TemplateID) string { return "/v1/templates/" + string(id) }

func versionURL(id domain.TemplateID, n int) string {
	return templateURL(id) + "/versions/" + strconv.Itoa(n)
}

func toVersionJSON(v domain.TemplateVersion) versionJSON {
	return versionJSON{
		TemplateID: v.TemplateID(), Version: v.Number(), PublishedAt: v.PublishedAt(),
		PublishedBy: v.PublishedBy(), URL: versionURL(v.TemplateID(), v.Number()), Content: v.Content(),
	}
}

func toTemplateJSON(t domain.Template) templateJSON {
	latest, _ := t.LatestVersion()
	c := latest.Content()
	out := templateJSON{
		ID: t.ID(), Name: c.Name, Description: c.Description, Status: "active",
		CreatedAt: t.CreatedAt(), CreatedBy: t.CreatedBy(), UpdatedAt: latest.PublishedAt(),
		LatestVersion: toVersionJSON(latest),
	}
	if t.Archived() {
		at := t.ArchivedAt()
		out.Status, out.ArchivedAt, out.ArchiveReason, out.UpdatedAt = "archived", &at, t.ArchiveReason(), at
	}
	for _, v := range t.Versions() {
		out.Versions = append(out.Versions, versionRefJSON{
			Version: v.Number(), PublishedAt: v.PublishedAt(), PublishedBy: v.PublishedBy(), URL: versionURL(t.ID(), v.Number()),
		})
	}
	return out
}

// writeTemplate answers with the template and its ETag.
func writeTemplate(w http.ResponseWriter, status int, t domain.Template) {
	latest, _ := t.LatestVersion()
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(latest.Number())))
	writeJSON(w, status, toTemplateJSON(t))
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var req createRequestJSON
	if err := a.decodeBody(w, r, &req, false); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.Create.Handle(r.Context(), Create{Origin: a.origin(r), ID: req.ID, Content: req.content()})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Location", templateURL(req.ID))
	status := http.StatusCreated
	if !res.Changed {
		status = http.StatusOK
	}
	writeTemplate(w, status, res.Template)
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	t, err := a.svc.Get(r.Context(), domain.TemplateID(chi.URLParam(r, "id")))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeTemplate(w, http.StatusOK, t)
}

func (a *api) version(w http.ResponseWriter, r *http.Request) {
	id := domain.TemplateID(chi.URLParam(r, "id"))
	n, err := strconv.Atoi(chi.URLParam(r, "version"))
	if err != nil || n < 1 {
		writeProblem(w, problemFor(fmt.Errorf("template %q version %q: %w", id, chi.URLParam(r, "version"), domain.ErrTemplateVersionNotFound)))
		return
	}
	v, err := a.svc.Version(r.Context(), id, n)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, toVersionJSON(v))
}

type listResponseJSON struct {
	Templates  []summaryJSON `json:"templates"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

type summaryJSON struct {
	ID            domain.TemplateID `json:"id"`
	Name          string            `json:"name"`
	Status        string            `json:"status"`
	LatestVersion int               `json:"latest_version"`
	CreatedAt     time.Time         `json:"created_at"`
	UpdatedAt     time.Time         `json:"updated_at"`
	URL           string            `json:"url"`
}

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	lq := ListQuery{Cursor: q.Get("cursor"), Status: q.Get("status")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeProblem(w, problemFor(fieldError("limit", fmt.Sprintf("must be 1 to %d", MaxListLimit))))
			return
		}
		lq.Limit = n
	}
	page, err := a.svc.List(r.Context(), lq)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	out := listResponseJSON{Templates: []summaryJSON{}, NextCursor: page.NextCursor}
	for _, s := range page.Templates {
		status := "active"
		if s.Archived {
			status = "archived"
		}
		out.Templates = append(out.Templates, summaryJSON{
			ID: s.ID, Name: s.Name, Status: status, LatestVersion: s.LatestVersion,
			CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, URL: templateURL(s.ID),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) update(w http.ResponseWriter, r *http.Request) {
	id := domain.TemplateID(chi.URLParam(r, "id"))
	ifVersion, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var content domain.TemplateContent
	if err := a.decodeBody(w, r, &content, false); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.Update.Handle(r.Context(), Update{Origin: a.origin(r), ID: id, Content: content, IfVersion: ifVersion})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeTemplate(w, http.StatusOK, res.Template)
}

// parseIfMatch reads the version an update was based on: an ETag this API
// returned ("3", also accepted weak or unquoted), or none. "*" only asks
// that the template exist, which every update requires anyway.
func parseIfMatch(h string) (int, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	s := strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fieldError("If-Match", `must be an ETag of this template, like "3"`)
	}
	return n, nil
}

type archiveRequestJSON struct {
	Reason string `json:"reason"`
}

func (a *api) archive(w http.ResponseWriter, r *http.Request) {
	var req archiveRequestJSON
	if err := a.decodeBody(w, r, &req, true); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	id := domain.TemplateID(chi.URLParam(r, "id"))
	res, err := a.svc.Archive.Handle(r.Context(), Archive{Origin: a.origin(r), ID: id, Reason: req.Reason})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeTemplate(w, http.StatusOK, res.Template)
}

type previewRequestJSON struct {
	Version  int              `json:"version"`
	Locale   string           `json:"locale"`
	Channels []domain.Channel `json:"channels"`
	Vars     map[string]any   `json:"vars"`
}

type previewResponseJSON struct {
	TemplateID domain.TemplateID    `json:"template_id"`
	Version    int                  `json:"version"`
	Channels   []channelPreviewJSON `json:"channels"`
}

type channelPreviewJSON struct {
	Channel domain.Channel  `json:"channel"`
	Locale  string          `json:"locale"`
	Subject string          `json:"subject,omitempty"`
	Body    string          `json:"body,omitempty"`
	HTML    string          `json:"html,omitempty"`
	SMS     *domain.SMSInfo `json:"sms,omitempty"`
}

func (a *api) preview(w http.ResponseWriter, r *http.Request) {
	var req previewRequestJSON
	if err := a.decodeBody(w, r, &req, true); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.Preview(r.Context(), PreviewRequest{
		ID: domain.TemplateID(chi.URLParam(r, "id")), Version: req.Version, Locale: req.Locale,
		Channels: req.Channels, Vars: req.Vars,
	})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	out := previewResponseJSON{TemplateID: res.ID, Version: res.Version, Channels: []channelPreviewJSON{}}
	for _, c := range res.Channels {
		out.Channels = append(out.Channels, channelPreviewJSON{
			Channel: c.Channel, Locale: c.Locale, Subject: c.Content.Subject, Body: c.Content.Body,
			HTML: c.Content.HTML, SMS: c.SMS,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// decodeBody checks the content type, reads at most MaxBodyBytes and
// decodes exactly one JSON value into v, refusing unknown fields. With
// optional, an empty body (with or without a JSON content type) leaves v
// as it is. Numbers in untyped places (template vars) decode as
// json.Number, keeping large integers exact.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	return jsonbody.Read(w, r, v, jsonbody.Options{MaxBytes: a.opt.MaxBodyBytes, Optional: optional, UseNumber: true})
}
