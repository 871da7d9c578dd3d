package domain_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/domain"
)

func TestRenderTemplateEveryChannel(t *testing.T) {
	t.Parallel()
	v := tplVersion(t, tplHCreated(), 1)
	vars := map[string]any{"code": "123456", "name": "Ada", "minutes": 5.0, "urgent": true, "expires": "2026-12-01T09:05:00Z"}
	cases := []struct {
		ch   domain.Channel
		want domain.RenderedContent
	}{
		{domain.ChannelEmail, domain.RenderedContent{
			Subject: "Your code 123456",
			Body:    "Hello Ada, your code is 123456.",
			HTML:    `<p>Hello Ada</p><p><a href="https://x.example/?c=123456">123456</a></p>`,
		}},
		{domain.ChannelSMS, domain.RenderedContent{Body: "Code 123456, valid 5 min!"}},
		{domain.ChannelSlack, domain.RenderedContent{Body: "*Code* `123456`"}},
		{domain.ChannelDingTalk, domain.RenderedContent{Body: "*Code* `123456`"}},
		{domain.ChannelWeCom, domain.RenderedContent{Body: "*Code* `123456`"}},
		{domain.ChannelWebPush, domain.RenderedContent{Subject: "Code", Body: "123456"}},
		{domain.ChannelWebhook, domain.RenderedContent{Body: `{"code":"123456","minutes":5,"urgent":true}`}},
		{domain.ChannelInApp, domain.RenderedContent{Subject: "Code", Body: "Use 123456 before 1 Dec 2026"}},
	}
	for _, tc := range cases {
		got, err := domain.RenderTemplate(v, "en", tc.ch, vars)
		if err != nil {
			t.Errorf("%s: %v", tc.ch, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.ch, got, tc.want)
		}
	}
	if got := v.Channels("en"); !slices.Equal(got, domain.AllChannels()) {
		t.Errorf("Channels(en) = %v", got)
	}
}

func TestRenderTemplateEscapesHTMLOnly(t *testing.T) {
	t.Parallel()
	v := tplVersion(t, tplHCreated(), 1)
	evil := `<script>alert("x")</script>&`
	got, err := domain.RenderTemplate(v, "en", domain.ChannelEmail, map[string]any{"code": evil, "minutes": 1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.HTML, "<script>") {
		t.Errorf("HTML not escaped: %s", got.HTML)
	}
	if !strings.Contains(got.HTML, "&lt;script&gt;") {
		t.Errorf("HTML body text = %s, want the value escaped as text", got.HTML)
	}
	// In the href the value is escaped for a URL query.
	if !strings.Contains(got.HTML, `?c=%3cscript%3e`) {
		t.Errorf("href not URL-escaped: %s", got.HTML)
	}
	if got.Subject != "Your code "+evil || !strings.Contains(got.Body, evil) {
		t.Errorf("text parts must be left as given: %+v", got)
	}
	// Webhook JSON quotes and escapes through the json function.
	hook, err := domain.RenderTemplate(v, "en", domain.ChannelWebhook, map[string]any{"code": `a"b`, "minutes": json.Number("9007199254740993")})
	if err != nil {
		t.Fatal(err)
	}
	var payload struct {
		Code    string      `json:"code"`
		Minutes json.Number `json:"minutes"`
	}
	if err := json.Unmarshal([]byte(hook.Body), &payload); err != nil || payload.Code != `a"b` || payload.Minutes != "9007199254740993" {
		t.Errorf("webhook body %s: %+v, %v", hook.Body, payload, err)
	}
}

func TestRenderTemplateLocaleFallback(t *testing.T) {
	t.Parallel()
	v := tplVersion(t, tplHCreated(), 1)
	vars := map[string]any{"code": "42", "minutes": 3}
	cases := []struct {
		locale     string
		ch         domain.Channel
		wantLocale string
		wantBody   string
	}{
		{"de", domain.ChannelSMS, "de", "Code 42, gültig 3 Min."},
		{"de-AT", domain.ChannelSMS, "de", "Code 42, gültig 3 Min."},
		{"DE_at", domain.ChannelSMS, "de", "Code 42, gültig 3 Min."},
		{"de", domain.ChannelInApp, "en", "Use 42"}, // de has no in-app part
		{"fr", domain.ChannelSMS, "en", "Code 42, valid 3 min"},
		{"", domain.ChannelSMS, "en", "Code 42, valid 3 min"},
	}
	for _, tc := range cases {
		loc, ok := v.LocaleFor(tc.locale, tc.ch)
		if !ok || loc != tc.wantLocale {
			t.Errorf("LocaleFor(%q, %s) = %q, %v; want %q", tc.locale, tc.ch, loc, ok, tc.wantLocale)
		}
		got, err := domain.RenderTemplate(v, tc.locale, tc.ch, vars)
		if err != nil || got.Body != tc.wantBody {
			t.Errorf("render %q %s = %q, %v; want %q", tc.locale, tc.ch, got.Body, err, tc.wantBody)
		}
	}
}

func TestRenderTemplateVarErrors(t *testing.T) {
	t.Parallel()
	v := tplVersion(t, tplHCreated(), 1)
	cases := []struct {
		name   string
		ch     domain.Channel
		vars   map[string]any
		fields []string
	}{
		{"missing required", domain.ChannelSMS, map[string]any{"minutes": 1}, []string{"template.vars.code"}},
		{"null is missing", domain.ChannelSMS, map[string]any{"code": nil, "minutes": 1}, []string{"template.vars.code"}},
		{"string for number", domain.ChannelSMS, map[string]any{"code": "1", "minutes": "five"}, []string{"template.vars.minutes"}},
		{"number for string", domain.ChannelSMS, map[string]any{"code": 123456, "minutes": 1}, []string{"template.vars.code"}},
		{"string for boolean", domain.ChannelSMS, map[string]any{"code": "1", "minutes": 1, "urgent": "yes"}, []string{"template.vars.urgent"}},
		{"bad date, unused by the channel", domain.ChannelSMS, map[string]any{"code": "1", "minutes": 1, "expires": "tomorrow"}, []string{"template.vars.expires"}},
		{"every bad var at once", domain.ChannelSMS, map[string]any{"urgent": 1}, []string{"template.vars.code", "template.vars.minutes", "template.vars.urgent"}},
		{"not-a-number float", domain.ChannelSMS, map[string]any{"code": "1", "minutes": json.Number("1x")}, []string{"template.vars.minutes"}},
	}
	for _, tc := range cases {
		got, err := domain.RenderTemplate(v, "en", tc.ch, tc.vars)
		var ve *domain.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%s: error = %v, want a *ValidationError", tc.name, err)
			continue
		}
		if names := fieldNames(ve); !slices.Equal(names, tc.fields) {
			t.Errorf("%s: fields %v, want %v", tc.name, names, tc.fields)
		}
		if got != (domain.RenderedContent{}) {
			t.Errorf("%s: half-rendered %+v alongside the error", tc.name, got)
		}
	}

	// minutes is required but only the SMS and webhook parts use it: an
	// email send does not need it.
	if _, err := domain.RenderTemplate(v, "en", domain.ChannelEmail, map[string]any{"code": "1"}); err != nil {
		t.Errorf("email without minutes: %v", err)
	}
	// Optional variables left out render empty; undeclared ones are ignored.
	got, err := domain.RenderTemplate(v, "en", domain.ChannelSMS, map[string]any{"code": "1", "minutes": 2, "other": []int{1}})
	if err != nil || got.Body != "Code 1, valid 2 min" {
		t.Errorf("optional left out: %q, %v", got.Body, err)
	}
	// Dates may be given as time.Time by Go callers.
	in, err := domain.RenderTemplate(v, "en", domain.ChannelInApp, map[string]any{"code": "1", "expires": time.Date(2027, 3, 4, 0, 0, 0, 0, time.UTC)})
	if err != nil || in.Body != "Use 1 before 4 Mar 2027" {
		t.Errorf("time.Time date: %q, %v", in.Body, err)
	}
}

func TestCheckTemplateVarsPerChannel(t *testing.T) {
	t.Parallel()
	v := tplVersion(t, tplHCreated(), 1)
	vars := map[string]any{"code": "1"}
	if err := domain.CheckTemplateVars(v, "en", []domain.Channel{domain.ChannelEmail, domain.ChannelInApp}, vars); err != nil {
		t.Errorf("email+inapp: %v", err)
	}
	err := domain.CheckTemplateVars(v, "en", []domain.Channel{domain.ChannelEmail, domain.ChannelWebhook}, vars)
	var ve *domain.ValidationError
	if !errors.As(err, &ve) || !slices.Equal(fieldNames(ve), []string{"template.vars.minutes"}) {
		t.Errorf("email+webhook: %v", err)
	}
	// No channels: every required variable is needed.
	if err := domain.CheckTemplateVars(v, "en", nil, vars); !errors.As(err, &ve) || !slices.Equal(fieldNames(ve), []string{"template.vars.minutes"}) {
		t.Errorf("no channels: %v", err)
	}

	smsOnly := domain.TemplateContent{DefaultLocale: "en", Locales: map[string]domain.LocaleContent{"en": {SMS: &domain.SMSPart{Text: "hi"}}}}
	v2 := tplVersion(t, evs(tplCreated(), tplPublished(1, smsOnly)), 1)
	if err := domain.CheckTemplateVars(v2, "en", []domain.Channel{domain.ChannelSMS, domain.ChannelEmail}, nil); !errors.As(err, &ve) || !slices.Equal(fieldNames(ve), []string{"channels"}) {
		t.Errorf("missing channel: %v", err)
	}
	if _, err := domain.RenderTemplate(v2, "en", domain.ChannelEmail, nil); !errors.Is(err, domain.ErrTemplateChannelMissing) {
		t.Errorf("render a missing channel: %v", err)
	}
}

func TestRenderTemplateExecutionErrors(t *testing.T) {
	t.Parallel()
	// Parts that pass publishing with the sample values but fail with
	// others: slicing past the end of a shorter string, and a webhook part
	// that quotes a value by hand instead of with the json function.
	c := domain.TemplateContent{
		DefaultLocale: "en",
		Variables:     []domain.TemplateVar{{Name: "s", Type: domain.VarString, Required: true}},
		Locales: map[string]domain.LocaleContent{"en": {
			SMS:     &domain.SMSPart{Text: "{{slice .s 0 3}}"},
			Webhook: &domain.WebhookPart{JSON: `{"s":"{{.s}}"}`},
		}},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("content refused: %v", err)
	}
	v := tplVersion(t, evs(tplCreated(), tplPublished(1, c)), 1)
	if got, err := domain.RenderTemplate(v, "en", domain.ChannelSMS, map[string]any{"s": "abcdef"}); err != nil || got.Body != "abc" {
		t.Fatalf("render = %q, %v", got.Body, err)
	}
	got, err := domain.RenderTemplate(v, "en", domain.ChannelSMS, map[string]any{"s": "ab"})
	if !errors.Is(err, domain.ErrTemplateRender) || got != (domain.RenderedContent{}) {
		t.Errorf("short value: %+v, %v; want ErrTemplateRender and nothing rendered", got, err)
	}
	if got, err := domain.RenderTemplate(v, "en", domain.ChannelWebhook, map[string]any{"s": "12"}); err != nil || got.Body != `{"s":"12"}` {
		t.Errorf("webhook = %q, %v", got.Body, err)
	}
	if _, err := domain.RenderTemplate(v, "en", domain.ChannelWebhook, map[string]any{"s": `a"b`}); !errors.Is(err, domain.ErrTemplateRender) {
		t.Errorf("webhook with non-JSON output: %v", err)
	}
}
