package domain

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	fastjson "github.com/segmentio/encoding/json"
)

// Events are encoded and decoded with segmentio/encoding/json, a
// reimplementation of encoding/json's rules (same struct tags, same
// Marshaler and Unmarshaler methods, json.Number, sorted map keys; its
// error types are encoding/json's) that builds a codec once per type
// instead of walking every value with reflection.
// The log is written once and read by every projection, follower and
// replay: decoding a NotificationRequested took 13 µs with encoding/json's
// Decoder and 4.7 µs with this package. The golden files in
// testdata/events hold the encoding byte for byte.

// EventSchemaVersion is the version of the JSON layout MarshalEvent writes.
// Bump it (and teach UnmarshalEvent the old layout) whenever a field changes
// meaning or is removed; adding an optional field does not need a bump.
const EventSchemaVersion = 1

// MarshalEvent encodes e as a JSON object holding "schema_version" followed by
// the event's own fields, and returns it with e's type name. A pointer to an
// event is encoded like the value. Unknown event types are refused with
// ErrUnknownEventType so nothing is written that UnmarshalEvent cannot read.
func MarshalEvent(e Event) (eventType string, data []byte, err error) {
	e = valueEvent(e)
	if e == nil {
		return "", nil, fmt.Errorf("marshal event: nil event: %w", ErrUnknownEventType)
	}
	eventType = e.EventType()
	if _, ok := newEvent(eventType); !ok {
		return "", nil, fmt.Errorf("marshal event %q: %w", eventType, ErrUnknownEventType)
	}
	// HTML escaping off: event data is stored and shown, never embedded in
	// a page, and "<p>" reads better than "\u003cp\u003e" in an audit trail.
	// The struct is encoded after room for the version prefix, which then
	// takes the place of its opening brace: the version belongs to the
	// encoding, not to every event struct.
	prefix := currentSchemaPrefix
	buf := make([]byte, len(prefix)-1, 512)
	buf, err = fastjson.Append(buf, e, fastjson.SortMapKeys)
	if err != nil {
		return "", nil, fmt.Errorf("marshal event %q: %w", eventType, err)
	}
	body := buf[len(prefix)-1:]
	if len(body) < 2 || body[0] != '{' {
		return "", nil, fmt.Errorf("marshal event %q: encoded as %.20q, not an object", eventType, body)
	}
	copy(buf, prefix)
	if len(body) == 2 { // {}: no fields of its own
		buf = append(buf[:len(prefix)-1], '}')
	}
	return eventType, buf, nil
}

// currentSchemaPrefix is how every event MarshalEvent writes begins.
var currentSchemaPrefix = []byte(`{"schema_version":` + strconv.Itoa(EventSchemaVersion) + `,`)

// UnmarshalEvent decodes data written by MarshalEvent for eventType and
// returns the event as a value (DeliveryPlanned, not *DeliveryPlanned).
// Unknown types fail with ErrUnknownEventType, a missing or unsupported
// schema_version with ErrUnsupportedSchema (both wrapped with the type
// name). Numbers inside template vars decode as json.Number so large
// integers keep their precision.
func UnmarshalEvent(eventType string, data []byte) (Event, error) {
	decode, ok := newEvent(eventType)
	if !ok {
		return nil, fmt.Errorf("unmarshal event %q: %w", eventType, ErrUnknownEventType)
	}
	if err := checkSchema(data); err != nil {
		return nil, fmt.Errorf("unmarshal event %q: %w", eventType, err)
	}
	e, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("unmarshal event %q: %w", eventType, err)
	}
	return e, nil
}

// checkSchema refuses data whose schema_version is missing or not
// EventSchemaVersion. MarshalEvent writes schema_version first, so events
// it wrote are recognised by their first bytes; anything else pays for a
// separate decode of the version.
func checkSchema(data []byte) error {
	if bytes.HasPrefix(data, currentSchemaPrefix) {
		return nil
	}
	var head struct {
		SchemaVersion *int `json:"schema_version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return err
	}
	switch {
	case head.SchemaVersion == nil:
		return fmt.Errorf("missing schema_version: %w", ErrUnsupportedSchema)
	case *head.SchemaVersion != EventSchemaVersion:
		return fmt.Errorf("schema_version %d: %w", *head.SchemaVersion, ErrUnsupportedSchema)
	}
	return nil
}

// RequestedPriority returns the priority of the request in a
// NotificationRequested event's data, as UnmarshalEvent would decode it
// (empty when the request has none), without decoding the rest of the
// request: for a follower that needs only the lane, such as the
// dispatcher's intake, decoding the whole request (its recipient, content,
// variables and metadata) was most of the cost of reading the event.
func RequestedPriority(data []byte) (Priority, error) {
	const op = "unmarshal event " + TypeNotificationRequested + " priority"
	if err := checkSchema(data); err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	var v struct {
		Request struct {
			Priority Priority `json:"priority"`
		} `json:"request"`
	}
	rest, err := fastjson.Parse(data, &v, 0)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("%s: trailing data after event object", op)
	}
	return v.Request.Priority, nil
}

// newEvent returns the decoder for eventType. It is the single list that
// MarshalEvent and UnmarshalEvent agree on.
func newEvent(eventType string) (func([]byte) (Event, error), bool) {
	switch eventType {
	case TypeNotificationRequested:
		return decodeAs[NotificationRequested], true
	case TypeDeliveryPlanned:
		return decodeAs[DeliveryPlanned], true
	case TypeDeliverySuppressed:
		return decodeAs[DeliverySuppressed], true
	case TypeDeliveryAttempted:
		return decodeAs[DeliveryAttempted], true
	case TypeDeliverySucceeded:
		return decodeAs[DeliverySucceeded], true
	case TypeDeliveryFailed:
		return decodeAs[DeliveryFailed], true
	case TypeDeliveryRetryScheduled:
		return decodeAs[DeliveryRetryScheduled], true
	case TypeDeliveryDeadLettered:
		return decodeAs[DeliveryDeadLettered], true
	case TypeDeliveryReceiptRecorded:
		return decodeAs[DeliveryReceiptRecorded], true
	case TypeNotificationRead:
		return decodeAs[NotificationRead], true
	case TypeNotificationCancelled:
		return decodeAs[NotificationCancelled], true
	case TypeNotificationExpired:
		return decodeAs[NotificationExpired], true
	case TypeResendRequested:
		return decodeAs[ResendRequested], true
	case TypeNotificationHeld:
		return decodeAs[NotificationHeld], true
	case TypePolicyApplied:
		return decodeAs[PolicyApplied], true
	case TypeTemplateCreated:
		return decodeAs[TemplateCreated], true
	case TypeTemplateVersionPublished:
		return decodeAs[TemplateVersionPublished], true
	case TypeTemplateArchived:
		return decodeAs[TemplateArchived], true
	case TypeRecipientProfileSet:
		return decodeAs[RecipientProfileSet], true
	case TypeRecipientPreferencesSet:
		return decodeAs[RecipientPreferencesSet], true
	case TypeRecipientUnsubscribed:
		return decodeAs[RecipientUnsubscribed], true
	case TypeWebPushSubscriptionAdded:
		return decodeAs[WebPushSubscriptionAdded], true
	case TypeWebPushSubscriptionExpired:
		return decodeAs[WebPushSubscriptionExpired], true
	case TypeGroupCreated:
		return decodeAs[GroupCreated], true
	case TypeGroupMembersAdded:
		return decodeAs[GroupMembersAdded], true
	case TypeGroupMembersRemoved:
		return decodeAs[GroupMembersRemoved], true
	case TypeGroupArchived:
		return decodeAs[GroupArchived], true
	case TypeBatchRequested:
		return decodeAs[BatchRequested], true
	case TypeBatchAwaitingApproval:
		return decodeAs[BatchAwaitingApproval], true
	case TypeBatchApproved:
		return decodeAs[BatchApproved], true
	case TypeBatchRejected:
		return decodeAs[BatchRejected], true
	case TypeFanOutProgressed:
		return decodeAs[FanOutProgressed], true
	case TypeBatchCompleted:
		return decodeAs[BatchCompleted], true
	case TypeScheduleCreated:
		return decodeAs[ScheduleCreated], true
	case TypeSchedulePaused:
		return decodeAs[SchedulePaused], true
	case TypeScheduleResumed:
		return decodeAs[ScheduleResumed], true
	case TypeScheduleDeleted:
		return decodeAs[ScheduleDeleted], true
	case TypeScheduleFired:
		return decodeAs[ScheduleFired], true
	}
	return nil, false
}

func decodeAs[T Event](data []byte) (Event, error) {
	var v T
	rest, err := fastjson.Parse(data, &v, fastjson.UseNumber)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		return nil, errors.New("trailing data after event object")
	}
	if r, ok := any(&v).(interface{ rightSize() }); ok {
		r.rightSize()
	}
	return v, nil
}

// rightSize gives the request's template vars their own size: the decoder
// makes each map[string]any with room for 64 entries (see sizedCopy), and
// decoded events are held in page caches and state caches by the
// thousand. (Metadata decodes at its own size: see Metadata.UnmarshalJSON.)
func (e *NotificationRequested) rightSize() {
	if e.Request.Template != nil {
		e.Request.Template.Vars = sizedCopy(e.Request.Template.Vars)
	}
}
