package groups

import (
	"encoding/base64"
	"errors"
	"fmt"
	"herald/commands/jsonbody"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"herald/domain"
)

// Body limits when Options leave them zero.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultMaxImportBytes = 32 << 20
)

// Member page limits.
const (
	DefaultMembersLimit = 1000
	MaxMembersLimit     = 10_000
)

// Options configure the group and batch endpoints.
type Options struct {
	// Actor names the caller, normally the authenticated API key's name;
	// it is recorded on every event and scopes Idempotency-Keys. Nil or ""
	// means "anonymous".
	Actor func(*http.Request) string
	// IsAdmin reports whether the caller may approve and reject batches.
	// Nil means nobody may.
	IsAdmin func(*http.Request) bool
	// Middleware wraps every route, outermost first.
	Middleware []func(http.Handler) http.Handler
	// MaxBodyBytes bounds JSON bodies; zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxImportBytes bounds an import body; zero means
	// DefaultMaxImportBytes (about 800,000 lines of 40 bytes).
	MaxImportBytes int64
}

func (o *Options) setDefaults() {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxImportBytes <= 0 {
		o.MaxImportBytes = DefaultMaxImportBytes
	}
}

// NewHTTP returns the group and batch endpoints:
//
//	POST /v1/groups                         create {"id", "name", "protected"}: 201, 200 for a repeat
//	GET  /v1/groups/{id}                    the group and its member count
//	POST /v1/groups/{id}/members            {"add": [...], "remove": [...]}: 200
//	POST /v1/groups/{id}/members/import     text/csv or application/x-ndjson body: 200 with a line report
//	GET  /v1/groups/{id}/members?cursor=&limit=   members in ID order
//	POST /v1/groups/{id}/send               a notification request without recipient: 202 with the batch
//	GET  /v1/batches/{id}                   status and progress
//	POST /v1/batches/{id}/approve           {"reason"}: admins only (403 otherwise)
//	POST /v1/batches/{id}/reject            {"reason"}: admins only, reason required
//
// Errors are application/problem+json with a type from ProblemTypes; a
// refused request appends nothing. It panics on a nil svc: a wiring bug.
func NewHTTP(svc *Service, opt Options) http.Handler {
	if svc == nil {
		panic("groups.NewHTTP: nil Service")
	}
	opt.setDefaults()
	a := &api{svc: svc, opt: opt}
	r := chi.NewRouter()
	r.Use(recoverProblem)
	r.Use(opt.Middleware...)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errRouteNotFound)) })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errMethodNotAllowed)) })
	r.Post("/v1/groups", a.create)
	r.Get("/v1/groups/{id}", a.get)
	r.Post("/v1/groups/{id}/members", a.members)
	r.Post("/v1/groups/{id}/members/import", a.importMembers)
	r.Get("/v1/groups/{id}/members", a.listMembers)
	r.Post("/v1/groups/{id}/send", a.send)
	r.Get("/v1/batches/{id}", a.batch)
	r.Post("/v1/batches/{id}/approve", a.approve)
	r.Post("/v1/batches/{id}/reject", a.reject)
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

func (a *api) isAdmin(r *http.Request) bool { return a.opt.IsAdmin != nil && a.opt.IsAdmin(r) }

// headerID returns a tracing header when it is short printable ASCII.
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

type groupJSON struct {
	ID            domain.GroupID `json:"id"`
	Name          string         `json:"name"`
	Protected     bool           `json:"protected"`
	Status        string         `json:"status"`
	MemberCount   int            `json:"member_count"`
	Version       int            `json:"version"`
	CreatedAt     time.Time      `json:"created_at"`
	CreatedBy     string         `json:"created_by"`
	ArchivedAt    *time.Time     `json:"archived_at,omitempty"`
	ArchiveReason string         `json:"archive_reason,omitempty"`
	MembersURL    string         `json:"members_url"`
}

func groupURL(id domain.GroupID) string { return "/v1/groups/" + string(id) }

func toGroupJSON(g domain.Group) groupJSON {
	out := groupJSON{
		ID: g.ID(), Name: g.Name(), Protected: g.Protected(), Status: "active", MemberCount: g.MemberCount(),
		Version: g.Version(), CreatedAt: g.CreatedAt(), CreatedBy: g.CreatedBy(), MembersURL: groupURL(g.ID()) + "/members",
	}
	if g.Archived() {
		at := g.ArchivedAt()
		out.Status, out.ArchivedAt, out.ArchiveReason = "archived", &at, g.ArchiveReason()
	}
	return out
}

type createRequestJSON struct {
	ID        domain.GroupID `json:"id"`
	Name      string         `json:"name"`
	Protected bool           `json:"protected"`
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	var req createRequestJSON
	if err := a.decodeBody(w, r, &req, false); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.CreateGroup(r.Context(), a.origin(r), req.ID, req.Name, req.Protected)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Location", groupURL(req.ID))
	status := http.StatusCreated
	if !res.Changed {
		status = http.StatusOK
	}
	writeJSON(w, status, toGroupJSON(res.Group))
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	g, err := a.svc.Group(r.Context(), domain.GroupID(chi.URLParam(r, "id")))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, toGroupJSON(g))
}

type membersRequestJSON struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

type membersResponseJSON struct {
	Added       int `json:"added"`
	Removed     int `json:"removed"`
	MemberCount int `json:"member_count"`
	Version     int `json:"version"`
}

func (a *api) members(w http.ResponseWriter, r *http.Request) {
	var req membersRequestJSON
	if err := a.decodeBody(w, r, &req, false); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.ChangeMembers(r.Context(), a.origin(r), domain.GroupID(chi.URLParam(r, "id")), req.Add, req.Remove)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, membersResponseJSON{
		Added: res.Added, Removed: res.Removed, MemberCount: res.Group.MemberCount(), Version: res.Group.Version(),
	})
}

type importResponseJSON struct {
	GroupID         domain.GroupID `json:"group_id"`
	Lines           int            `json:"lines"`
	Valid           int            `json:"valid"`
	Added           int            `json:"added"`
	AlreadyMembers  int            `json:"already_members"`
	Rejected        int            `json:"rejected"`
	Errors          []LineError    `json:"errors"`
	ErrorsTruncated bool           `json:"errors_truncated,omitempty"`
	MemberCount     int            `json:"member_count"`
	Version         int            `json:"version"`
}

// importMembers streams the body through ImportMembers. It answers 200
// with the report when at least one line was valid (or the body was
// empty), and 422 import-failed listing the line errors when every
// non-blank line was refused.
func (a *api) importMembers(w http.ResponseWriter, r *http.Request) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	var format ImportFormat
	switch mt {
	case "text/csv":
		format = ImportCSV
	case "application/x-ndjson", "application/jsonl", "application/jsonlines", "application/json-lines":
		format = ImportJSONLines
	default:
		writeProblem(w, problemFor(fmt.Errorf("content type %q: use text/csv or application/x-ndjson: %w", ct, errUnsupportedMediaType)))
		return
	}
	limit := a.opt.MaxImportBytes
	if r.ContentLength > limit {
		writeProblem(w, problemFor(&http.MaxBytesError{Limit: limit}))
		return
	}
	id := domain.GroupID(chi.URLParam(r, "id"))
	rep, err := a.svc.ImportMembers(r.Context(), a.origin(r), id, format, http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	if rep.Valid == 0 && rep.Rejected > 0 {
		p := problemFor(errors.New("import refused"))
		p.Type, p.Title, p.Status = ProblemImportFailed.URI(), ProblemImportFailed.Title, ProblemImportFailed.Status
		p.Detail = fmt.Sprintf("%d line(s) refused; see lines", rep.Rejected)
		p.Lines = rep.Errors
		writeProblem(w, p)
		return
	}
	out := importResponseJSON{
		GroupID: id, Lines: rep.Lines, Valid: rep.Valid, Added: rep.Added, AlreadyMembers: rep.Valid - rep.Added,
		Rejected: rep.Rejected, Errors: rep.Errors, ErrorsTruncated: rep.Rejected > len(rep.Errors),
		MemberCount: rep.Group.MemberCount(), Version: rep.Group.Version(),
	}
	if out.Errors == nil {
		out.Errors = []LineError{}
	}
	writeJSON(w, http.StatusOK, out)
}

type memberPageJSON struct {
	Members    []string `json:"members"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

func (a *api) listMembers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var fields []domain.FieldError
	after := ""
	if c := q.Get("cursor"); c != "" {
		b, err := base64.RawURLEncoding.DecodeString(c)
		if err != nil || domain.MemberIDProblem(string(b)) != "" {
			fields = append(fields, domain.FieldError{Field: "cursor", Problem: "is not a cursor this API returned"})
		}
		after = string(b)
	}
	limit := DefaultMembersLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxMembersLimit {
			fields = append(fields, domain.FieldError{Field: "limit", Problem: fmt.Sprintf("must be 1 to %d", MaxMembersLimit)})
		}
		limit = n
	}
	if len(fields) > 0 {
		writeProblem(w, problemFor(&domain.ValidationError{Fields: fields}))
		return
	}
	page, err := a.svc.Members(r.Context(), domain.GroupID(chi.URLParam(r, "id")), after, limit)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	out := memberPageJSON{Members: page.Members}
	if out.Members == nil {
		out.Members = []string{}
	}
	if page.Next != "" {
		out.NextCursor = base64.RawURLEncoding.EncodeToString([]byte(page.Next))
	}
	writeJSON(w, http.StatusOK, out)
}

type batchJSON struct {
	ID             domain.BatchID     `json:"id"`
	Status         domain.BatchStatus `json:"status"`
	GroupID        domain.GroupID     `json:"group_id,omitempty"`
	GroupVersion   int                `json:"group_version,omitempty"`
	Size           int                `json:"size"`
	RequestedBy    string             `json:"requested_by"`
	RequestedAt    time.Time          `json:"requested_at"`
	ApprovalReason string             `json:"approval_reason,omitempty"`
	Decision       *decisionJSON      `json:"decision,omitempty"`
	Progress       progressJSON       `json:"progress"`
	CompletedAt    *time.Time         `json:"completed_at,omitempty"`
	URL            string             `json:"url"`
}

type decisionJSON struct {
	Outcome string    `json:"outcome"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

type progressJSON struct {
	Done    int     `json:"done"`
	Failed  int     `json:"failed"`
	Total   int     `json:"total"`
	Percent float64 `json:"percent"`
}

func batchURL(id domain.BatchID) string { return "/v1/batches/" + string(id) }

func toBatchJSON(b domain.Batch) batchJSON {
	gid, gv := b.Group()
	done, failed := b.Progress()
	out := batchJSON{
		ID: b.ID(), Status: b.Status(), GroupID: gid, GroupVersion: gv, Size: b.Size(),
		RequestedBy: b.RequestedBy(), RequestedAt: b.RequestedAt(), ApprovalReason: b.ApprovalReason(),
		Progress: progressJSON{Done: done, Failed: failed, Total: b.Size()}, URL: batchURL(b.ID()),
	}
	if b.Size() > 0 {
		out.Progress.Percent = float64(done*1000/b.Size()) / 10
	}
	if actor, reason, at := b.Decision(); actor != "" {
		outcome := "approved"
		if b.Status() == domain.BatchStatusRejected {
			outcome = "rejected"
		}
		out.Decision = &decisionJSON{Outcome: outcome, Actor: actor, Reason: reason, At: at}
	}
	if at := b.CompletedAt(); !at.IsZero() {
		out.CompletedAt = &at
	}
	return out
}

// send answers 202: the batch is recorded, the notifications follow from
// the fan-out. A repeat with the same Idempotency-Key answers 200 with the
// original batch.
func (a *api) send(w http.ResponseWriter, r *http.Request) {
	var req domain.NotificationRequest
	if err := a.decodeBody(w, r, &req, false); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.SendToGroup(r.Context(), a.origin(r), domain.GroupID(chi.URLParam(r, "id")), req, r.Header.Get("Idempotency-Key"))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Location", batchURL(res.Batch.ID()))
	status := http.StatusAccepted
	if !res.Changed {
		status = http.StatusOK
	}
	writeJSON(w, status, toBatchJSON(res.Batch))
}

func (a *api) batch(w http.ResponseWriter, r *http.Request) {
	b, err := a.svc.Batch(r.Context(), domain.BatchID(chi.URLParam(r, "id")))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, toBatchJSON(b))
}

type decisionRequestJSON struct {
	Reason string `json:"reason"`
}

func (a *api) approve(w http.ResponseWriter, r *http.Request) { a.decide(w, r, true) }

func (a *api) reject(w http.ResponseWriter, r *http.Request) { a.decide(w, r, false) }

func (a *api) decide(w http.ResponseWriter, r *http.Request, approve bool) {
	var req decisionRequestJSON
	if err := a.decodeBody(w, r, &req, true); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	id, admin := domain.BatchID(chi.URLParam(r, "id")), a.isAdmin(r)
	decide := a.svc.Reject
	if approve {
		decide = a.svc.Approve
	}
	res, err := decide(r.Context(), a.origin(r), id, admin, req.Reason)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeJSON(w, http.StatusOK, toBatchJSON(res.Batch))
}

// decodeBody checks the content type, reads at most MaxBodyBytes and
// decodes exactly one JSON value into v, refusing unknown fields. With
// optional, an empty body leaves v as it is.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	return jsonbody.Read(w, r, v, jsonbody.Options{MaxBytes: a.opt.MaxBodyBytes, Optional: optional, UseNumber: true})
}
