package domain_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"herald/domain"
)

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

func at(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }

func ptr[T any](v T) *T { return &v }

// validRequest is a request that passes every rule.
func validRequest() domain.NotificationRequest {
	return domain.NotificationRequest{
		Recipient: domain.Recipient{
			ID: "user-42", Email: "ada@example.com", Phone: "+15551234567",
			WebhookURL: "https://hooks.example.com/x",
		},
		Content: &domain.Content{Subject: "Your code", Body: "Code 123456"},
	}
}

func fieldsOf(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *domain.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	if !errors.Is(err, domain.ErrInvalidRequest) {
		t.Errorf("error %v does not unwrap to ErrInvalidRequest", err)
	}
	var out []string
	for _, f := range ve.Fields {
		if f.Problem == "" {
			t.Errorf("field %q has no problem text", f.Field)
		}
		out = append(out, f.Field)
	}
	return out
}

func TestNotificationRequestValidate(t *testing.T) {
	t.Parallel()
	now := t0
	tests := []struct {
		name   string
		modify func(r *domain.NotificationRequest)
		want   []string // invalid fields, in reported order; nil = valid
	}{
		{"valid content request", func(r *domain.NotificationRequest) {}, nil},
		{"valid template request", func(r *domain.NotificationRequest) {
			r.Content = nil
			r.Template = &domain.TemplateRef{ID: "otp", Version: 3, Locale: "en", Vars: map[string]any{"code": "1"}}
		}, nil},
		{"template version 0 means latest", func(r *domain.NotificationRequest) {
			r.Content = nil
			r.Template = &domain.TemplateRef{ID: "otp"}
		}, nil},
		{"html only content", func(r *domain.NotificationRequest) { r.Content = &domain.Content{HTML: "<p>x</p>"} }, nil},
		{"id-only recipient", func(r *domain.NotificationRequest) { r.Recipient = domain.Recipient{ID: "u"} }, nil},
		{"address-only recipient", func(r *domain.NotificationRequest) {
			r.Recipient = domain.Recipient{SlackWebhookURL: "http://hooks.example.com/s"}
		}, nil},
		{"every optional field set", func(r *domain.NotificationRequest) {
			r.Channels = []domain.Channel{domain.ChannelWebhook, domain.ChannelEmail}
			r.Priority = domain.PriorityHigh
			r.Category = "security.otp_v2-x"
			r.ScheduledAt = ptr(at(10))
			r.ExpiresAt = ptr(at(15))
			r.Metadata = map[string]string{"order": "A-17", strings.Repeat("k", 64): strings.Repeat("v", 1024)}
			r.BatchID = "b-1"
		}, nil},
		{"empty channels allowed", func(r *domain.NotificationRequest) { r.Channels = []domain.Channel{} }, nil},
		{"scheduled in the past is allowed", func(r *domain.NotificationRequest) { r.ScheduledAt = ptr(at(-10)) }, nil},

		{"recipient missing", func(r *domain.NotificationRequest) { r.Recipient = domain.Recipient{} }, []string{"recipient"}},
		{"email without @", func(r *domain.NotificationRequest) { r.Recipient.Email = "ada.example.com" }, []string{"recipient.email"}},
		{"email with two @", func(r *domain.NotificationRequest) { r.Recipient.Email = "a@b@c" }, []string{"recipient.email"}},
		{"email empty local part", func(r *domain.NotificationRequest) { r.Recipient.Email = "@example.com" }, []string{"recipient.email"}},
		{"email empty domain", func(r *domain.NotificationRequest) { r.Recipient.Email = "ada@" }, []string{"recipient.email"}},
		{"phone without +", func(r *domain.NotificationRequest) { r.Recipient.Phone = "15551234567" }, []string{"recipient.phone"}},
		{"phone too short", func(r *domain.NotificationRequest) { r.Recipient.Phone = "+1234567" }, []string{"recipient.phone"}},
		{"phone 8 digits ok", func(r *domain.NotificationRequest) { r.Recipient.Phone = "+12345678" }, nil},
		{"phone 15 digits ok", func(r *domain.NotificationRequest) { r.Recipient.Phone = "+123456789012345" }, nil},
		{"phone too long", func(r *domain.NotificationRequest) { r.Recipient.Phone = "+1234567890123456" }, []string{"recipient.phone"}},
		{"phone with letters", func(r *domain.NotificationRequest) { r.Recipient.Phone = "+1555CALLME" }, []string{"recipient.phone"}},
		{"webhook relative", func(r *domain.NotificationRequest) { r.Recipient.WebhookURL = "/hooks/x" }, []string{"recipient.webhook_url"}},
		{"webhook ftp", func(r *domain.NotificationRequest) { r.Recipient.WebhookURL = "ftp://example.com/x" }, []string{"recipient.webhook_url"}},
		{"slack no host", func(r *domain.NotificationRequest) { r.Recipient.SlackWebhookURL = "https://" }, []string{"recipient.slack_webhook_url"}},
		{"dingtalk garbage", func(r *domain.NotificationRequest) { r.Recipient.DingTalkWebhookURL = "::nope" }, []string{"recipient.dingtalk_webhook_url"}},
		{"wecom no scheme", func(r *domain.NotificationRequest) { r.Recipient.WeComWebhookURL = "qyapi.weixin.qq.com/x" }, []string{"recipient.wecom_webhook_url"}},
		{"unknown channel", func(r *domain.NotificationRequest) {
			r.Channels = []domain.Channel{domain.ChannelEmail, "fax"}
		}, []string{"channels[1]"}},
		{"duplicate channel", func(r *domain.NotificationRequest) {
			r.Channels = []domain.Channel{domain.ChannelEmail, domain.ChannelSMS, domain.ChannelEmail}
		}, []string{"channels[2]"}},
		{"neither content nor template", func(r *domain.NotificationRequest) { r.Content = nil }, []string{"content"}},
		{"both content and template", func(r *domain.NotificationRequest) {
			r.Template = &domain.TemplateRef{ID: "otp"}
		}, []string{"template"}},
		{"content without body or html", func(r *domain.NotificationRequest) {
			r.Content = &domain.Content{Subject: "only a subject"}
		}, []string{"content.body"}},
		{"template without id", func(r *domain.NotificationRequest) {
			r.Content = nil
			r.Template = &domain.TemplateRef{Version: 1}
		}, []string{"template.id"}},
		{"template negative version", func(r *domain.NotificationRequest) {
			r.Content = nil
			r.Template = &domain.TemplateRef{ID: "otp", Version: -1}
		}, []string{"template.version"}},
		{"unknown priority", func(r *domain.NotificationRequest) { r.Priority = "urgent" }, []string{"priority"}},
		{"category uppercase", func(r *domain.NotificationRequest) { r.Category = "Security" }, []string{"category"}},
		{"category space", func(r *domain.NotificationRequest) { r.Category = "a b" }, []string{"category"}},
		{"category 64 chars ok", func(r *domain.NotificationRequest) { r.Category = strings.Repeat("a", 64) }, nil},
		{"category too long", func(r *domain.NotificationRequest) { r.Category = strings.Repeat("a", 65) }, []string{"category"}},
		{"expires in the past", func(r *domain.NotificationRequest) { r.ExpiresAt = ptr(at(-1)) }, []string{"expires_at"}},
		{"scheduled past what the views hold", func(r *domain.NotificationRequest) {
			r.ScheduledAt = ptr(time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC))
		}, []string{"scheduled_at"}},
		{"expires past what the views hold", func(r *domain.NotificationRequest) {
			r.ExpiresAt = ptr(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
		}, []string{"expires_at"}},
		{"scheduled and expiring at the last time the views hold", func(r *domain.NotificationRequest) {
			r.ScheduledAt = ptr(domain.MaxTime.Add(-time.Second))
			r.ExpiresAt = ptr(domain.MaxTime)
		}, nil},
		{"expires now", func(r *domain.NotificationRequest) { r.ExpiresAt = ptr(now) }, []string{"expires_at"}},
		{"expires before schedule", func(r *domain.NotificationRequest) {
			r.ScheduledAt = ptr(at(30))
			r.ExpiresAt = ptr(at(20))
		}, []string{"expires_at"}},
		{"expires at schedule", func(r *domain.NotificationRequest) {
			r.ScheduledAt = ptr(at(30))
			r.ExpiresAt = ptr(at(30))
		}, []string{"expires_at"}},
		{"expires after a past schedule but before now", func(r *domain.NotificationRequest) {
			r.ScheduledAt = ptr(at(-30))
			r.ExpiresAt = ptr(at(-20))
		}, []string{"expires_at"}},
		{"expires after a past schedule and after now", func(r *domain.NotificationRequest) {
			r.ScheduledAt = ptr(at(-30))
			r.ExpiresAt = ptr(at(20))
		}, nil},
		{"too many metadata keys", func(r *domain.NotificationRequest) {
			r.Metadata = map[string]string{}
			for i := range 51 {
				r.Metadata[fmt.Sprintf("k%02d", i)] = "v"
			}
		}, []string{"metadata"}},
		{"50 metadata keys ok", func(r *domain.NotificationRequest) {
			r.Metadata = map[string]string{}
			for i := range 50 {
				r.Metadata[fmt.Sprintf("k%02d", i)] = "v"
			}
		}, nil},
		{"metadata key too long", func(r *domain.NotificationRequest) {
			r.Metadata = map[string]string{strings.Repeat("k", 65): "v"}
		}, []string{"metadata." + strings.Repeat("k", 65)}},
		{"metadata empty key", func(r *domain.NotificationRequest) { r.Metadata = map[string]string{"": "v"} }, []string{"metadata"}},
		{"metadata value too long", func(r *domain.NotificationRequest) {
			r.Metadata = map[string]string{"order": strings.Repeat("v", 1025)}
		}, []string{"metadata.order"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := validRequest()
			tt.modify(&r)
			got := fieldsOf(t, r.Validate(now))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("invalid fields = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateReportsEveryFieldAtOnce(t *testing.T) {
	t.Parallel()
	r := domain.NotificationRequest{
		Recipient: domain.Recipient{Email: "nope", Phone: "123", WebhookURL: "mailto:x@y"},
		Channels:  []domain.Channel{"fax", domain.ChannelSMS, domain.ChannelSMS},
		Content:   &domain.Content{},
		Template:  &domain.TemplateRef{Version: -2},
		Priority:  "asap",
		Category:  "Not OK",
		ExpiresAt: ptr(at(-5)),
		Metadata:  map[string]string{"big": strings.Repeat("x", 2000)},
	}
	err := r.Validate(t0)
	want := []string{
		"recipient.email", "recipient.phone", "recipient.webhook_url",
		"channels[0]", "channels[2]",
		"template", "content.body", "template.id", "template.version",
		"priority", "category", "expires_at", "metadata.big",
	}
	if got := fieldsOf(t, err); !reflect.DeepEqual(got, want) {
		t.Fatalf("invalid fields =\n%q\nwant\n%q", got, want)
	}
	msg := err.Error()
	for _, f := range want {
		if !strings.Contains(msg, f+": ") {
			t.Errorf("Error() = %q does not name %q", msg, f)
		}
	}
	// The field list is what the HTTP layer renders; its JSON names are
	// part of the API.
	var ve *domain.ValidationError
	errors.As(err, &ve)
	b, _ := json.Marshal(ve.Fields[0])
	if string(b) != `{"field":"recipient.email","problem":"must be an address of the form local@domain"}` {
		t.Errorf("FieldError JSON = %s", b)
	}
}

func TestNotificationRequestJSONNames(t *testing.T) {
	t.Parallel()
	// The example from ARCHITECTURE.md "Stable names" must decode field by
	// field into the struct.
	const body = `{
	  "recipient": {"id": "user-42", "email": "ada@example.com", "phone": "+15551234567",
	                "webhook_url": "https://hooks.example.com/x", "slack_webhook_url": "https://s",
	                "dingtalk_webhook_url": "https://d", "wecom_webhook_url": "https://w"},
	  "channels": ["webhook", "email"],
	  "content": {"subject": "Your code", "body": "Code 123456", "html": "<p>Code 123456</p>"},
	  "template": {"id": "otp", "version": 3, "locale": "en", "vars": {"code": "123456"}},
	  "priority": "high",
	  "category": "security",
	  "scheduled_at": "2026-12-01T09:00:00Z",
	  "expires_at": "2026-12-01T09:05:00Z",
	  "metadata": {"order": "A-17"},
	  "batch_id": "b-9"
	}`
	var got domain.NotificationRequest
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-42", Email: "ada@example.com", Phone: "+15551234567",
			WebhookURL: "https://hooks.example.com/x", SlackWebhookURL: "https://s",
			DingTalkWebhookURL: "https://d", WeComWebhookURL: "https://w"},
		Channels:    []domain.Channel{domain.ChannelWebhook, domain.ChannelEmail},
		Content:     &domain.Content{Subject: "Your code", Body: "Code 123456", HTML: "<p>Code 123456</p>"},
		Template:    &domain.TemplateRef{ID: "otp", Version: 3, Locale: "en", Vars: map[string]any{"code": "123456"}},
		Priority:    domain.PriorityHigh,
		Category:    "security",
		ScheduledAt: ptr(t0),
		ExpiresAt:   ptr(at(5)),
		Metadata:    map[string]string{"order": "A-17"},
		BatchID:     "b-9",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", got, want)
	}
}

func TestNormalized(t *testing.T) {
	t.Parallel()
	cet := time.FixedZone("CET", 3600)
	r := validRequest()
	r.ScheduledAt = ptr(t0.In(cet))
	r.Metadata = map[string]string{"a": "b"}
	r.Channels = []domain.Channel{domain.ChannelEmail}

	n := r.Normalized()
	if n.Priority != domain.PriorityNormal {
		t.Errorf("priority = %q, want normal", n.Priority)
	}
	if n.ScheduledAt.Location() != time.UTC || !n.ScheduledAt.Equal(t0) {
		t.Errorf("scheduled_at = %v, want %v in UTC", n.ScheduledAt, t0)
	}
	if r.Priority != "" || r.ScheduledAt.Location() != cet {
		t.Error("Normalized modified its receiver")
	}
	n.Metadata["a"] = "changed"
	n.Channels[0] = domain.ChannelSMS
	n.Content.Body = "changed"
	if r.Metadata["a"] != "b" || r.Channels[0] != domain.ChannelEmail || r.Content.Body != "Code 123456" {
		t.Error("Normalized result shares memory with the original")
	}

	high := validRequest()
	high.Priority = domain.PriorityHigh
	if got := high.Normalized().Priority; got != domain.PriorityHigh {
		t.Errorf("explicit priority became %q", got)
	}
	explicit := validRequest()
	explicit.Priority = domain.PriorityNormal
	if !reflect.DeepEqual(explicit.Normalized(), validRequest().Normalized()) {
		t.Error("empty and explicit normal priority normalize differently")
	}
}
