package domain

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Priority orders notifications into delivery lanes. The zero value (empty)
// means PriorityNormal once the request is normalized.
type Priority string

// The priorities a request may carry.
const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
	PriorityLow    Priority = "low"
)

// Valid reports whether p is one of the declared priorities. The empty
// priority is not valid here; requests treat it as "use the default".
func (p Priority) Valid() bool {
	switch p {
	case PriorityHigh, PriorityNormal, PriorityLow:
		return true
	}
	return false
}

// ParsePriority returns the priority spelled s. The empty string yields
// PriorityNormal, the default; anything else unknown yields an error wrapping
// ErrInvalidPriority.
func ParsePriority(s string) (Priority, error) {
	if s == "" {
		return PriorityNormal, nil
	}
	p := Priority(s)
	if !p.Valid() {
		return "", fmt.Errorf("parse priority %q: %w", s, ErrInvalidPriority)
	}
	return p, nil
}

// Channel is a way of reaching a recipient.
type Channel string

// The channels Herald delivers over.
const (
	ChannelWebhook  Channel = "webhook"
	ChannelEmail    Channel = "email"
	ChannelSMS      Channel = "sms"
	ChannelSlack    Channel = "slack"
	ChannelDingTalk Channel = "dingtalk"
	ChannelWeCom    Channel = "wecom"
	ChannelWebPush  Channel = "webpush"
	ChannelInApp    Channel = "inapp"
)

// AllChannels returns every channel in a fixed order (the order used when a
// request lists no channels). The slice is fresh on every call.
func AllChannels() []Channel {
	return []Channel{
		ChannelWebhook, ChannelEmail, ChannelSMS, ChannelSlack,
		ChannelDingTalk, ChannelWeCom, ChannelWebPush, ChannelInApp,
	}
}

// Valid reports whether c is one of the declared channels.
func (c Channel) Valid() bool {
	switch c {
	case ChannelWebhook, ChannelEmail, ChannelSMS, ChannelSlack,
		ChannelDingTalk, ChannelWeCom, ChannelWebPush, ChannelInApp:
		return true
	}
	return false
}

// ParseChannel returns the channel spelled s, or an error wrapping
// ErrInvalidChannel.
func ParseChannel(s string) (Channel, error) {
	c := Channel(s)
	if !c.Valid() {
		return "", fmt.Errorf("parse channel %q: %w", s, ErrInvalidChannel)
	}
	return c, nil
}

// NotificationStatus is the overall state of a notification, derived from its
// deliveries by EvolveNotification.
type NotificationStatus string

// The notification statuses. StatusAwaitingApproval is part of the stable
// vocabulary but not produced by this package yet: no approval workflow is
// modelled.
const (
	StatusAccepted           NotificationStatus = "accepted"
	StatusScheduled          NotificationStatus = "scheduled"
	StatusAwaitingApproval   NotificationStatus = "awaiting_approval"
	StatusInProgress         NotificationStatus = "in_progress"
	StatusDelivered          NotificationStatus = "delivered"
	StatusPartiallyDelivered NotificationStatus = "partially_delivered"
	StatusFailed             NotificationStatus = "failed"
	StatusCancelled          NotificationStatus = "cancelled"
	StatusExpired            NotificationStatus = "expired"
)

// Valid reports whether s is one of the declared notification statuses.
func (s NotificationStatus) Valid() bool {
	switch s {
	case StatusAccepted, StatusScheduled, StatusAwaitingApproval, StatusInProgress,
		StatusDelivered, StatusPartiallyDelivered, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// Finished reports whether no further delivery work happens for a
// notification in status s without an explicit resend.
func (s NotificationStatus) Finished() bool {
	switch s {
	case StatusDelivered, StatusPartiallyDelivered, StatusFailed, StatusCancelled, StatusExpired:
		return true
	}
	return false
}

// DeliveryStatus is the state of one delivery (one channel, one address).
type DeliveryStatus string

// The delivery statuses. Sent means the provider took the message;
// delivered means delivery was confirmed; failed means dead-lettered or
// reported failed by a receipt.
const (
	DeliveryStatusPlanned        DeliveryStatus = "planned"
	DeliveryStatusSuppressed     DeliveryStatus = "suppressed"
	DeliveryStatusInFlight       DeliveryStatus = "in_flight"
	DeliveryStatusRetryScheduled DeliveryStatus = "retry_scheduled"
	DeliveryStatusSent           DeliveryStatus = "sent"
	DeliveryStatusDelivered      DeliveryStatus = "delivered"
	DeliveryStatusFailed         DeliveryStatus = "failed"
	DeliveryStatusRead           DeliveryStatus = "read"
)

// Valid reports whether s is one of the declared delivery statuses.
func (s DeliveryStatus) Valid() bool {
	switch s {
	case DeliveryStatusPlanned, DeliveryStatusSuppressed, DeliveryStatusInFlight,
		DeliveryStatusRetryScheduled, DeliveryStatusSent, DeliveryStatusDelivered,
		DeliveryStatusFailed, DeliveryStatusRead:
		return true
	}
	return false
}

// Pending reports whether a delivery in status s still has work ahead of it
// (planned, in flight or waiting for a retry).
func (s DeliveryStatus) Pending() bool {
	switch s {
	case DeliveryStatusPlanned, DeliveryStatusInFlight, DeliveryStatusRetryScheduled:
		return true
	}
	return false
}

// Succeeded reports whether a delivery in status s reached its recipient's
// provider or the recipient (sent, delivered or read).
func (s DeliveryStatus) Succeeded() bool {
	switch s {
	case DeliveryStatusSent, DeliveryStatusDelivered, DeliveryStatusRead:
		return true
	}
	return false
}

// ReceiptOutcome is what a provider callback reports about a delivery.
type ReceiptOutcome string

// The receipt outcomes providers report.
const (
	ReceiptDelivered ReceiptOutcome = "delivered"
	ReceiptBounced   ReceiptOutcome = "bounced"
	ReceiptFailed    ReceiptOutcome = "failed"
	ReceiptOpened    ReceiptOutcome = "opened"
)

// Valid reports whether o is one of the declared receipt outcomes.
func (o ReceiptOutcome) Valid() bool {
	switch o {
	case ReceiptDelivered, ReceiptBounced, ReceiptFailed, ReceiptOpened:
		return true
	}
	return false
}

// ParseReceiptOutcome returns the outcome spelled s, or an error wrapping
// ErrInvalidReceiptOutcome.
func ParseReceiptOutcome(s string) (ReceiptOutcome, error) {
	o := ReceiptOutcome(s)
	if !o.Valid() {
		return "", fmt.Errorf("parse receipt outcome %q: %w", s, ErrInvalidReceiptOutcome)
	}
	return o, nil
}

// Recipient says whom to reach and where. Every field is optional, but a
// valid request carries the ID or at least one address.
type Recipient struct {
	ID                 string `json:"id,omitempty"`
	Email              string `json:"email,omitempty"`
	Phone              string `json:"phone,omitempty"`
	WebhookURL         string `json:"webhook_url,omitempty"`
	SlackWebhookURL    string `json:"slack_webhook_url,omitempty"`
	DingTalkWebhookURL string `json:"dingtalk_webhook_url,omitempty"`
	WeComWebhookURL    string `json:"wecom_webhook_url,omitempty"`
}

// Address returns where channel c reaches this recipient, or "" when the
// recipient has no address for it. In-app and web push are addressed by the
// recipient ID, because the inbox and the push subscriptions are kept per
// recipient rather than carried in the request.
func (r Recipient) Address(c Channel) string {
	switch c {
	case ChannelWebhook:
		return r.WebhookURL
	case ChannelEmail:
		return r.Email
	case ChannelSMS:
		return r.Phone
	case ChannelSlack:
		return r.SlackWebhookURL
	case ChannelDingTalk:
		return r.DingTalkWebhookURL
	case ChannelWeCom:
		return r.WeComWebhookURL
	case ChannelWebPush, ChannelInApp:
		return r.ID
	}
	return ""
}

// Channels returns, in AllChannels order, every channel for which the
// recipient has an address: what an empty channel list in a request means.
func (r Recipient) Channels() []Channel {
	var out []Channel
	for _, c := range AllChannels() {
		if r.Address(c) != "" {
			out = append(out, c)
		}
	}
	return out
}

func (r Recipient) empty() bool { return r == Recipient{} }

// Content is a message given inline. Body or HTML must be set.
type Content struct {
	Subject string `json:"subject,omitempty"`
	Body    string `json:"body,omitempty"`
	HTML    string `json:"html,omitempty"`
}

// TemplateRef names a stored template to render. Version 0 means "the latest
// published version"; Vars are the values substituted into it.
type TemplateRef struct {
	ID      string         `json:"id"`
	Version int            `json:"version,omitempty"`
	Locale  string         `json:"locale,omitempty"`
	Vars    map[string]any `json:"vars,omitempty"`
}

// NotificationID identifies a notification and names its stream.
type NotificationID string

// NotificationStream returns the event stream name of notification id:
// "notification-<id>".
func NotificationStream(id NotificationID) string {
	return "notification-" + string(id)
}

// DeliveryKey returns "<notificationID>/<deliveryID>", the idempotency key
// handed to providers for delivery d. It is the same for every attempt of d,
// so a receiver can drop duplicates of an at-least-once send, and differs for
// a resend, which is a new delivery the receiver should show.
func (n NotificationID) DeliveryKey(d DeliveryID) string {
	return string(n) + "/" + string(d)
}

// DeliveryID identifies a delivery within its notification. It is
// deterministic, "<channel>-<n>", where n counts the deliveries on that
// channel starting at 1 (the first plan, or a suppression) and grows by one
// for each resend.
type DeliveryID string

// NewDeliveryID returns the ID of the n-th delivery on channel c.
func NewDeliveryID(c Channel, n int) DeliveryID {
	return DeliveryID(string(c) + "-" + strconv.Itoa(n))
}

// Channel returns the channel part of the ID, or "" when d is not of the
// form "<channel>-<n>".
func (d DeliveryID) Channel() Channel {
	i := strings.LastIndexByte(string(d), '-')
	if i <= 0 {
		return ""
	}
	if n, err := strconv.Atoi(string(d)[i+1:]); err != nil || n < 1 {
		return ""
	}
	return Channel(string(d)[:i])
}

// RedactURL returns raw reduced to scheme and host, with "/…" standing for
// a path or query: chat webhooks carry their credential in the query
// (DingTalk access_token, WeCom key) or in the path (Slack), so nothing past
// the host is safe to keep in an event or a log.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<url redacted>"
	}
	s := u.Scheme + "://" + u.Host
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		s += "/…"
	}
	return s
}
