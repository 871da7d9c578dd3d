package domain

import "time"

// The stable event type names of the RecipientProfile aggregate.
const (
	TypeRecipientProfileSet        = "RecipientProfileSet"
	TypeRecipientPreferencesSet    = "RecipientPreferencesSet"
	TypeRecipientUnsubscribed      = "RecipientUnsubscribed"
	TypeWebPushSubscriptionAdded   = "WebPushSubscriptionAdded"
	TypeWebPushSubscriptionExpired = "WebPushSubscriptionExpired"
)

// RecipientEventTypes returns every event type name of the RecipientProfile
// aggregate, in a fixed order. They are not part of EventTypes, which lists
// the Notification aggregate's events. The slice is fresh on every call.
func RecipientEventTypes() []string {
	return []string{
		TypeRecipientProfileSet, TypeRecipientPreferencesSet, TypeRecipientUnsubscribed,
		TypeWebPushSubscriptionAdded, TypeWebPushSubscriptionExpired,
	}
}

// RecipientProfileSet replaces the recipient's addresses, locale and time
// zone with Profile, stored validated. The first event of any kind starts
// the stream, so a recipient may have preferences before a profile.
type RecipientProfileSet struct {
	RecipientID RecipientID      `json:"recipient_id"`
	Profile     RecipientDetails `json:"profile"`
	Actor       string           `json:"actor"`
	SetAt       time.Time        `json:"set_at"`
}

// RecipientPreferencesSet replaces the recipient's whole preference set
// with Preferences, stored validated and normalized. Revision numbers the
// preference sets of the recipient (1, 2, ...), counting unsubscribes too,
// so an audit record can name the exact set a send was decided under.
type RecipientPreferencesSet struct {
	RecipientID RecipientID `json:"recipient_id"`
	Revision    int         `json:"revision"`
	Preferences Preferences `json:"preferences"`
	Actor       string      `json:"actor"`
	SetAt       time.Time   `json:"set_at"`
}

// RecipientUnsubscribed adds one opt-out (Channel, Category, either may be
// empty meaning "every") to the preferences, making revision Revision. Via
// says how the recipient asked ("token": a signed unsubscribe link).
type RecipientUnsubscribed struct {
	RecipientID    RecipientID `json:"recipient_id"`
	Revision       int         `json:"revision"`
	Channel        Channel     `json:"channel,omitempty"`
	Category       string      `json:"category,omitempty"`
	Via            string      `json:"via"`
	UnsubscribedAt time.Time   `json:"unsubscribed_at"`
}

// WebPushSubscriptionAdded adds Subscription, or replaces the keys of the
// subscription with the same endpoint (a browser that re-subscribed).
type WebPushSubscriptionAdded struct {
	RecipientID  RecipientID         `json:"recipient_id"`
	Subscription WebPushSubscription `json:"subscription"`
	AddedAt      time.Time           `json:"added_at"`
}

// WebPushSubscriptionExpired removes the subscription with Endpoint: the
// push service said it is gone (HTTP 404 or 410), or the recipient
// unsubscribed in the browser.
type WebPushSubscriptionExpired struct {
	RecipientID RecipientID `json:"recipient_id"`
	Endpoint    string      `json:"endpoint"`
	Reason      string      `json:"reason,omitempty"`
	ExpiredAt   time.Time   `json:"expired_at"`
}

// EventType returns TypeRecipientProfileSet.
func (RecipientProfileSet) EventType() string { return TypeRecipientProfileSet }

// EventType returns TypeRecipientPreferencesSet.
func (RecipientPreferencesSet) EventType() string { return TypeRecipientPreferencesSet }

// EventType returns TypeRecipientUnsubscribed.
func (RecipientUnsubscribed) EventType() string { return TypeRecipientUnsubscribed }

// EventType returns TypeWebPushSubscriptionAdded.
func (WebPushSubscriptionAdded) EventType() string { return TypeWebPushSubscriptionAdded }

// EventType returns TypeWebPushSubscriptionExpired.
func (WebPushSubscriptionExpired) EventType() string { return TypeWebPushSubscriptionExpired }

// recipientValueEvent turns a pointer to a recipient event into the value,
// the way valueEvent does for the notification events. A nil pointer
// becomes nil.
func recipientValueEvent(e Event) Event {
	switch p := e.(type) {
	case *RecipientProfileSet:
		return deref(p)
	case *RecipientPreferencesSet:
		return deref(p)
	case *RecipientUnsubscribed:
		return deref(p)
	case *WebPushSubscriptionAdded:
		return deref(p)
	case *WebPushSubscriptionExpired:
		return deref(p)
	}
	return e
}
