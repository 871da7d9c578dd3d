package domain

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json"
)

// Limits on request fields.
const (
	MaxCategoryLen      = 64
	MaxMetadataKeys     = 50
	MaxMetadataKeyLen   = 64
	MaxMetadataValueLen = 1024
)

// NotificationRequest is what a client asks Herald to send. Its JSON names
// are part of the stable API. Recipient and exactly one of Content and
// Template are required; an empty Channels list means "every channel the
// recipient has an address for", resolved when deliveries are planned.
type NotificationRequest struct {
	Recipient   Recipient    `json:"recipient"`
	Channels    []Channel    `json:"channels,omitempty"`
	Content     *Content     `json:"content,omitempty"`
	Template    *TemplateRef `json:"template,omitempty"`
	Priority    Priority     `json:"priority,omitempty"`
	Category    string       `json:"category,omitempty"`
	ScheduledAt *time.Time   `json:"scheduled_at,omitempty"`
	ExpiresAt   *time.Time   `json:"expires_at,omitempty"`
	Metadata    Metadata     `json:"metadata,omitempty"`
	BatchID     string       `json:"batch_id,omitempty"`
}

// Metadata is a notification's free-form labels, kept as sent and given
// back in its events and status.
type Metadata map[string]string

// UnmarshalJSON decodes a JSON object of strings into a map that grows
// from the size of the smallest map. segmentio/encoding/json, which
// decodes events and request bodies (codec.go), makes every nil
// map[string]string it fills with room for 64 entries: for requests that
// carry two labels, making and clearing those maps was 4.5% of the CPU in
// a profile of the api benchmarks. Into a map that exists it decodes as
// into any other.
func (m *Metadata) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*m = nil
		return nil
	}
	out := map[string]string{}
	if _, err := fastjson.Parse(data, &out, 0); err != nil {
		// encoding/json's error names the label whose value is not a
		// string, which the problem answer passes on.
		var plain map[string]string
		if stdErr := json.Unmarshal(data, &plain); stdErr != nil {
			return stdErr
		}
		return err
	}
	*m = out
	return nil
}

// Validate checks r against the request rules at time now and returns nil or
// a *ValidationError listing every invalid field (never just the first), in
// a fixed order. A scheduled_at in the past is allowed and means "send now";
// expires_at must be after scheduled_at and after now.
// Channels are not checked against the recipient's addresses: an ID-only
// recipient may be resolved to addresses from its profile at planning time.
func (r NotificationRequest) Validate(now time.Time) error {
	var v validator

	if r.Recipient.empty() {
		v.add("recipient", "must have an id or at least one address")
	}
	if e := r.Recipient.Email; e != "" && !validEmail(e) {
		v.add("recipient.email", "must be an address of the form local@domain")
	}
	if p := r.Recipient.Phone; p != "" && !validE164(p) {
		v.add("recipient.phone", "must be in E.164 form: + followed by 8 to 15 digits")
	}
	for _, u := range []struct{ field, value string }{
		{"recipient.webhook_url", r.Recipient.WebhookURL},
		{"recipient.slack_webhook_url", r.Recipient.SlackWebhookURL},
		{"recipient.dingtalk_webhook_url", r.Recipient.DingTalkWebhookURL},
		{"recipient.wecom_webhook_url", r.Recipient.WeComWebhookURL},
	} {
		if u.value != "" && !validHTTPURL(u.value) {
			v.add(u.field, "must be an absolute http or https URL")
		}
	}

	seen := make(map[Channel]bool, len(r.Channels))
	for i, c := range r.Channels {
		field := fmt.Sprintf("channels[%d]", i)
		switch {
		case !c.Valid():
			v.add(field, fmt.Sprintf("unknown channel %q", c))
		case seen[c]:
			v.add(field, fmt.Sprintf("duplicate channel %q", c))
		}
		seen[c] = true
	}

	switch {
	case r.Content == nil && r.Template == nil:
		v.add("content", "one of content or template is required")
	case r.Content != nil && r.Template != nil:
		v.add("template", "must not be given together with content")
	}
	if c := r.Content; c != nil && c.Body == "" && c.HTML == "" {
		v.add("content.body", "body or html is required")
	}
	if t := r.Template; t != nil {
		if t.ID == "" {
			v.add("template.id", "is required")
		}
		if t.Version < 0 {
			v.add("template.version", "must not be negative")
		}
	}

	if r.Priority != "" && !r.Priority.Valid() {
		v.add("priority", fmt.Sprintf("unknown priority %q: use high, normal or low", r.Priority))
	}
	if !validCategory(r.Category) {
		v.add("category", fmt.Sprintf("must be at most %d characters of a-z, 0-9, '_', '.', '-'", MaxCategoryLen))
	}

	// A request that is expired on arrival can never be sent, so expires_at
	// must also be in the future when the schedule is in the past.
	if r.ScheduledAt != nil && !Representable(*r.ScheduledAt) {
		v.add("scheduled_at", representableProblem)
	}
	switch {
	case r.ExpiresAt == nil:
	case !Representable(*r.ExpiresAt):
		v.add("expires_at", representableProblem)
	case r.ScheduledAt != nil && !r.ExpiresAt.After(*r.ScheduledAt):
		v.add("expires_at", "must be after scheduled_at")
	case !r.ExpiresAt.After(now):
		v.add("expires_at", "must be in the future")
	}

	if len(r.Metadata) > MaxMetadataKeys {
		v.add("metadata", fmt.Sprintf("must have at most %d keys", MaxMetadataKeys))
	}
	// Sorted so the error list is the same on every call.
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		switch {
		case k == "":
			v.add("metadata", "keys must not be empty")
		case len(k) > MaxMetadataKeyLen:
			v.add("metadata."+k, fmt.Sprintf("key must be at most %d characters", MaxMetadataKeyLen))
		}
		if len(r.Metadata[k]) > MaxMetadataValueLen {
			v.add("metadata."+k, fmt.Sprintf("value must be at most %d characters", MaxMetadataValueLen))
		}
	}

	return v.err()
}

// Normalized returns a deep copy of r with defaults filled in (priority
// normal) and times in UTC without monotonic readings, so two requests that
// mean the same thing compare and hash equal. The copy shares nothing
// mutable with r except the values inside Template.Vars.
func (r NotificationRequest) Normalized() NotificationRequest {
	return r.clone().withDefaults()
}

// withDefaults is Normalized without the copy: the result shares r's
// slices, maps and Content and Template (its times are new values).
func (r NotificationRequest) withDefaults() NotificationRequest {
	if r.Priority == "" {
		r.Priority = PriorityNormal
	}
	if r.ScheduledAt != nil {
		t := r.ScheduledAt.UTC()
		r.ScheduledAt = &t
	}
	if r.ExpiresAt != nil {
		t := r.ExpiresAt.UTC()
		r.ExpiresAt = &t
	}
	return r
}

// clone copies every slice, map and pointer of r so callers of accessors
// cannot reach into aggregate state.
func (r NotificationRequest) clone() NotificationRequest {
	n := r
	n.Channels = slices.Clone(r.Channels)
	n.Metadata = sizedCopy(r.Metadata)
	if r.Content != nil {
		c := *r.Content
		n.Content = &c
	}
	if r.Template != nil {
		t := *r.Template
		t.Vars = sizedCopy(r.Template.Vars)
		n.Template = &t
	}
	if r.ScheduledAt != nil {
		t := *r.ScheduledAt
		n.ScheduledAt = &t
	}
	if r.ExpiresAt != nil {
		t := *r.ExpiresAt
		n.ExpiresAt = &t
	}
	return n
}

// sizedCopy copies m into a map of its own size (nil stays nil).
// maps.Clone keeps the capacity of the original, and the JSON decoder
// (codec.go) makes every plain map[string]string and map[string]any it
// fills with room for 64 entries (Metadata decodes itself at its own
// size; template vars do not): cloning such maps of two entries copied
// all 64 slots each, 17% of the CPU in a profile of the api benchmarks.
func sizedCopy[M ~map[K]V, K comparable, V any](m M) M {
	if m == nil {
		return nil
	}
	out := make(M, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// sameRequest compares normalized requests through their JSON encoding:
// it ignores nil-versus-empty collections and the number types of template
// vars after a storage round trip (3 and 3.0 encode alike), which a
// reflect.DeepEqual would not. stored is the original, repeat the new one:
// a repeat naming a template without a version ("the latest") matches the
// version the original was pinned to when it was accepted, even if a newer
// one was published since.
func sameRequest(stored, repeat NotificationRequest) bool {
	stored, repeat = stored.Normalized(), repeat.Normalized()
	if stored.Template != nil && repeat.Template != nil && repeat.Template.Version == 0 {
		t := *repeat.Template
		t.Version = stored.Template.Version
		repeat.Template = &t
	}
	ja, errA := json.Marshal(stored)
	jb, errB := json.Marshal(repeat)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

type validator struct{ fields []FieldError }

func (v *validator) add(field, problem string) {
	v.fields = append(v.fields, FieldError{Field: field, Problem: problem})
}

func (v *validator) err() error {
	if len(v.fields) == 0 {
		return nil
	}
	return &ValidationError{Fields: v.fields}
}

func validEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.Contains(domain, "@") &&
		!strings.ContainsAny(s, " \t\r\n")
}

func validE164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 8 || len(digits) > 15 {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// The times the ledger can hold: the views and the retry schedule keep
// times as nanoseconds since 1970 in an int64.
var (
	MinTime = time.Unix(0, math.MinInt64).UTC()
	MaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// Representable reports whether t lies from MinTime to MaxTime.
func Representable(t time.Time) bool { return !t.Before(MinTime) && !t.After(MaxTime) }

const representableProblem = "must be from 1678-09-21 to 2262-04-11"

func validCategory(s string) bool {
	if len(s) > MaxCategoryLen {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
		default:
			return false
		}
	}
	return true
}
