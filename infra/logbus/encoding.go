package logbus

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Metadata keys of the event envelope. The Subscriber sets them on every
// message it emits; the Publisher reads MetaType, MetaSchemaVersion,
// MetaCorrelationID, MetaCausationID and MetaActor into the envelope of the
// event it appends and ignores the others, which only the log can assign.
const (
	// MetaType is the event type. A published message without it becomes
	// an event of type DefaultEventType.
	MetaType = "type"
	// MetaStream is the stream the event belongs to.
	MetaStream = "stream"
	// MetaVersion is the event's version within its stream, in decimal.
	MetaVersion = "version"
	// MetaPosition is the event's global position in the log, in decimal.
	MetaPosition = "position"
	// MetaRecordedAt is when the log recorded the event, RFC 3339 with
	// nanoseconds, in UTC.
	MetaRecordedAt = "recorded_at"
	// MetaSchemaVersion is the version of the layout of the event data, in
	// decimal.
	MetaSchemaVersion = "schema_version"
	// MetaCorrelationID is the envelope's correlation id. It is the key
	// watermill's CorrelationID middleware uses, so the two agree.
	MetaCorrelationID = "correlation_id"
	// MetaCausationID is the envelope's causation id.
	MetaCausationID = "causation_id"
	// MetaActor is who caused the event.
	MetaActor = "actor"
)

// DefaultEventType is the event type of a published message that carries
// no MetaType.
const DefaultEventType = "message"

// The event store holds only JSON data and only the envelope's fields, while
// a watermill message may carry any bytes, any metadata and any UUID. A
// message the envelope can hold as it is (a JSON payload, a canonical UUID,
// no metadata beyond the envelope keys) is appended with its payload as the
// event data, byte for byte, so domain events pass through unchanged. Any
// other message is appended wrapped:
//
//	{"$logbus":1,"uuid":"…","metadata":{…},"json":<payload>}
//	{"$logbus":1,"uuid":"…","metadata":{…},"bytes":"<base64 payload>"}
//
// where uuid is present only when the message UUID is not the event id,
// metadata only when there is some, and the payload goes into "json"
// verbatim when it is JSON without surrounding whitespace (so that decoding
// gives back the very same bytes) and into "bytes" otherwise (none of the
// two for an empty payload). A JSON payload that itself begins with the
// wrapper's prefix is wrapped too, so the Subscriber can unwrap every event
// that begins with it. The wrapper's first member is the encoding version.
var wrapPrefix = []byte(`{"$logbus":`)

const wrapVersion = 1

type wrapper struct {
	Version  int               `json:"$logbus"`
	UUID     *string           `json:"uuid"`
	Metadata map[string]string `json:"metadata"`
	JSON     json.RawMessage   `json:"json"`
	Bytes    []byte            `json:"bytes"`
}

// isWrapped reports whether event data was written by wrap.
func isWrapped(data []byte) bool { return bytes.HasPrefix(data, wrapPrefix) }

// wrap encodes a message the envelope cannot hold as it is. uuid is nil
// when the message UUID is the event id.
func wrap(uuid *string, metadata map[string]string, payload []byte) ([]byte, error) {
	buf := make([]byte, 0, 64+len(payload)*4/3)
	buf = append(buf, wrapPrefix...)
	buf = strconv.AppendInt(buf, wrapVersion, 10)
	if uuid != nil {
		b, err := json.Marshal(*uuid)
		if err != nil {
			return nil, err
		}
		buf = append(buf, `,"uuid":`...)
		buf = append(buf, b...)
	}
	if len(metadata) > 0 {
		b, err := json.Marshal(metadata)
		if err != nil {
			return nil, err
		}
		buf = append(buf, `,"metadata":`...)
		buf = append(buf, b...)
	}
	switch {
	case len(payload) == 0:
	case json.Valid(payload) && !isJSONSpace(payload[0]) && !isJSONSpace(payload[len(payload)-1]):
		buf = append(buf, `,"json":`...)
		buf = append(buf, payload...)
	default:
		buf = append(buf, `,"bytes":"`...)
		buf = base64.StdEncoding.AppendEncode(buf, payload)
		buf = append(buf, '"')
	}
	return append(buf, '}'), nil
}

// unwrap decodes data written by wrap.
func unwrap(data []byte) (wrapper, error) {
	var w wrapper
	if err := json.Unmarshal(data, &w); err != nil {
		return wrapper{}, fmt.Errorf("decode wrapped message: %w", err)
	}
	if w.Version != wrapVersion {
		return wrapper{}, fmt.Errorf("decode wrapped message: unknown encoding version %d", w.Version)
	}
	if w.JSON != nil && w.Bytes != nil {
		return wrapper{}, errors.New("decode wrapped message: both json and bytes payloads")
	}
	return w, nil
}

func (w *wrapper) payload() []byte {
	if w.JSON != nil {
		return w.JSON
	}
	return w.Bytes
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// isCanonicalUUID reports whether s is a UUID in the lower-case 8-4-4-4-12
// form, the only form the log keeps as an event id: an engine that stores
// ids as UUIDs (EventStoreDB) gives back exactly this form, so the message
// UUID survives the round trip.
func isCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
