package recipients_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"herald/commands/recipients"
	"herald/domain"
)

const profileBody = `{"email":"ada@example.com","phone":"+4915112345678","slack_webhook_url":"https://hooks.slack.com/services/T/B/X","locale":"de-DE","time_zone":"Europe/Berlin"}`

func TestProfileLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	res := e.do(http.MethodPut, "/v1/recipients/user-42", profileBody, "X-Test-Actor", "crm")
	if res.status != http.StatusCreated || res.header.Get("Location") != "/v1/recipients/user-42" || res.header.Get("ETag") != `"1"` {
		t.Fatalf("first put: %d %v %s", res.status, res.header, res.body)
	}
	var got struct {
		ID                   string `json:"id"`
		Version              int    `json:"version"`
		Email                string `json:"email"`
		Phone                string `json:"phone"`
		TimeZone             string `json:"time_zone"`
		PreferencesRevision  int    `json:"preferences_revision"`
		PreferencesURL       string `json:"preferences_url"`
		WebPushSubscriptions []struct {
			Endpoint string `json:"endpoint"`
			Auth     string `json:"auth"`
		} `json:"webpush_subscriptions"`
	}
	get := e.do(http.MethodGet, "/v1/recipients/user-42", "")
	get.decode(t, &got)
	if get.status != http.StatusOK || got.ID != "user-42" || got.Version != 1 || got.Email != "ada@example.com" ||
		got.Phone != "+4915112345678" || got.TimeZone != "Europe/Berlin" || got.PreferencesURL != "/v1/recipients/user-42/preferences" ||
		got.WebPushSubscriptions == nil {
		t.Errorf("get: %d %s", get.status, get.body)
	}
	if recs := e.events("user-42"); len(recs) != 1 || recs[0].Metadata.Actor != "crm" || recs[0].Type != domain.TypeRecipientProfileSet {
		t.Errorf("events %+v", recs)
	}

	// The same profile again changes nothing.
	if res := e.do(http.MethodPut, "/v1/recipients/user-42", profileBody); res.status != http.StatusOK || res.header.Get("ETag") != `"1"` {
		t.Errorf("repeat: %d %s", res.status, res.body)
	}

	// Every bad field is named; nothing is appended.
	bad := e.do(http.MethodPut, "/v1/recipients/user-42",
		`{"email":"nope","phone":"12345","webhook_url":"ftp://x","locale":"x","time_zone":"Atlantis/Capital"}`)
	p := bad.problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if want := []string{"email", "phone", "webhook_url", "locale", "time_zone"}; !slices.Equal(p.fields(), want) {
		t.Errorf("fields %v, want %v", p.fields(), want)
	}
	if n := len(e.events("user-42")); n != 1 {
		t.Errorf("%d events after refused writes", n)
	}

	// A changed profile is a new version; the service sees it at once.
	if res := e.do(http.MethodPut, "/v1/recipients/user-42", `{"email":"ada@new.example.com","time_zone":"UTC"}`); res.status != http.StatusOK {
		t.Fatalf("update: %d %s", res.status, res.body)
	}
	prof, version, err := e.svc.Profile(t.Context(), "user-42")
	if err != nil || version != 2 || prof.Details().Email != "ada@new.example.com" || prof.Details().Phone != "" {
		t.Errorf("Profile = %+v, %d, %v", prof.Details(), version, err)
	}

	e.do(http.MethodGet, "/v1/recipients/nobody", "").problem(t, http.StatusNotFound, "not-found")
	e.do(http.MethodGet, "/v1/recipients/-bad", "").problem(t, http.StatusNotFound, "not-found")
	e.do(http.MethodPut, "/v1/recipients/a%20b", profileBody).problem(t, http.StatusNotFound, "not-found")
}

func TestProfileForUnknownRecipientsIsZero(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, id := range []string{"nobody", "", "not a valid id"} {
		p, v, err := e.svc.Profile(t.Context(), id)
		if err != nil || v != 0 || p.Exists() {
			t.Errorf("Profile(%q) = %v, %d, %v", id, p.Exists(), v, err)
		}
		subs, err := e.svc.WebPushSubscriptions(t.Context(), id)
		if err != nil || len(subs) != 0 {
			t.Errorf("WebPushSubscriptions(%q) = %v, %v", id, subs, err)
		}
	}
}

func TestPreferences(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)

	// An unknown recipient has the defaults, at revision 0.
	res := e.do(http.MethodGet, "/v1/recipients/user-42/preferences", "")
	if res.status != http.StatusOK || res.header.Get("ETag") != `"0"` || !strings.Contains(string(res.body), `"revision":0`) {
		t.Fatalf("defaults: %d %v %s", res.status, res.header, res.body)
	}

	body := `{"opt_outs":[{"channel":"sms"}],"quiet_hours":{"start":"22:00","end":"07:00","days":["mon","tue"]},` +
		`"frequency_caps":[{"category":"promo","max":3,"window":"day"}],"critical_categories":["security"]}`
	res = e.do(http.MethodPut, "/v1/recipients/user-42/preferences", body, "If-Match", `"0"`)
	if res.status != http.StatusOK || res.header.Get("ETag") != `"1"` {
		t.Fatalf("put: %d %s", res.status, res.body)
	}
	var prefs struct {
		Revision   int                   `json:"revision"`
		UpdatedAt  *time.Time            `json:"updated_at"`
		OptOuts    []domain.OptOut       `json:"opt_outs"`
		QuietHours *domain.QuietHours    `json:"quiet_hours"`
		Caps       []domain.FrequencyCap `json:"frequency_caps"`
		Critical   []string              `json:"critical_categories"`
	}
	e.do(http.MethodGet, "/v1/recipients/user-42/preferences", "").decode(t, &prefs)
	if prefs.Revision != 1 || prefs.UpdatedAt == nil || len(prefs.OptOuts) != 1 || prefs.QuietHours == nil ||
		prefs.QuietHours.End != "07:00" || len(prefs.Caps) != 1 || !slices.Equal(prefs.Critical, []string{"security"}) {
		t.Errorf("get: %+v", prefs)
	}

	// An unsubscribe lands in between: an edit based on revision 1 would
	// undo it, so it is refused.
	link := e.svc.UnsubscribeURL("user-42", "", "marketing")
	if res := e.raw(http.MethodPost, tokenPath(t, link), ""); res.status != http.StatusOK {
		t.Fatalf("unsubscribe: %d %s", res.status, res.body)
	}
	e.do(http.MethodPut, "/v1/recipients/user-42/preferences", `{}`, "If-Match", `"1"`).problem(t, http.StatusConflict, "version-conflict")
	e.do(http.MethodPut, "/v1/recipients/user-42/preferences", `{}`, "If-Match", `soon`).problem(t, http.StatusUnprocessableEntity, "validation-failed")

	p := e.do(http.MethodPut, "/v1/recipients/user-42/preferences",
		`{"opt_outs":[{"channel":"fax"}],"quiet_hours":{"start":"25:00","end":"07:00"},"frequency_caps":[{"category":"promo","max":0,"window":"fortnight"}]}`).
		problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if want := []string{"opt_outs[0].channel", "quiet_hours.start", "frequency_caps[0].max", "frequency_caps[0].window"}; !slices.Equal(p.fields(), want) {
		t.Errorf("fields %v, want %v", p.fields(), want)
	}

	e.do(http.MethodGet, "/v1/recipients/user-42/preferences", "").decode(t, &prefs)
	if prefs.Revision != 2 || len(prefs.OptOuts) != 2 || prefs.OptOuts[1] != (domain.OptOut{Category: "marketing"}) {
		t.Errorf("after unsubscribe: %+v", prefs)
	}
	// Without If-Match the client takes the risk; the replacement is whole.
	if res := e.do(http.MethodPut, "/v1/recipients/user-42/preferences", `{}`); res.status != http.StatusOK || res.header.Get("ETag") != `"3"` {
		t.Errorf("unconditional put: %d %s", res.status, res.body)
	}
	want := []string{domain.TypeRecipientPreferencesSet, domain.TypeRecipientUnsubscribed, domain.TypeRecipientPreferencesSet}
	if got := types(e.events("user-42")); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

func TestBodyProblems(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.do(http.MethodPut, "/v1/recipients/user-42", profileBody, "Content-Type", "text/plain").problem(t, http.StatusUnsupportedMediaType, "unsupported-media-type")
	e.do(http.MethodPut, "/v1/recipients/user-42", `{"email":`).problem(t, http.StatusBadRequest, "malformed-json")
	e.do(http.MethodPut, "/v1/recipients/user-42", `{"email":"a@b"} {}`).problem(t, http.StatusBadRequest, "malformed-json")
	e.do(http.MethodPut, "/v1/recipients/user-42", ``).problem(t, http.StatusBadRequest, "malformed-json")
	p := e.do(http.MethodPut, "/v1/recipients/user-42", `{"emial":"a@b"}`).problem(t, http.StatusBadRequest, "unknown-field")
	if !slices.Equal(p.fields(), []string{"emial"}) {
		t.Errorf("fields %v", p.fields())
	}
	p = e.do(http.MethodPut, "/v1/recipients/user-42/preferences", `{"frequency_caps":[{"category":"promo","max":"three","window":"day"}]}`).
		problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Field, "max") {
		t.Errorf("type error fields %+v", p.Errors)
	}
	huge := `{"email":"` + strings.Repeat("a", recipients.DefaultMaxBodyBytes) + `@b"}`
	e.do(http.MethodPut, "/v1/recipients/user-42", huge).problem(t, http.StatusRequestEntityTooLarge, "body-too-large")
	e.do(http.MethodDelete, "/v1/recipients/user-42", "").problem(t, http.StatusMethodNotAllowed, "method-not-allowed")
	e.do(http.MethodGet, "/v1/recipientz", "").problem(t, http.StatusNotFound, "not-found")
	if n := len(e.events("user-42")); n != 0 {
		t.Errorf("%d events after refused requests", n)
	}
	// The API key middleware guards the recipient routes.
	if res := e.raw(http.MethodGet, "/v1/recipients/user-42", ""); res.status != http.StatusUnauthorized {
		t.Errorf("without a key: %d", res.status)
	}
}

// tokenPath turns an unsubscribe URL into the path and query to request
// from the test server, checking it starts with the public URL.
func tokenPath(t *testing.T, link string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(link, "https://herald.example.com/v1/unsubscribe?token=")
	if !ok || rest == "" {
		t.Fatalf("link %q", link)
	}
	return "/v1/unsubscribe?token=" + rest
}

func TestUnsubscribeLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	link := e.svc.UnsubscribeURL("user-42", "email", "marketing")
	path := tokenPath(t, link)

	// A GET (a mail scanner, or the person before confirming) changes
	// nothing and needs no API key.
	page := e.raw(http.MethodGet, path, "", "Accept", "text/html,application/xhtml+xml")
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page.body), `<form method="post">`) || !strings.Contains(string(page.body), "marketing notifications by email") {
		t.Fatalf("page: %d %v %s", page.status, page.header, page.body)
	}
	var claim struct {
		RecipientID  string    `json:"recipient_id"`
		Channel      string    `json:"channel"`
		Category     string    `json:"category"`
		ExpiresAt    time.Time `json:"expires_at"`
		Unsubscribed bool      `json:"unsubscribed"`
	}
	res := e.raw(http.MethodGet, path, "")
	res.decode(t, &claim)
	if claim.RecipientID != "user-42" || claim.Channel != "email" || claim.Category != "marketing" || claim.Unsubscribed ||
		!claim.ExpiresAt.Equal(t0.Add(recipients.DefaultUnsubscribeTTL)) {
		t.Errorf("claim %+v", claim)
	}
	if n := len(e.events("user-42")); n != 0 {
		t.Fatalf("GET appended %d events", n)
	}

	// The one-click POST unsubscribes, attributed to the recipient.
	res = e.raw(http.MethodPost, path, "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded")
	res.decode(t, &claim)
	if res.status != http.StatusOK || !claim.Unsubscribed {
		t.Fatalf("post: %d %s", res.status, res.body)
	}
	recs := e.events("user-42")
	if len(recs) != 1 || recs[0].Type != domain.TypeRecipientUnsubscribed || recs[0].Metadata.Actor != "recipient:user-42" {
		t.Fatalf("events %+v", recs)
	}
	ev, err := domain.UnmarshalEvent(recs[0].Type, recs[0].Data)
	if u, ok := ev.(domain.RecipientUnsubscribed); err != nil || !ok || u.Channel != "email" || u.Category != "marketing" || u.Via != "token" {
		t.Errorf("event %#v, %v", ev, err)
	}
	// Clicking again is fine and records nothing more.
	if res := e.raw(http.MethodPost, path, "", "Accept", "text/html"); res.status != http.StatusOK || !strings.Contains(string(res.body), "no longer receive") {
		t.Errorf("again: %d %s", res.status, res.body)
	}
	if n := len(e.events("user-42")); n != 1 {
		t.Errorf("%d events after a repeated click", n)
	}

	// The planning policy now suppresses email for marketing.
	prof, _, err := e.svc.Profile(t.Context(), "user-42")
	if err != nil {
		t.Fatal(err)
	}
	req := domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-42", Email: "ada@example.com"}, Category: "marketing"}
	d := domain.PlanForRecipient(req, prof, e.clock.now(), nil)
	if len(d.Suppressions) != 1 || d.Suppressions[0].Reason != "opted out of email/marketing" || d.Applied.PreferencesRevision != 1 {
		t.Errorf("decision %+v", d)
	}
}

func TestUnsubscribeTokenProblems(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(d *recipients.Deps) { d.UnsubscribeTTL = time.Hour })
	path := tokenPath(t, e.svc.UnsubscribeURL("user-42", "", "marketing"))
	token, _ := url.QueryUnescape(strings.TrimPrefix(path, "/v1/unsubscribe?token="))

	other, err := recipients.NewService(recipients.Deps{
		Store: e.store, Clock: e.clock.now, NewID: func() string { return "x" },
		UnsubscribeSecret: []byte("another secret of at least thirty-two bytes"),
	})
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.TrimPrefix(other.UnsubscribeURL("user-42", "", "marketing"), "/v1/unsubscribe?token=")
	payload, mac, _ := strings.Cut(token, ".")
	otherPayload, _, _ := strings.Cut(forged, ".")
	for name, bad := range map[string]string{
		"empty":               "",
		"garbage":             "not-a-token",
		"another secret":      forged,
		"swapped payload":     otherPayload + "." + mac,
		"truncated signature": payload + "." + mac[:10],
	} {
		t.Run(name, func(t *testing.T) {
			q := "/v1/unsubscribe?token=" + url.QueryEscape(bad)
			e.raw(http.MethodPost, q, "").problem(t, http.StatusBadRequest, "invalid-token")
			e.raw(http.MethodGet, q, "").problem(t, http.StatusBadRequest, "invalid-token")
		})
	}
	// A claim for another recipient or category cannot be made by editing
	// the payload: the signature covers it.
	tampered := strings.Replace(token, payload, payload[:len(payload)-2]+"AA", 1)
	e.raw(http.MethodPost, "/v1/unsubscribe?token="+url.QueryEscape(tampered), "").problem(t, http.StatusBadRequest, "invalid-token")

	e.clock.advance(time.Hour)
	e.raw(http.MethodPost, path, "").problem(t, http.StatusGone, "token-expired")
	if n := len(e.events("user-42")); n != 0 {
		t.Errorf("%d events after refused tokens", n)
	}

	// Links off: no URL, and the route says not found.
	off := newEnv(t, func(d *recipients.Deps) { d.UnsubscribeSecret = nil })
	if u := off.svc.UnsubscribeURL("user-42", "", "marketing"); u != "" {
		t.Errorf("URL without a secret: %q", u)
	}
	off.raw(http.MethodPost, path, "").problem(t, http.StatusNotFound, "not-found")

	for _, args := range [][3]string{{"bad id", "", "x"}, {"user-42", "fax", ""}, {"user-42", "", ""}, {"user-42", "", "Bad Category"}} {
		if u := e.svc.UnsubscribeURL(args[0], args[1], args[2]); u != "" {
			t.Errorf("UnsubscribeURL%v = %q, want none", args, u)
		}
	}
	if _, err := recipients.NewService(recipients.Deps{Store: e.store, Clock: e.clock.now, NewID: func() string { return "id" }, UnsubscribeSecret: []byte("short")}); err == nil {
		t.Error("a short secret was accepted")
	}
	if _, err := recipients.NewService(recipients.Deps{}); err == nil || !strings.Contains(err.Error(), "nil Store") || !strings.Contains(err.Error(), "nil Clock") {
		t.Errorf("missing deps: %v", err)
	}
}

func TestWebPushSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	const endpoint = "https://push.example.com/send/abc"
	res := e.do(http.MethodPost, "/v1/recipients/user-42/webpush-subscriptions", pushBody(endpoint))
	if res.status != http.StatusCreated || !strings.Contains(string(res.body), endpoint) || strings.Contains(string(res.body), pushAuth) {
		t.Fatalf("add: %d %s", res.status, res.body)
	}
	if res := e.do(http.MethodPost, "/v1/recipients/user-42/webpush-subscriptions", pushBody(endpoint)); res.status != http.StatusOK {
		t.Errorf("repeat: %d %s", res.status, res.body)
	}
	p := e.do(http.MethodPost, "/v1/recipients/user-42/webpush-subscriptions",
		`{"endpoint":"http://push.example.com/x","keys":{"p256dh":"AAAA","auth":"?"}}`).problem(t, http.StatusUnprocessableEntity, "validation-failed")
	if want := []string{"endpoint", "keys.p256dh", "keys.auth"}; !slices.Equal(p.fields(), want) {
		t.Errorf("fields %v, want %v", p.fields(), want)
	}

	subs, err := e.svc.WebPushSubscriptions(t.Context(), "user-42")
	if err != nil || len(subs) != 1 || subs[0] != (domain.WebPushSubscription{Endpoint: endpoint, P256dh: pushKey, Auth: pushAuth}) {
		t.Fatalf("subscriptions %+v, %v", subs, err)
	}
	// Subscribed, an empty channel list now includes web push.
	prof, _, _ := e.svc.Profile(t.Context(), "user-42")
	d := domain.PlanForRecipient(domain.NotificationRequest{Recipient: domain.Recipient{ID: "user-42"}}, prof, t0, nil)
	if len(d.Plans) != 2 || d.Plans[0].Channel != domain.ChannelWebPush {
		t.Errorf("plans %+v", d.Plans)
	}

	if err := e.svc.MarkSubscriptionExpired(t.Context(), "user-42", endpoint); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.MarkSubscriptionExpired(t.Context(), "user-42", endpoint); err != nil {
		t.Errorf("second expiry: %v", err)
	}
	if err := e.svc.MarkSubscriptionExpired(t.Context(), "user-42", "https://push.example.com/other"); !errors.Is(err, domain.ErrWebPushSubscriptionNotFound) {
		t.Errorf("unknown endpoint: %v", err)
	}
	if err := e.svc.MarkSubscriptionExpired(t.Context(), "nobody", endpoint); !errors.Is(err, domain.ErrRecipientNotFound) {
		t.Errorf("unknown recipient: %v", err)
	}
	if subs, _ := e.svc.WebPushSubscriptions(t.Context(), "user-42"); len(subs) != 0 {
		t.Errorf("after expiry: %+v", subs)
	}
	want := []string{domain.TypeWebPushSubscriptionAdded, domain.TypeWebPushSubscriptionExpired}
	if got := types(e.events("user-42")); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
}

// Concurrent writers to one recipient all land: each conflict reloads and
// decides again.
func TestConcurrentUnsubscribesAllLand(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	categories := []string{"a", "b", "c", "d"}
	var wg sync.WaitGroup
	errs := make([]error, len(categories))
	for i, c := range categories {
		wg.Go(func() {
			_, _, errs[i] = e.svc.UnsubscribeWithToken(context.WithoutCancel(t.Context()), tokenOf(t, e.svc.UnsubscribeURL("user-42", "", c)), recipients.Origin{})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	prof, version, err := e.svc.Profile(t.Context(), "user-42")
	if err != nil || version != len(categories) || prof.PreferencesRevision() != len(categories) || len(prof.Preferences().OptOuts) != len(categories) {
		t.Errorf("version %d revision %d opt-outs %+v, %v", version, prof.PreferencesRevision(), prof.Preferences().OptOuts, err)
	}
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	tok, err := url.QueryUnescape(strings.TrimPrefix(tokenPath(t, link), "/v1/unsubscribe?token="))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
