package readapi

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/url"
	"slices"
	"strings"

	"herald/domain"
	"herald/infra/eventstore"
)

// The read API never shows a webhook address in full. A chat webhook URL
// (Slack, DingTalk, WeCom) is a credential: whoever holds it can post to
// the channel, and the vendors say to keep it secret. It is shown as its
// scheme and host only, as in delivery errors (domain.RedactURL). A
// generic webhook URL names an endpoint of the customer's, and is shown
// without user info and with every query value masked, where tokens
// usually go. The log keeps the full addresses, for delivery; the
// notification's detail and its audit trail show them masked.

// masked stands for what the read API does not show.
const masked = "…"

// redactAddress returns addr as the read API shows it for channel c.
func redactAddress(c domain.Channel, addr string) string {
	if addr == "" {
		return ""
	}
	switch c {
	case domain.ChannelSlack, domain.ChannelDingTalk, domain.ChannelWeCom:
		return domain.RedactURL(addr)
	case domain.ChannelWebhook:
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" {
			return masked
		}
		u.User = nil
		u.Fragment, u.RawFragment = "", ""
		if u.RawQuery != "" {
			q := u.Query()
			parts := make([]string, 0, len(q))
			for _, k := range slices.Sorted(maps.Keys(q)) {
				parts = append(parts, url.QueryEscape(k)+"="+masked)
			}
			u.RawQuery = strings.Join(parts, "&")
		}
		return u.String()
	}
	return addr
}

// redactRecipient masks the recipient's webhook addresses.
func redactRecipient(r domain.Recipient) domain.Recipient {
	r.WebhookURL = redactAddress(domain.ChannelWebhook, r.WebhookURL)
	r.SlackWebhookURL = redactAddress(domain.ChannelSlack, r.SlackWebhookURL)
	r.DingTalkWebhookURL = redactAddress(domain.ChannelDingTalk, r.DingTalkWebhookURL)
	r.WeComWebhookURL = redactAddress(domain.ChannelWeCom, r.WeComWebhookURL)
	return r
}

// auditRedactor masks, in the events of one notification's stream, the
// webhook addresses its events name.
type auditRedactor struct {
	// secrets maps each address to hide to what is shown instead, both as
	// JSON string literals.
	secrets map[string]string
}

// learn records the addresses event e names.
func (r *auditRedactor) learn(e eventstore.RecordedEvent) {
	switch e.Type {
	case domain.TypeNotificationRequested, domain.TypeDeliveryPlanned, domain.TypeResendRequested:
	default:
		return // the others name no address, and are not decoded
	}
	ev, err := domain.UnmarshalEvent(e.Type, e.Data)
	if err != nil {
		return
	}
	switch ev := ev.(type) {
	case domain.NotificationRequested:
		rc := ev.Request.Recipient
		r.hide(domain.ChannelWebhook, rc.WebhookURL)
		r.hide(domain.ChannelSlack, rc.SlackWebhookURL)
		r.hide(domain.ChannelDingTalk, rc.DingTalkWebhookURL)
		r.hide(domain.ChannelWeCom, rc.WeComWebhookURL)
	case domain.DeliveryPlanned:
		r.hide(ev.Channel, ev.Address)
	case domain.ResendRequested:
		// Each delivery a resend adds names its address.
		for _, d := range ev.Deliveries {
			r.hide(d.Channel, d.Address)
		}
	}
}

func (r *auditRedactor) hide(c domain.Channel, addr string) {
	shown := redactAddress(c, addr)
	if shown == addr {
		return
	}
	if r.secrets == nil {
		r.secrets = map[string]string{}
	}
	to, _ := json.Marshal(shown)
	// An encoder may or may not escape HTML characters (& < >): hide the
	// address in both spellings.
	escaped, _ := json.Marshal(addr)
	r.secrets[string(escaped)] = string(to)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(addr)
	r.secrets[strings.TrimSuffix(b.String(), "\n")] = string(to)
}

// redact returns data with every address learnt masked.
func (r *auditRedactor) redact(data []byte) []byte {
	for secret, shown := range r.secrets {
		data = bytes.ReplaceAll(data, []byte(secret), []byte(shown))
	}
	return data
}
