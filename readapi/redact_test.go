package readapi_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"herald/domain"
	"herald/infra/eventstore"
	"herald/infra/viewstore/viewstoretest"
	"herald/readapi"
)

// The notification's detail and its audit trail show webhook addresses
// masked: chat webhook URLs as their host only, generic webhook URLs
// without user info and query values. Email addresses are shown as they
// are.
func TestWebhookAddressesMasked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, readapi.Options{})
	const (
		slack    = "https://hooks.slack.com/services/T000/B000/slack-secret"
		dingtalk = "https://oapi.dingtalk.com/robot/send?access_token=ding-secret"
		wecom    = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-secret"
		// An HTML-escaping encoder writes & as \u0026.
		webhook = "https://user:hook-password@hooks.example.com/in/herald?token=hook-secret&b=hook-other"
	)
	secrets := []string{"slack-secret", "T000", "ding-secret", "wecom-secret", "hook-password", "hook-secret", "hook-other"}
	id := domain.NotificationID("n-masked")
	chans := map[domain.Channel]string{domain.ChannelSlack: slack, domain.ChannelDingTalk: dingtalk, domain.ChannelWeCom: wecom,
		domain.ChannelWebhook: webhook, domain.ChannelEmail: "ada@example.com"}
	req := domain.NotificationRequest{
		Recipient: domain.Recipient{ID: "user-9", Email: "ada@example.com", WebhookURL: webhook,
			SlackWebhookURL: slack, DingTalkWebhookURL: dingtalk, WeComWebhookURL: wecom},
		Channels: []domain.Channel{domain.ChannelSlack, domain.ChannelDingTalk, domain.ChannelWeCom, domain.ChannelWebhook, domain.ChannelEmail},
		Content:  &domain.Content{Body: "hi"},
	}
	evs := []domain.Event{domain.NotificationRequested{NotificationID: id, Request: req.Normalized(), IdempotencyKey: "k-masked",
		RequestedAt: viewstoretest.Base}}
	for i, c := range req.Channels {
		evs = append(evs, domain.DeliveryPlanned{DeliveryID: domain.NewDeliveryID(c, i+1), Channel: c, Address: chans[c],
			PlannedAt: viewstoretest.Base})
	}
	// A resend's new delivery names its address too (here another one).
	const slackAgain = "https://hooks.slack.com/services/T000/B000/resend-secret"
	secrets = append(secrets, "resend-secret")
	evs = append(evs, domain.ResendRequested{Deliveries: []domain.ResendDelivery{{
		DeliveryID: domain.NewDeliveryID(domain.ChannelSlack, 6), Repeats: domain.NewDeliveryID(domain.ChannelSlack, 1),
		Channel: domain.ChannelSlack, Address: slackAgain,
	}}, Actor: "ann", Reason: "again", RequestedAt: viewstoretest.Base})
	var data []eventstore.EventData
	for _, e := range evs {
		data = append(data, viewstoretest.EventData(e))
	}
	if _, err := f.log.Append(context.Background(), domain.NotificationStream(id), eventstore.NoStream, data...); err != nil {
		t.Fatal(err)
	}
	f.waitCaughtUp(t)

	body := func(path string) string {
		t.Helper()
		resp, err := f.srv.Client().Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	for _, path := range []string{"/v1/notifications/n-masked", "/v1/notifications/n-masked/events"} {
		got := body(path)
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Errorf("GET %s shows %q: %s", path, s, got)
			}
		}
		for _, want := range []string{`"https://hooks.slack.com/…"`, `"https://oapi.dingtalk.com/…"`, `"https://qyapi.weixin.qq.com/…"`,
			`"https://hooks.example.com/in/herald?b=…\u0026token=…"`, `"ada@example.com"`} {
			if !strings.Contains(got, want) {
				t.Errorf("GET %s does not show %s: %s", path, want, got)
			}
		}
	}
	// The log keeps the addresses in full: delivery needs them.
	recorded, err := f.log.ReadStream(context.Background(), domain.NotificationStream(id), 0, 10)
	if err != nil || len(recorded) != len(evs) || !strings.Contains(string(recorded[1].Data), "slack-secret") {
		t.Fatalf("log lost the full address: %v %d", err, len(recorded))
	}
}
