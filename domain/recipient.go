package domain

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"
)

// Sentinel errors of the RecipientProfile aggregate. Compare with errors.Is.
var (
	// ErrRecipientNotFound means nothing was ever recorded about the
	// recipient: no profile, no preferences, no push subscription.
	ErrRecipientNotFound = errors.New("recipient not found")
	// ErrPreferencesChanged means a preference update was based on a
	// revision other than the current one: another update or an
	// unsubscribe came in between, and overwriting it would lose it.
	ErrPreferencesChanged = errors.New("preferences changed since the revision the update was based on")
	// ErrWebPushSubscriptionNotFound means the recipient never had a push
	// subscription with that endpoint.
	ErrWebPushSubscriptionNotFound = errors.New("web push subscription not found")
)

// Limits on recipient data.
const (
	MaxRecipientIDLen        = 128
	MaxWebPushSubscriptions  = 20
	MaxWebPushEndpointLen    = 2048
	MaxUnsubscribeViaLen     = 64
	MaxSubscriptionReasonLen = 1024
)

// RecipientID identifies a recipient and names its stream. It is the
// recipient ID clients put in notification requests.
type RecipientID string

// RecipientStream returns the event stream name of recipient id:
// "recipient-<id>".
func RecipientStream(id RecipientID) string { return "recipient-" + string(id) }

// Valid reports whether id can name a recipient: 1 to MaxRecipientIDLen
// characters of A-Z, a-z, 0-9, '_', '.', '-', '@', ':', starting with a
// letter or a digit. Client user IDs (numbers, UUIDs, "user-42", e-mail
// shaped handles) fit; nothing that would need escaping in a URL path does.
func (id RecipientID) Valid() bool {
	if len(id) == 0 || len(id) > MaxRecipientIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case isASCIIAlnum(c):
		case i > 0 && (c == '_' || c == '.' || c == '-' || c == '@' || c == ':'):
		default:
			return false
		}
	}
	return true
}

// RecipientDetails is a recipient's profile: where each channel reaches it,
// the locale its messages are written in and the IANA time zone its quiet
// hours and daily caps are counted in. Every field is optional. Its JSON
// names are part of the stable API (the body of PUT /v1/recipients/{id}).
type RecipientDetails struct {
	Email              string `json:"email,omitempty"`
	Phone              string `json:"phone,omitempty"`
	WebhookURL         string `json:"webhook_url,omitempty"`
	SlackWebhookURL    string `json:"slack_webhook_url,omitempty"`
	DingTalkWebhookURL string `json:"dingtalk_webhook_url,omitempty"`
	WeComWebhookURL    string `json:"wecom_webhook_url,omitempty"`
	Locale             string `json:"locale,omitempty"`
	TimeZone           string `json:"time_zone,omitempty"`
}

// Validate returns nil or a *ValidationError naming every bad field by its
// JSON name. The time zone must be an IANA name the time package knows
// ("Europe/Berlin", "UTC"); "Local" is refused because it means a
// different zone on every machine.
func (d RecipientDetails) Validate() error {
	var v validator
	if d.Email != "" && !validEmail(d.Email) {
		v.add("email", "must be an address of the form local@domain")
	}
	if d.Phone != "" && !validE164(d.Phone) {
		v.add("phone", "must be in E.164 form: + followed by 8 to 15 digits")
	}
	for _, u := range []struct{ field, value string }{
		{"webhook_url", d.WebhookURL},
		{"slack_webhook_url", d.SlackWebhookURL},
		{"dingtalk_webhook_url", d.DingTalkWebhookURL},
		{"wecom_webhook_url", d.WeComWebhookURL},
	} {
		if u.value != "" && !validHTTPURL(u.value) {
			v.add(u.field, "must be an absolute http or https URL")
		}
	}
	if d.Locale != "" && !validLocale(d.Locale) {
		v.add("locale", "must be a locale tag like en or pt-BR")
	}
	if d.TimeZone != "" {
		if _, err := loadZone(d.TimeZone); err != nil {
			v.add("time_zone", "must be an IANA time zone name like Europe/Berlin")
		}
	}
	return v.err()
}

// address returns the profile's address for the channels addressed by a
// string of the profile; in-app and web push are addressed by the
// recipient ID and are not the profile's to give.
func (d RecipientDetails) address(c Channel) string {
	return Recipient{
		Email: d.Email, Phone: d.Phone, WebhookURL: d.WebhookURL, SlackWebhookURL: d.SlackWebhookURL,
		DingTalkWebhookURL: d.DingTalkWebhookURL, WeComWebhookURL: d.WeComWebhookURL,
	}.Address(c)
}

// loadZone loads an IANA zone, refusing "Local" (and the empty name, which
// the time package reads as UTC, because callers mean "none" by it).
func loadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q: not an IANA name", name)
	}
	return time.LoadLocation(name)
}

// WebPushSubscription is one browser's push subscription, as the browser's
// PushSubscription gives it: the push service endpoint and the keys the
// message is encrypted with.
type WebPushSubscription struct {
	Endpoint string `json:"endpoint"`
	P256dh   string `json:"p256dh"`
	Auth     string `json:"auth"`
}

// Validate returns nil or a *ValidationError naming "endpoint",
// "keys.p256dh" or "keys.auth" (the browser's JSON names). The endpoint
// must be an https URL; p256dh must be an uncompressed P-256 point (65
// bytes starting 0x04) and auth 16 bytes, both base64url with or without
// padding, as browsers produce them.
func (s WebPushSubscription) Validate() error {
	var v validator
	if u, err := url.Parse(s.Endpoint); err != nil || u.Scheme != "https" || u.Host == "" || len(s.Endpoint) > MaxWebPushEndpointLen {
		v.add("endpoint", fmt.Sprintf("must be an https URL of at most %d characters", MaxWebPushEndpointLen))
	}
	if b, ok := decodeBase64URL(s.P256dh); !ok || len(b) != 65 || b[0] != 4 {
		v.add("keys.p256dh", "must be a base64url uncompressed P-256 public key (65 bytes)")
	}
	if b, ok := decodeBase64URL(s.Auth); !ok || len(b) != 16 {
		v.add("keys.auth", "must be a base64url 16-byte secret")
	}
	return v.err()
}

func decodeBase64URL(s string) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

// RecipientProfile is the state of one recipient, rebuilt from its stream:
// profile, preferences and push subscriptions. The zero value means "nothing
// is known about this recipient", and planning treats it as no profile.
// Like Notification it is a value changed only by EvolveRecipient.
type RecipientProfile struct {
	id          RecipientID
	exists      bool
	version     int
	createdAt   time.Time
	updatedAt   time.Time
	details     RecipientDetails
	detailsSet  bool
	location    *time.Location // nil: no zone, or one this machine does not know
	prefs       Preferences
	revision    int
	prefsAt     time.Time
	webPush     []WebPushSubscription
	webPushSeen []string // every endpoint ever added, to tell "expired" from "unknown"
}

// ID returns the recipient's ID ("" when nothing is known about it).
func (r RecipientProfile) ID() RecipientID { return r.id }

// Exists reports whether anything was recorded about the recipient.
func (r RecipientProfile) Exists() bool { return r.exists }

// Version returns how many events have been applied: the stream version to
// expect when appending the next ones, and the profile version an audit
// record names.
func (r RecipientProfile) Version() int { return r.version }

// CreatedAt returns the time of the stream's first event.
func (r RecipientProfile) CreatedAt() time.Time { return r.createdAt }

// UpdatedAt returns the time of the stream's latest event.
func (r RecipientProfile) UpdatedAt() time.Time { return r.updatedAt }

// Details returns the profile (the zero value before the first
// RecipientProfileSet).
func (r RecipientProfile) Details() RecipientDetails { return r.details }

// HasDetails reports whether a profile was ever set.
func (r RecipientProfile) HasDetails() bool { return r.detailsSet }

// Location returns the recipient's time zone, and false when it has none or
// the zone is unknown on this machine (then UTC is what planning uses).
func (r RecipientProfile) Location() (*time.Location, bool) {
	if r.location == nil {
		return time.UTC, false
	}
	return r.location, true
}

// Preferences returns a copy of the current preference set.
func (r RecipientProfile) Preferences() Preferences { return r.prefs.normalized() }

// PreferencesRevision returns the number of the current preference set: 0
// before any, then one more for each RecipientPreferencesSet or
// RecipientUnsubscribed.
func (r RecipientProfile) PreferencesRevision() int { return r.revision }

// PreferencesUpdatedAt returns when the preference set last changed.
func (r RecipientProfile) PreferencesUpdatedAt() time.Time { return r.prefsAt }

// WebPushSubscriptions returns the active push subscriptions, oldest first.
// The slice is a copy.
func (r RecipientProfile) WebPushSubscriptions() []WebPushSubscription {
	return slices.Clone(r.webPush)
}

// RecipientCommand is a command DecideRecipient understands. The interface
// is sealed.
type RecipientCommand interface {
	recipientCommand()
}

// SetRecipientProfile replaces the profile. Setting the profile it already
// has is a no-op.
type SetRecipientProfile struct {
	ID      RecipientID
	Profile RecipientDetails
	Actor   string
	Now     time.Time
}

// SetRecipientPreferences replaces the whole preference set. Setting the
// set it already has is a no-op. With CheckRevision, BasedOn is the
// revision the caller edited (HTTP If-Match): if the preferences changed
// since, the command is refused with ErrPreferencesChanged, so an
// unsubscribe made in between is not silently undone.
type SetRecipientPreferences struct {
	ID            RecipientID
	Preferences   Preferences
	CheckRevision bool
	BasedOn       int
	Actor         string
	Now           time.Time
}

// Unsubscribe opts the recipient out of Channel for Category. An empty
// Channel means every channel, an empty Category every category; one of
// them must be set. An unsubscribe already covered by an existing opt-out
// is a no-op. Via says how the recipient asked ("token").
type Unsubscribe struct {
	ID       RecipientID
	Channel  Channel
	Category string
	Via      string
	Now      time.Time
}

// AddWebPushSubscription adds a browser's push subscription. Adding one
// that is active with the same keys is a no-op; new keys for an active
// endpoint replace the old ones.
type AddWebPushSubscription struct {
	ID           RecipientID
	Subscription WebPushSubscription
	Now          time.Time
}

// ExpireWebPushSubscription removes the subscription with Endpoint.
// Expiring one already expired is a no-op; one never added fails with
// ErrWebPushSubscriptionNotFound.
type ExpireWebPushSubscription struct {
	ID       RecipientID
	Endpoint string
	Reason   string
	Now      time.Time
}

func (SetRecipientProfile) recipientCommand()       {}
func (SetRecipientPreferences) recipientCommand()   {}
func (Unsubscribe) recipientCommand()               {}
func (AddWebPushSubscription) recipientCommand()    {}
func (ExpireWebPushSubscription) recipientCommand() {}

// DecideRecipient returns the events cmd causes on state, or an error: a
// *ValidationError naming every bad field, or one wrapping
// ErrRecipientNotFound, ErrPreferencesChanged,
// ErrWebPushSubscriptionNotFound or ErrInvalidCommand. It is pure but for
// the time zone database read that validates a time zone; (nil, nil) means
// the command was already applied. Event times are cmd.Now in UTC. Any
// command may start the stream except ExpireWebPushSubscription.
func DecideRecipient(state RecipientProfile, cmd RecipientCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case SetRecipientProfile:
		return decideSetProfile(state, c)
	case SetRecipientPreferences:
		return decideSetPreferences(state, c)
	case Unsubscribe:
		return decideUnsubscribe(state, c)
	case AddWebPushSubscription:
		return decideAddWebPush(state, c)
	case ExpireWebPushSubscription:
		return decideExpireWebPush(state, c)
	}
	return nil, fmt.Errorf("decide recipient: unsupported command %T: %w", cmd, ErrInvalidCommand)
}

// checkRecipient refuses a command whose ID is malformed or names another
// recipient than the state.
func checkRecipient(op string, r RecipientProfile, id RecipientID) error {
	if !id.Valid() {
		return &ValidationError{Fields: []FieldError{{Field: "id", Problem: fmt.Sprintf(
			"must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.', '-', '@', ':', starting with a letter or digit", MaxRecipientIDLen)}}}
	}
	if r.exists && r.id != id {
		return fmt.Errorf("%s %s: state of recipient %s: %w", op, id, r.id, ErrInvalidCommand)
	}
	return nil
}

func decideSetProfile(r RecipientProfile, c SetRecipientProfile) ([]Event, error) {
	if err := checkRecipient("set recipient profile", r, c.ID); err != nil {
		return nil, err
	}
	if r.detailsSet && r.details == c.Profile {
		return nil, nil
	}
	if err := c.Profile.Validate(); err != nil {
		return nil, err
	}
	return []Event{RecipientProfileSet{RecipientID: c.ID, Profile: c.Profile, Actor: c.Actor, SetAt: c.Now.UTC()}}, nil
}

func decideSetPreferences(r RecipientProfile, c SetRecipientPreferences) ([]Event, error) {
	const op = "set recipient preferences"
	if err := checkRecipient(op, r, c.ID); err != nil {
		return nil, err
	}
	if c.CheckRevision && c.BasedOn != r.revision {
		return nil, fmt.Errorf("%s %s: based on revision %d, current is %d: %w", op, c.ID, c.BasedOn, r.revision, ErrPreferencesChanged)
	}
	if r.revision > 0 && samePreferences(r.prefs, c.Preferences) {
		return nil, nil
	}
	if err := c.Preferences.Validate(); err != nil {
		return nil, err
	}
	return []Event{RecipientPreferencesSet{
		RecipientID: c.ID, Revision: r.revision + 1, Preferences: c.Preferences.normalized(),
		Actor: c.Actor, SetAt: c.Now.UTC(),
	}}, nil
}

func decideUnsubscribe(r RecipientProfile, c Unsubscribe) ([]Event, error) {
	if err := checkRecipient("unsubscribe", r, c.ID); err != nil {
		return nil, err
	}
	var v validator
	if c.Channel != "" && !c.Channel.Valid() {
		v.add("channel", fmt.Sprintf("unknown channel %q", c.Channel))
	}
	if !validCategory(c.Category) {
		v.add("category", fmt.Sprintf("must be at most %d characters of a-z, 0-9, '_', '.', '-'", MaxCategoryLen))
	}
	if c.Channel == "" && c.Category == "" {
		v.add("channel", "a channel or a category is required")
	}
	if len(c.Via) > MaxUnsubscribeViaLen {
		v.add("via", fmt.Sprintf("must be at most %d characters", MaxUnsubscribeViaLen))
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	if _, covered := r.prefs.optedOut(c.Channel, c.Category); covered {
		return nil, nil
	}
	return []Event{RecipientUnsubscribed{
		RecipientID: c.ID, Revision: r.revision + 1, Channel: c.Channel, Category: c.Category,
		Via: c.Via, UnsubscribedAt: c.Now.UTC(),
	}}, nil
}

func decideAddWebPush(r RecipientProfile, c AddWebPushSubscription) ([]Event, error) {
	if err := checkRecipient("add web push subscription", r, c.ID); err != nil {
		return nil, err
	}
	if err := c.Subscription.Validate(); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(r.webPush, func(s WebPushSubscription) bool { return s.Endpoint == c.Subscription.Endpoint })
	switch {
	case i >= 0 && r.webPush[i] == c.Subscription:
		return nil, nil
	case i < 0 && len(r.webPush) >= MaxWebPushSubscriptions:
		return nil, &ValidationError{Fields: []FieldError{{Field: "endpoint", Problem: fmt.Sprintf(
			"the recipient already has %d subscriptions; expire one first", MaxWebPushSubscriptions)}}}
	}
	return []Event{WebPushSubscriptionAdded{RecipientID: c.ID, Subscription: c.Subscription, AddedAt: c.Now.UTC()}}, nil
}

func decideExpireWebPush(r RecipientProfile, c ExpireWebPushSubscription) ([]Event, error) {
	const op = "expire web push subscription"
	if err := checkRecipient(op, r, c.ID); err != nil {
		return nil, err
	}
	switch {
	case !r.exists:
		return nil, fmt.Errorf("%s %s: %w", op, c.ID, ErrRecipientNotFound)
	case len(c.Reason) > MaxSubscriptionReasonLen:
		return nil, &ValidationError{Fields: []FieldError{{Field: "reason", Problem: fmt.Sprintf("must be at most %d characters", MaxSubscriptionReasonLen)}}}
	}
	active := slices.ContainsFunc(r.webPush, func(s WebPushSubscription) bool { return s.Endpoint == c.Endpoint })
	switch {
	case active:
	case slices.Contains(r.webPushSeen, c.Endpoint):
		return nil, nil
	default:
		return nil, fmt.Errorf("%s %s: %w", op, c.ID, ErrWebPushSubscriptionNotFound)
	}
	return []Event{WebPushSubscriptionExpired{RecipientID: c.ID, Endpoint: c.Endpoint, Reason: c.Reason, ExpiredAt: c.Now.UTC()}}, nil
}

// EvolveRecipient returns state with e applied. Every event counts towards
// Version, including ones this aggregate does not know (they are otherwise
// ignored), so Version always equals the stream's version. Slices are
// copied on change, so a state kept by a caller never sees later events.
func EvolveRecipient(state RecipientProfile, e Event) RecipientProfile {
	e = recipientValueEvent(e)
	if e == nil {
		return state
	}
	r := state
	r.version++
	var (
		id RecipientID
		at time.Time
	)
	switch ev := e.(type) {
	case RecipientProfileSet:
		id, at = ev.RecipientID, ev.SetAt
		r.details, r.detailsSet = ev.Profile, true
		r.location = nil
		if loc, err := loadZone(ev.Profile.TimeZone); err == nil {
			r.location = loc
		}
	case RecipientPreferencesSet:
		id, at = ev.RecipientID, ev.SetAt
		r.prefs, r.revision, r.prefsAt = ev.Preferences.normalized(), ev.Revision, ev.SetAt
	case RecipientUnsubscribed:
		id, at = ev.RecipientID, ev.UnsubscribedAt
		r.prefs = r.prefs.normalized()
		r.prefs.OptOuts = append(r.prefs.OptOuts, OptOut{Channel: ev.Channel, Category: ev.Category})
		r.revision, r.prefsAt = ev.Revision, ev.UnsubscribedAt
	case WebPushSubscriptionAdded:
		id, at = ev.RecipientID, ev.AddedAt
		subs := slices.DeleteFunc(slices.Clone(r.webPush), func(s WebPushSubscription) bool {
			return s.Endpoint == ev.Subscription.Endpoint
		})
		r.webPush = append(subs, ev.Subscription)
		if !slices.Contains(r.webPushSeen, ev.Subscription.Endpoint) {
			r.webPushSeen = append(slices.Clip(r.webPushSeen), ev.Subscription.Endpoint)
		}
	case WebPushSubscriptionExpired:
		id, at = ev.RecipientID, ev.ExpiredAt
		r.webPush = slices.DeleteFunc(slices.Clone(r.webPush), func(s WebPushSubscription) bool { return s.Endpoint == ev.Endpoint })
	default:
		return r
	}
	if !r.exists {
		r.id, r.exists, r.createdAt = id, true, at
	}
	r.updatedAt = at
	return r
}
