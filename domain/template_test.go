package domain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"herald/domain"
)

// Template fixtures. Names start with tpl so they never meet the
// notification fixtures of this package.

const tplID = domain.TemplateID("otp")

// tplContent is a valid two-locale template using every kind of part.
func tplContent() domain.TemplateContent {
	return domain.TemplateContent{
		Name:          "One-time code",
		DefaultLocale: "en",
		Variables: []domain.TemplateVar{
			{Name: "code", Type: domain.VarString, Required: true},
			{Name: "name", Type: domain.VarString},
			{Name: "minutes", Type: domain.VarNumber, Required: true},
			{Name: "urgent", Type: domain.VarBoolean},
			{Name: "expires", Type: domain.VarDate},
		},
		Locales: map[string]domain.LocaleContent{
			"en": {
				Email: &domain.EmailPart{
					Subject: "Your code {{.code}}",
					Text:    "Hello {{default \"there\" .name}}, your code is {{.code}}.",
					HTML:    `<p>Hello {{default "there" .name}}</p><p><a href="https://x.example/?c={{.code}}">{{.code}}</a></p>`,
				},
				SMS:     &domain.SMSPart{Text: "Code {{.code}}, valid {{.minutes}} min{{if .urgent}}!{{end}}"},
				Chat:    &domain.ChatPart{Markdown: "*Code* `{{.code}}`"},
				Push:    &domain.PushPart{Title: "Code", Body: "{{.code}}"},
				Webhook: &domain.WebhookPart{JSON: `{"code":{{json .code}},"minutes":{{json .minutes}},"urgent":{{json .urgent}}}`},
				InApp:   &domain.InAppPart{Title: "Code", Body: "Use {{.code}}{{with .expires}} before {{$.expires | formatDate \"2 Jan 2006\"}}{{end}}"},
			},
			"de": {
				SMS: &domain.SMSPart{Text: "Code {{.code}}, gültig {{.minutes}} Min."},
			},
		},
	}
}

func tplContentV2() domain.TemplateContent {
	c := tplContent()
	en := c.Locales["en"]
	en.SMS = &domain.SMSPart{Text: "v2 code {{.code}} ({{.minutes}})"}
	c.Locales["en"] = en
	return c
}

func tplCreated() domain.Event {
	return domain.TemplateCreated{TemplateID: tplID, Actor: "ops", CreatedAt: t0}
}

func tplPublished(n int, c domain.TemplateContent) domain.Event {
	return domain.TemplateVersionPublished{TemplateID: tplID, Version: n, Content: c, Actor: "ops", PublishedAt: at(n - 1)}
}

func tplArchived() domain.Event {
	return domain.TemplateArchived{TemplateID: tplID, Reason: "replaced", Actor: "ops", ArchivedAt: at(30)}
}

func tplHCreated() []domain.Event { return evs(tplCreated(), tplPublished(1, tplContent())) }

func tplHUpdated() []domain.Event {
	return evs(tplCreated(), tplPublished(1, tplContent()), tplPublished(2, tplContentV2()))
}

func tplHArchived() []domain.Event { return append(tplHUpdated(), tplArchived()) }

func tplReplay(events []domain.Event) domain.Template {
	var t domain.Template
	for _, e := range events {
		t = domain.EvolveTemplate(t, e)
	}
	return t
}

// tplVersion returns version n of a template built from events.
func tplVersion(t *testing.T, events []domain.Event, n int) domain.TemplateVersion {
	t.Helper()
	v, ok := tplReplay(events).VersionAt(n)
	if !ok {
		t.Fatalf("no version %d", n)
	}
	return v
}

type tplDecideCase struct {
	name  string
	given []domain.Event
	when  domain.TemplateCommand
	then  []domain.Event // nil with a nil err: an idempotent no-op
	err   error
}

func tplDecideCases() []tplDecideCase {
	invalid := tplContent()
	invalid.DefaultLocale = "fr"
	return []tplDecideCase{
		{
			name: "create publishes version 1",
			when: domain.CreateTemplate{ID: tplID, Content: tplContent(), Actor: "ops", Now: t0},
			then: evs(tplCreated(), domain.TemplateVersionPublished{TemplateID: tplID, Version: 1, Content: tplContent(), Actor: "ops", PublishedAt: t0}),
		},
		{
			name:  "repeated create with the same content is a no-op",
			given: tplHCreated(),
			when:  domain.CreateTemplate{ID: tplID, Content: tplContent(), Actor: "ops", Now: at(9)},
		},
		{
			name:  "create over an existing template with other content",
			given: tplHCreated(),
			when:  domain.CreateTemplate{ID: tplID, Content: tplContentV2(), Now: at(9)},
			err:   domain.ErrTemplateExists,
		},
		{
			name:  "repeating the first create after an update is refused",
			given: tplHUpdated(),
			when:  domain.CreateTemplate{ID: tplID, Content: tplContent(), Now: at(9)},
			err:   domain.ErrTemplateExists,
		},
		{
			name: "create with an invalid id",
			when: domain.CreateTemplate{ID: "no spaces", Content: tplContent(), Now: t0},
			err:  domain.ErrInvalidRequest,
		},
		{
			name: "create with invalid content",
			when: domain.CreateTemplate{ID: tplID, Content: invalid, Now: t0},
			err:  domain.ErrInvalidRequest,
		},
		{
			name:  "publish adds the next version",
			given: tplHCreated(),
			when:  domain.PublishTemplateVersion{Content: tplContentV2(), Actor: "ops", Now: at(1)},
			then:  evs(tplPublished(2, tplContentV2())),
		},
		{
			name:  "publish based on the latest version",
			given: tplHCreated(),
			when:  domain.PublishTemplateVersion{Content: tplContentV2(), BasedOn: 1, Actor: "ops", Now: at(1)},
			then:  evs(tplPublished(2, tplContentV2())),
		},
		{
			name:  "publish based on a stale version",
			given: tplHUpdated(),
			when:  domain.PublishTemplateVersion{Content: tplContent(), BasedOn: 1, Now: at(5)},
			err:   domain.ErrTemplateVersionMismatch,
		},
		{
			name:  "publishing the latest content again is a no-op",
			given: tplHUpdated(),
			when:  domain.PublishTemplateVersion{Content: tplContentV2(), BasedOn: 1, Now: at(5)},
		},
		{
			name:  "publishing older content makes it the next version",
			given: tplHUpdated(),
			when:  domain.PublishTemplateVersion{Content: tplContent(), Actor: "ops", Now: at(2)},
			then:  evs(tplPublished(3, tplContent())),
		},
		{
			name: "publish to a missing template",
			when: domain.PublishTemplateVersion{Content: tplContent(), Now: t0},
			err:  domain.ErrTemplateNotFound,
		},
		{
			name:  "publish to an archived template",
			given: tplHArchived(),
			when:  domain.PublishTemplateVersion{Content: tplContent(), Now: at(40)},
			err:   domain.ErrTemplateArchived,
		},
		{
			name:  "publish invalid content",
			given: tplHCreated(),
			when:  domain.PublishTemplateVersion{Content: invalid, Now: at(1)},
			err:   domain.ErrInvalidRequest,
		},
		{
			name:  "publish with a negative base version",
			given: tplHCreated(),
			when:  domain.PublishTemplateVersion{Content: tplContentV2(), BasedOn: -1, Now: at(1)},
			err:   domain.ErrInvalidCommand,
		},
		{
			name:  "archive",
			given: tplHUpdated(),
			when:  domain.ArchiveTemplate{Reason: "replaced", Actor: "ops", Now: at(30)},
			then:  evs(tplArchived()),
		},
		{
			name:  "archiving again is a no-op",
			given: tplHArchived(),
			when:  domain.ArchiveTemplate{Now: at(31)},
		},
		{
			name: "archive a missing template",
			when: domain.ArchiveTemplate{Now: t0},
			err:  domain.ErrTemplateNotFound,
		},
		{
			name:  "archive with an overlong reason",
			given: tplHCreated(),
			when:  domain.ArchiveTemplate{Reason: strings.Repeat("x", domain.MaxTemplateArchiveNote+1), Now: at(1)},
			err:   domain.ErrInvalidRequest,
		},
		{
			name:  "nil command",
			given: tplHCreated(),
			err:   domain.ErrInvalidCommand,
		},
	}
}

func TestDecideTemplate(t *testing.T) {
	t.Parallel()
	for _, tc := range tplDecideCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			state := tplReplay(tc.given)
			got, err := domain.DecideTemplate(state, tc.when)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error = %v, want %v", err, tc.err)
				}
				if got != nil {
					t.Errorf("events %#v alongside an error", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tc.then) {
				t.Fatalf("events:\n got %#v\nwant %#v", got, tc.then)
			}
			next := state
			for _, e := range got {
				next = domain.EvolveTemplate(next, e)
			}
			if next.Version() != state.Version()+len(got) {
				t.Errorf("stream version %d after %d events on %d", next.Version(), len(got), state.Version())
			}
		})
	}
}

func TestEveryTemplateSentinelIsDecided(t *testing.T) {
	t.Parallel()
	produced := map[error]bool{}
	for _, c := range tplDecideCases() {
		produced[c.err] = true
	}
	for _, s := range []error{
		domain.ErrTemplateExists, domain.ErrTemplateNotFound, domain.ErrTemplateArchived,
		domain.ErrTemplateVersionMismatch, domain.ErrInvalidRequest, domain.ErrInvalidCommand,
	} {
		if !produced[s] {
			t.Errorf("no decide case expects %v", s)
		}
	}
}

func TestDecideTemplateNamesInvalidContentFields(t *testing.T) {
	t.Parallel()
	c := tplContent()
	c.DefaultLocale = "fr"
	c.Variables = append(c.Variables, domain.TemplateVar{Name: "code", Type: "colour"})
	en := c.Locales["en"]
	en.SMS = &domain.SMSPart{Text: "{{.cod}}"}
	c.Locales["en"] = en
	_, err := domain.DecideTemplate(domain.Template{}, domain.CreateTemplate{ID: tplID, Content: c, Now: t0})
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a *ValidationError", err)
	}
	want := []string{"variables[5].name", "variables[5].type", "default_locale", "locales.en.sms.text"}
	if got := fieldNames(ve); !slices.Equal(got, want) {
		t.Errorf("fields = %v, want %v", got, want)
	}
}

func fieldNames(ve *domain.ValidationError) []string {
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return out
}

func TestTemplateContentValidate(t *testing.T) {
	t.Parallel()
	edit := func(f func(c *domain.TemplateContent)) domain.TemplateContent {
		c := tplContent()
		f(&c)
		return c
	}
	setEN := func(f func(lc *domain.LocaleContent)) domain.TemplateContent {
		return edit(func(c *domain.TemplateContent) {
			en := c.Locales["en"]
			f(&en)
			c.Locales["en"] = en
		})
	}
	cases := []struct {
		name    string
		content domain.TemplateContent
		field   string // "" means valid
		problem string // a part of the problem text
	}{
		{"valid", tplContent(), "", ""},
		{"no locales", edit(func(c *domain.TemplateContent) { c.Locales = nil }), "locales", "at least one"},
		{"no default locale", edit(func(c *domain.TemplateContent) { c.DefaultLocale = "" }), "default_locale", "required"},
		{"bad locale tag", edit(func(c *domain.TemplateContent) {
			c.Locales["e n"] = domain.LocaleContent{SMS: &domain.SMSPart{Text: "x"}}
		}), "locales.e n", "locale tag"},
		{"locales equal but for case", edit(func(c *domain.TemplateContent) {
			c.Locales["EN"] = domain.LocaleContent{SMS: &domain.SMSPart{Text: "x"}}
		}), "locales.en", "case"},
		{"empty locale", edit(func(c *domain.TemplateContent) { c.Locales["fr"] = domain.LocaleContent{} }), "locales.fr", "at least one channel"},
		{"bad variable name", edit(func(c *domain.TemplateContent) { c.Variables[0].Name = "1code" }), "variables[0].name", "letter"},
		{"bad variable type", edit(func(c *domain.TemplateContent) { c.Variables[1].Type = "list" }), "variables[1].type", "unknown type"},
		{"parse error", setEN(func(lc *domain.LocaleContent) { lc.Push = &domain.PushPart{Body: "{{.code"} }), "locales.en.push.body", "push.body"},
		{"undeclared variable", setEN(func(lc *domain.LocaleContent) { lc.Chat = &domain.ChatPart{Markdown: "{{.missing}}"} }), "locales.en.chat.markdown", `undeclared variable "missing"`},
		{"undeclared through $", setEN(func(lc *domain.LocaleContent) {
			lc.Chat = &domain.ChatPart{Markdown: "{{with .name}}{{$.ghost}}{{end}}"}
		}), "locales.en.chat.markdown", `"ghost"`},
		{"field of a scalar", setEN(func(lc *domain.LocaleContent) {
			lc.Chat = &domain.ChatPart{Markdown: "{{with .name}}{{.first}}{{end}}"}
		}), "locales.en.chat.markdown", "sample values"},
		{"range refused", setEN(func(lc *domain.LocaleContent) { lc.Chat = &domain.ChatPart{Markdown: "{{range 1000000000}}x{{end}}"} }), "locales.en.chat.markdown", "not supported"},
		{"define refused", setEN(func(lc *domain.LocaleContent) { lc.Chat = &domain.ChatPart{Markdown: `{{define "x"}}y{{end}}z`} }), "locales.en.chat.markdown", "not supported"},
		{"missing subject", setEN(func(lc *domain.LocaleContent) { lc.Email.Subject = "" }), "locales.en.email.subject", "required"},
		{"email without text or html", setEN(func(lc *domain.LocaleContent) { lc.Email = &domain.EmailPart{Subject: "s"} }), "locales.en.email.text", "text or html"},
		{"empty sms", setEN(func(lc *domain.LocaleContent) { lc.SMS = &domain.SMSPart{} }), "locales.en.sms.text", "required"},
		{"webhook not JSON", setEN(func(lc *domain.LocaleContent) { lc.Webhook = &domain.WebhookPart{JSON: `{"code": {{.code}}}`} }), "locales.en.webhook.json", "JSON"},
		{"html in an unclosed attribute", setEN(func(lc *domain.LocaleContent) { lc.Email.HTML = `<a href="{{.code}}>x` }), "locales.en.email.html", "sample values"},
		{"part too large", setEN(func(lc *domain.LocaleContent) {
			lc.SMS = &domain.SMSPart{Text: strings.Repeat("x", domain.MaxTemplatePartLen+1)}
		}), "locales.en.sms.text", "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.content.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *domain.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			for _, f := range ve.Fields {
				if f.Field == tc.field && strings.Contains(f.Problem, tc.problem) {
					return
				}
			}
			t.Errorf("fields %+v lack %s containing %q", ve.Fields, tc.field, tc.problem)
		})
	}
}

func TestTemplateIDValid(t *testing.T) {
	t.Parallel()
	for id, want := range map[domain.TemplateID]bool{
		"otp": true, "order-shipped.v2": true, "A_1": true, "": false, "-x": false,
		"a/b": false, "a b": false, "é": false, domain.TemplateID(strings.Repeat("a", 65)): false,
	} {
		if got := id.Valid(); got != want {
			t.Errorf("TemplateID(%q).Valid() = %v, want %v", id, got, want)
		}
	}
	if got := domain.TemplateStream("otp"); got != "template-otp" {
		t.Errorf("TemplateStream = %q", got)
	}
}

func TestEvolveTemplate(t *testing.T) {
	t.Parallel()
	var zero domain.Template
	if zero.Exists() {
		t.Fatal("zero template exists")
	}
	created := tplReplay(tplHCreated())
	updated := tplReplay(tplHUpdated())
	archived := tplReplay(tplHArchived())

	if !created.Exists() || created.ID() != tplID || created.Version() != 2 || created.CreatedBy() != "ops" || !created.CreatedAt().Equal(t0) {
		t.Errorf("created: %+v", created)
	}
	if got := len(created.Versions()); got != 1 {
		t.Errorf("created has %d versions", got)
	}
	latest, ok := updated.LatestVersion()
	if !ok || latest.Number() != 2 || latest.TemplateID() != tplID || !latest.PublishedAt().Equal(at(1)) || latest.PublishedBy() != "ops" {
		t.Errorf("latest = %+v, %v", latest, ok)
	}
	// Version 1 stays as published.
	v1, ok := updated.VersionAt(1)
	if !ok || !reflect.DeepEqual(v1.Content(), tplContent()) {
		t.Errorf("version 1 = %+v, %v", v1.Content(), ok)
	}
	if _, ok := updated.VersionAt(3); ok {
		t.Error("version 3 exists")
	}
	if _, ok := updated.VersionAt(0); ok {
		t.Error("version 0 exists")
	}
	if !archived.Archived() || archived.ArchiveReason() != "replaced" || !archived.ArchivedAt().Equal(at(30)) || updated.Archived() {
		t.Errorf("archived = %v %q %v; updated archived = %v", archived.Archived(), archived.ArchiveReason(), archived.ArchivedAt(), updated.Archived())
	}

	// Old states are values: evolving further leaves them as they were.
	if len(created.Versions()) != 1 {
		t.Error("evolving changed an earlier state")
	}
	// A copy returned by Content cannot reach into the state.
	c := v1.Content()
	c.Locales["en"].SMS.Text = "tampered"
	if again, _ := updated.VersionAt(1); again.Content().Locales["en"].SMS.Text == "tampered" {
		t.Error("Content shares the state's parts")
	}

	// Out-of-sequence versions and events before creation are counted but
	// not applied; pointers apply like values.
	odd := tplReplay(evs(tplPublished(1, tplContent()), tplCreated(), tplPublished(3, tplContent()), ptrEvent(tplPublished(1, tplContent())), domain.NotificationExpired{ExpiredAt: t0}))
	if odd.Version() != 5 || len(odd.Versions()) != 1 {
		t.Errorf("odd stream: version %d, %d versions", odd.Version(), len(odd.Versions()))
	}
	if got := domain.EvolveTemplate(created, (*domain.TemplateArchived)(nil)); got.Version() != created.Version() {
		t.Error("a nil event was counted")
	}
}

func ptrEvent(e domain.Event) domain.Event {
	switch v := e.(type) {
	case domain.TemplateVersionPublished:
		return &v
	case domain.TemplateCreated:
		return &v
	case domain.TemplateArchived:
		return &v
	}
	return e
}

// tplSampleEvents holds one fixed event per template event type: the golden
// files in testdata/templates are their encodings.
func tplSampleEvents() []domain.Event {
	return []domain.Event{tplCreated(), tplPublished(1, tplContent()), tplArchived()}
}

func TestTemplateEventGoldenFiles(t *testing.T) {
	// Not parallel: with -update it writes the files it compares.
	var types []string
	for _, e := range tplSampleEvents() {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatalf("MarshalEvent(%T): %v", e, err)
		}
		types = append(types, typ)
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, data, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		path := filepath.Join("testdata", "templates", typ+".json")
		if *update {
			if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./domain -update to create it)", err)
		}
		if !bytes.Equal(pretty.Bytes(), want) {
			t.Errorf("%s: encoding differs from %s\ngot:\n%s\nwant:\n%s", typ, path, pretty.Bytes(), want)
		}
	}
	if want := domain.TemplateEventTypes(); !slices.Equal(types, want) {
		t.Errorf("sample types %v, want %v", types, want)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "templates", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(types) {
		t.Errorf("golden files %v for types %v: remove stale files", files, types)
	}
}

func TestTemplateEventRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range tplSampleEvents() {
		typ, data, err := domain.MarshalEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if typ != reflect.TypeOf(e).Name() {
			t.Errorf("type %q for struct %T", typ, e)
		}
		got, err := domain.UnmarshalEvent(typ, data)
		if err != nil {
			t.Fatalf("UnmarshalEvent(%s): %v", typ, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s round trip:\n got %#v\nwant %#v", typ, got, e)
		}
		_, pdata, err := domain.MarshalEvent(ptrEvent(e))
		if err != nil || !bytes.Equal(pdata, data) {
			t.Errorf("%s: pointer encodes as %s, %v", typ, pdata, err)
		}
	}
	if _, err := domain.UnmarshalEvent(domain.TypeTemplateArchived, []byte(`{"schema_version":2}`)); !errors.Is(err, domain.ErrUnsupportedSchema) {
		t.Errorf("future schema: %v", err)
	}
}

// The template events are not notification events: EventTypes, which the
// notification projections rely on, does not list them.
func TestTemplateEventTypesAreSeparate(t *testing.T) {
	t.Parallel()
	for _, typ := range domain.TemplateEventTypes() {
		if slices.Contains(domain.EventTypes(), typ) {
			t.Errorf("%s listed in EventTypes", typ)
		}
	}
}
