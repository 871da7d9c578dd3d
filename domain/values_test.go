package domain_test

import (
	"errors"
	"slices"
	"testing"

	"herald/domain"
)

func TestParsePriority(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    domain.Priority
		wantErr error
	}{
		{"high", domain.PriorityHigh, nil},
		{"normal", domain.PriorityNormal, nil},
		{"low", domain.PriorityLow, nil},
		{"", domain.PriorityNormal, nil},
		{"urgent", "", domain.ErrInvalidPriority},
		{"HIGH", "", domain.ErrInvalidPriority},
	}
	for _, tt := range tests {
		got, err := domain.ParsePriority(tt.in)
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("ParsePriority(%q) error = %v, want %v", tt.in, err, tt.wantErr)
		}
		if got != tt.want {
			t.Errorf("ParsePriority(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if domain.Priority("").Valid() {
		t.Error(`Priority("").Valid() = true, want false: empty means "default", it is not a priority`)
	}
}

func TestParseChannel(t *testing.T) {
	t.Parallel()
	all := domain.AllChannels()
	want := []domain.Channel{"webhook", "email", "sms", "slack", "dingtalk", "wecom", "webpush", "inapp"}
	if !slices.Equal(all, want) {
		t.Fatalf("AllChannels() = %v, want %v", all, want)
	}
	all[0] = "mutated"
	if domain.AllChannels()[0] != domain.ChannelWebhook {
		t.Error("AllChannels() shares its slice between calls")
	}
	for _, c := range want {
		got, err := domain.ParseChannel(string(c))
		if err != nil || got != c || !c.Valid() {
			t.Errorf("ParseChannel(%q) = %q, %v; Valid = %v", c, got, err, c.Valid())
		}
	}
	for _, bad := range []string{"", "fax", "Email"} {
		if _, err := domain.ParseChannel(bad); !errors.Is(err, domain.ErrInvalidChannel) {
			t.Errorf("ParseChannel(%q) error = %v, want ErrInvalidChannel", bad, err)
		}
	}
}

func TestParseReceiptOutcome(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"delivered", "bounced", "failed", "opened"} {
		got, err := domain.ParseReceiptOutcome(s)
		if err != nil || string(got) != s {
			t.Errorf("ParseReceiptOutcome(%q) = %q, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "clicked"} {
		if _, err := domain.ParseReceiptOutcome(bad); !errors.Is(err, domain.ErrInvalidReceiptOutcome) {
			t.Errorf("ParseReceiptOutcome(%q) error = %v, want ErrInvalidReceiptOutcome", bad, err)
		}
	}
}

func TestStatusVocabulary(t *testing.T) {
	t.Parallel()
	notification := map[domain.NotificationStatus]string{
		domain.StatusAccepted: "accepted", domain.StatusScheduled: "scheduled",
		domain.StatusAwaitingApproval: "awaiting_approval", domain.StatusInProgress: "in_progress",
		domain.StatusDelivered: "delivered", domain.StatusPartiallyDelivered: "partially_delivered",
		domain.StatusFailed: "failed", domain.StatusCancelled: "cancelled", domain.StatusExpired: "expired",
	}
	for s, want := range notification {
		if string(s) != want || !s.Valid() {
			t.Errorf("notification status %q: want %q and valid", s, want)
		}
	}
	finished := []domain.NotificationStatus{domain.StatusDelivered, domain.StatusPartiallyDelivered,
		domain.StatusFailed, domain.StatusCancelled, domain.StatusExpired}
	for s := range notification {
		if got := s.Finished(); got != slices.Contains(finished, s) {
			t.Errorf("%q.Finished() = %v", s, got)
		}
	}
	delivery := map[domain.DeliveryStatus]string{
		domain.DeliveryStatusPlanned: "planned", domain.DeliveryStatusSuppressed: "suppressed",
		domain.DeliveryStatusInFlight: "in_flight", domain.DeliveryStatusRetryScheduled: "retry_scheduled",
		domain.DeliveryStatusSent: "sent", domain.DeliveryStatusDelivered: "delivered",
		domain.DeliveryStatusFailed: "failed", domain.DeliveryStatusRead: "read",
	}
	for s, want := range delivery {
		if string(s) != want || !s.Valid() {
			t.Errorf("delivery status %q: want %q and valid", s, want)
		}
	}
	if domain.NotificationStatus("done").Valid() || domain.DeliveryStatus("done").Valid() {
		t.Error("unknown statuses reported valid")
	}
}

func TestIdentifiers(t *testing.T) {
	t.Parallel()
	id := domain.NotificationID("n-1")
	if got := domain.NotificationStream(id); got != "notification-n-1" {
		t.Errorf("NotificationStream = %q", got)
	}
	if got := domain.NewDeliveryID(domain.ChannelEmail, 2); got != "email-2" {
		t.Errorf("NewDeliveryID = %q", got)
	}
	if got := id.DeliveryKey("email-2"); got != "n-1/email-2" {
		t.Errorf("DeliveryKey = %q", got)
	}
	channels := map[domain.DeliveryID]domain.Channel{
		"email-1": domain.ChannelEmail, "webpush-12": domain.ChannelWebPush,
		"email": "", "email-0": "", "email-x": "", "-1": "",
	}
	for d, want := range channels {
		if got := d.Channel(); got != want {
			t.Errorf("DeliveryID(%q).Channel() = %q, want %q", d, got, want)
		}
	}
}

func TestRecipientAddress(t *testing.T) {
	t.Parallel()
	r := domain.Recipient{
		ID: "user-42", Email: "ada@example.com", Phone: "+15551234567",
		WebhookURL: "https://hooks.example.com/x", SlackWebhookURL: "https://hooks.slack.com/s",
		DingTalkWebhookURL: "https://oapi.dingtalk.com/d", WeComWebhookURL: "https://qyapi.weixin.qq.com/w",
	}
	want := map[domain.Channel]string{
		domain.ChannelWebhook: r.WebhookURL, domain.ChannelEmail: r.Email, domain.ChannelSMS: r.Phone,
		domain.ChannelSlack: r.SlackWebhookURL, domain.ChannelDingTalk: r.DingTalkWebhookURL,
		domain.ChannelWeCom: r.WeComWebhookURL, domain.ChannelWebPush: r.ID, domain.ChannelInApp: r.ID,
		"fax": "",
	}
	for c, w := range want {
		if got := r.Address(c); got != w {
			t.Errorf("Address(%q) = %q, want %q", c, got, w)
		}
	}
	if got := r.Channels(); !slices.Equal(got, domain.AllChannels()) {
		t.Errorf("Channels() = %v, want all", got)
	}
	emailOnly := domain.Recipient{Email: "ada@example.com"}
	if got := emailOnly.Channels(); !slices.Equal(got, []domain.Channel{domain.ChannelEmail}) {
		t.Errorf("Channels() = %v, want [email]", got)
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"https://oapi.dingtalk.com/robot/send?access_token=abc": "https://oapi.dingtalk.com/…",
		"https://hooks.slack.com/services/T0/B0/XXXX":           "https://hooks.slack.com/…",
		"https://user:pw@example.com/":                          "https://example.com",
		"http://127.0.0.1:8080":                                 "http://127.0.0.1:8080",
		"://bad":                                                "<url redacted>",
		"mailto:someone@example.com":                            "<url redacted>",
	}
	for in, want := range cases {
		if got := domain.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
