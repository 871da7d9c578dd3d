package recipients

import (
	"bytes"
	"encoding/json"
	"fmt"
	"herald/commands/jsonbody"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"herald/domain"
)

// DefaultMaxBodyBytes bounds a request body when Options leave it zero.
const DefaultMaxBodyBytes = 64 << 10

// Options configure the recipient endpoints. The unsubscribe secret and
// public URL are in Deps, not here: adapters build links through
// Service.UnsubscribeURL without any HTTP wiring.
type Options struct {
	// Actor names the caller of a request, normally the authenticated API
	// key's name. It is recorded on every event. Nil, or an empty name,
	// means "anonymous".
	Actor func(*http.Request) string
	// Middleware wraps every route but /v1/unsubscribe, outermost first;
	// authentication and scope checks belong here. The unsubscribe route
	// is reached from a link in a message, with no API key: its token is
	// its authorization.
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

// NewHTTP returns the recipient endpoints:
//
//	PUT  /v1/recipients/{id}                        set the profile: 201 when the recipient is new, else 200
//	GET  /v1/recipients/{id}                        profile, push subscriptions (endpoints only), preference revision
//	PUT  /v1/recipients/{id}/preferences            replace the preferences: 200
//	GET  /v1/recipients/{id}/preferences            the preferences (defaults, revision 0, for an unknown recipient)
//	POST /v1/recipients/{id}/webpush-subscriptions  add a browser's PushSubscription JSON: 201, or 200 for a repeat
//	GET  /v1/unsubscribe?token=...                  no API key: a confirmation page (HTML) or the claim (JSON)
//	POST /v1/unsubscribe?token=...                  no API key: record the opt-out (RFC 8058 one-click too)
//
// The preferences answer with an ETag naming their revision ("3"); a PUT
// with If-Match: "3" is refused with a 409 version-conflict problem when
// they changed since (an unsubscribe in between is not overwritten). GET
// on the unsubscribe link changes nothing, because mail scanners fetch
// links in messages; only the POST, from the page's button or the mail
// client's one-click, unsubscribes. Every error is
// application/problem+json with a type from ProblemTypes, and a refused
// request appends nothing. Writes are idempotent by content, so an
// Idempotency-Key header is accepted and needs no bookkeeping. It panics
// on a nil svc: a wiring bug.
func NewHTTP(svc *Service, opt Options) http.Handler {
	if svc == nil {
		panic("recipients.NewHTTP: nil Service")
	}
	opt.setDefaults()
	a := &api{svc: svc, opt: opt}
	r := chi.NewRouter()
	r.Use(recoverProblem)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errRouteNotFound)) })
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) { writeProblem(w, problemFor(errMethodNotAllowed)) })
	r.Get("/v1/unsubscribe", a.unsubscribePage)
	r.Post("/v1/unsubscribe", a.unsubscribe)
	r.Group(func(g chi.Router) {
		g.Use(opt.Middleware...)
		g.Put("/v1/recipients/{id}", a.putProfile)
		g.Get("/v1/recipients/{id}", a.getRecipient)
		g.Put("/v1/recipients/{id}/preferences", a.putPreferences)
		g.Get("/v1/recipients/{id}/preferences", a.getPreferences)
		g.Post("/v1/recipients/{id}/webpush-subscriptions", a.addWebPush)
	})
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

// pathID reads {id}; a malformed one is a recipient that cannot exist.
func pathID(r *http.Request) (domain.RecipientID, error) {
	id := domain.RecipientID(chi.URLParam(r, "id"))
	if !id.Valid() {
		return "", fmt.Errorf("recipient %q: %w", id, domain.ErrRecipientNotFound)
	}
	return id, nil
}

// JSON shapes of the API.

type recipientJSON struct {
	ID        domain.RecipientID `json:"id"`
	Version   int                `json:"version"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
	domain.RecipientDetails
	PreferencesRevision  int                `json:"preferences_revision"`
	PreferencesURL       string             `json:"preferences_url"`
	WebPushSubscriptions []subscriptionJSON `json:"webpush_subscriptions"`
}

// subscriptionJSON shows a subscription by its endpoint only: the keys
// are the browser's secrets and nobody reading the API needs them.
type subscriptionJSON struct {
	Endpoint string `json:"endpoint"`
}

type preferencesJSON struct {
	RecipientID domain.RecipientID `json:"recipient_id"`
	Revision    int                `json:"revision"`
	UpdatedAt   *time.Time         `json:"updated_at,omitempty"`
	domain.Preferences
}

// pushSubscriptionJSON is the browser's PushSubscription.toJSON() shape.
type pushSubscriptionJSON struct {
	Endpoint       string          `json:"endpoint"`
	ExpirationTime json.RawMessage `json:"expirationTime"`
	Keys           struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

func recipientURL(id domain.RecipientID) string { return "/v1/recipients/" + string(id) }

func toRecipientJSON(r domain.RecipientProfile) recipientJSON {
	out := recipientJSON{
		ID: r.ID(), Version: r.Version(), CreatedAt: r.CreatedAt(), UpdatedAt: r.UpdatedAt(),
		RecipientDetails: r.Details(), PreferencesRevision: r.PreferencesRevision(),
		PreferencesURL: recipientURL(r.ID()) + "/preferences", WebPushSubscriptions: []subscriptionJSON{},
	}
	for _, s := range r.WebPushSubscriptions() {
		out.WebPushSubscriptions = append(out.WebPushSubscriptions, subscriptionJSON{Endpoint: s.Endpoint})
	}
	return out
}

func writeRecipient(w http.ResponseWriter, status int, r domain.RecipientProfile) {
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(r.Version())))
	writeJSON(w, status, toRecipientJSON(r))
}

func writePreferences(w http.ResponseWriter, id domain.RecipientID, r domain.RecipientProfile) {
	out := preferencesJSON{RecipientID: id, Revision: r.PreferencesRevision(), Preferences: r.Preferences()}
	if at := r.PreferencesUpdatedAt(); !at.IsZero() {
		out.UpdatedAt = &at
	}
	w.Header().Set("ETag", strconv.Quote(strconv.Itoa(r.PreferencesRevision())))
	writeJSON(w, http.StatusOK, out)
}

func (a *api) putProfile(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var d domain.RecipientDetails
	if err := a.decodeBody(w, r, &d); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.SetProfile.Handle(r.Context(), SetProfile{Origin: a.origin(r), ID: id, Profile: d})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		w.Header().Set("Location", recipientURL(id))
	}
	writeRecipient(w, status, res.Recipient)
}

func (a *api) getRecipient(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	rec, err := a.svc.Get(r.Context(), id)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writeRecipient(w, http.StatusOK, rec)
}

func (a *api) putPreferences(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	check, rev, err := parseIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var p domain.Preferences
	if err := a.decodeBody(w, r, &p); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	res, err := a.svc.SetPreferences.Handle(r.Context(), SetPreferences{
		Origin: a.origin(r), ID: id, Preferences: p, CheckRevision: check, IfRevision: rev,
	})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writePreferences(w, id, res.Recipient)
}

func (a *api) getPreferences(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	rec, _, err := a.svc.Profile(r.Context(), string(id))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	writePreferences(w, id, rec)
}

// parseIfMatch reads the preference revision an update was based on: an
// ETag this API returned ("3", also accepted weak or unquoted; "0" for a
// recipient without preferences), or none. "*" asks for no check.
func parseIfMatch(h string) (bool, int, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return false, 0, nil
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimPrefix(h, "W/"), `"`))
	if err != nil || n < 0 {
		return false, 0, &domain.ValidationError{Fields: []domain.FieldError{{
			Field: "If-Match", Problem: `must be an ETag of these preferences, like "3"`,
		}}}
	}
	return true, n, nil
}

func (a *api) addWebPush(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	var body pushSubscriptionJSON
	if err := a.decodeBody(w, r, &body); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	sub := domain.WebPushSubscription{Endpoint: body.Endpoint, P256dh: body.Keys.P256dh, Auth: body.Keys.Auth}
	res, err := a.svc.AddWebPush.Handle(r.Context(), AddWebPush{Origin: a.origin(r), ID: id, Subscription: sub})
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	status := http.StatusOK
	if res.Changed {
		status = http.StatusCreated
	}
	writeRecipient(w, status, res.Recipient)
}

type unsubscribeJSON struct {
	RecipientID  domain.RecipientID `json:"recipient_id"`
	Channel      domain.Channel     `json:"channel,omitempty"`
	Category     string             `json:"category,omitempty"`
	ExpiresAt    time.Time          `json:"expires_at"`
	Unsubscribed bool               `json:"unsubscribed"`
}

var unsubscribeHTML = template.Must(template.New("unsubscribe").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>Unsubscribe</title></head>
<body>
{{if .Done}}<p>You will no longer receive {{.What}}.</p>
{{else}}<p>Stop receiving {{.What}}?</p>
<form method="post"><button type="submit">Unsubscribe</button></form>
{{end}}</body></html>
`))

// describe says in words what a claim unsubscribes from.
func describe(c UnsubscribeClaim) string {
	switch {
	case c.Channel == "":
		return c.Category + " notifications"
	case c.Category == "":
		return "notifications by " + string(c.Channel)
	}
	return c.Category + " notifications by " + string(c.Channel)
}

// wantsHTML reports whether the caller is a browser (a person who clicked
// the link) rather than a program.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (a *api) writeUnsubscribe(w http.ResponseWriter, r *http.Request, c UnsubscribeClaim, done bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if !wantsHTML(r) {
		writeJSON(w, http.StatusOK, unsubscribeJSON{
			RecipientID: c.Recipient, Channel: c.Channel, Category: c.Category, ExpiresAt: c.ExpiresAt, Unsubscribed: done,
		})
		return
	}
	var buf bytes.Buffer
	if err := unsubscribeHTML.Execute(&buf, struct {
		Done bool
		What string
	}{done, describe(c)}); err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func (a *api) unsubscribePage(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.VerifyUnsubscribeToken(r.URL.Query().Get("token"))
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	a.writeUnsubscribe(w, r, c, false)
}

// unsubscribe ignores the body: the one-click POST of RFC 8058 carries
// "List-Unsubscribe=One-Click", the page's form nothing, and the token in
// the URL says everything either way.
func (a *api) unsubscribe(w http.ResponseWriter, r *http.Request) {
	o := Origin{CorrelationID: headerID(r, "X-Correlation-ID"), CausationID: headerID(r, "X-Request-ID")}
	c, _, err := a.svc.UnsubscribeWithToken(r.Context(), r.URL.Query().Get("token"), o)
	if err != nil {
		writeProblem(w, problemFor(err))
		return
	}
	a.writeUnsubscribe(w, r, c, true)
}

// decodeBody checks the content type, reads at most MaxBodyBytes and
// decodes exactly one JSON value into v, refusing unknown fields.
func (a *api) decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	return jsonbody.Read(w, r, v, jsonbody.Options{MaxBytes: a.opt.MaxBodyBytes})
}
