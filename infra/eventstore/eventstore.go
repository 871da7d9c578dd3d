package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Position is an event's place in the global $all log. Position 0 is before
// the first event.
type Position uint64

// ExpectedVersion is the optimistic concurrency rule of an append: Any,
// NoStream, or Exactly(v).
type ExpectedVersion struct {
	kind    expectKind
	version uint64
}

type expectKind uint8

const (
	expectAny expectKind = iota
	expectNoStream
	expectExact
)

// Any accepts the append whatever the stream's version.
var Any = ExpectedVersion{kind: expectAny}

// NoStream accepts the append only when the stream has no events yet.
var NoStream = ExpectedVersion{kind: expectNoStream}

// Exactly accepts the append only when the stream's version is v. Exactly(0)
// is the same rule as NoStream.
func Exactly(v uint64) ExpectedVersion {
	if v == 0 {
		return NoStream
	}
	return ExpectedVersion{kind: expectExact, version: v}
}

// IsAny reports whether e accepts any version.
func (e ExpectedVersion) IsAny() bool { return e.kind == expectAny }

// Version returns the stream version e requires and whether it requires one.
// NoStream requires version 0.
func (e ExpectedVersion) Version() (uint64, bool) {
	switch e.kind {
	case expectNoStream:
		return 0, true
	case expectExact:
		return e.version, true
	default:
		return 0, false
	}
}

// Allows reports whether a stream currently at version current accepts an
// append under e.
func (e ExpectedVersion) Allows(current uint64) bool {
	v, ok := e.Version()
	return !ok || v == current
}

func (e ExpectedVersion) String() string {
	switch e.kind {
	case expectNoStream:
		return "no-stream"
	case expectExact:
		return fmt.Sprintf("version %d", e.version)
	default:
		return "any"
	}
}

// Metadata is the part of the envelope that says why an event happened and
// who caused it.
type Metadata struct {
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	Actor         string `json:"actor,omitempty"`
}

// EventData is an event to append. ID must be unique across the whole log
// (a UUIDv7 string chosen by the caller). Engines do not deduplicate by ID:
// a retried append is made safe by its expected version, not by its IDs.
// Data is a JSON document.
type EventData struct {
	ID            string
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// RecordedEvent is an event as the log holds it: the envelope the append gave
// it plus the stream version, global position and time of recording. Its
// Data may be shared with other readers of the same event: read it, never
// write to it.
type RecordedEvent struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	Stream        string          `json:"stream"`
	Version       uint64          `json:"version"`
	Position      Position        `json:"position"`
	RecordedAt    time.Time       `json:"recorded_at"`
	SchemaVersion int             `json:"schema_version"`
	Metadata      Metadata        `json:"metadata"`
	Data          json.RawMessage `json:"data"`
}

// AppendResult tells where an append landed: the stream's new version and the
// global position of the append's last event.
type AppendResult struct {
	Version  uint64
	Position Position
}

// AppendRequest is one stream's append inside AppendMany.
type AppendRequest struct {
	Stream   string
	Expected ExpectedVersion
	Events   []EventData
}

// Store is an event log engine. Implementations are safe for concurrent use.
type Store interface {
	// Append adds events to the end of stream if its version satisfies
	// expected. It is atomic and durable when it returns nil. A version
	// mismatch returns an error matching ErrWrongExpectedVersion (a
	// *WrongVersionError). Appending no events checks expected and writes
	// nothing.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...EventData) (AppendResult, error)

	// AppendMany performs several independent appends, as if each were an
	// Append of its own: each request succeeds or fails alone and its error is
	// at the same index of the returned slice. Engines use it to share
	// durability work (one transaction, one fsync) between the requests.
	AppendMany(ctx context.Context, reqs []AppendRequest) ([]AppendResult, []error)

	// ReadStream returns up to limit events of stream with version > after,
	// in version order. A stream with no events gives ErrStreamNotFound.
	ReadStream(ctx context.Context, stream string, after uint64, limit int) ([]RecordedEvent, error)

	// ReadAll returns up to limit events of the $all log with position >
	// after, in commit order.
	ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error)

	// Head returns the position of the last committed event (0 when empty).
	Head(ctx context.Context) (Position, error)

	// Subscribe follows the $all log from the event after position after:
	// first what is already committed, then live appends, each event once and
	// in commit order. The subscription ends when ctx ends or it is closed.
	Subscribe(ctx context.Context, after Position) (Subscription, error)

	// Close releases the store. Appends in progress finish or fail first.
	Close() error
}

// StreamVersionReader is implemented by engines that can tell the current
// versions of many streams in one round trip. Callers that check many
// streams at once (a fan-out planning a thousand recipients, most without
// a profile) use it when the Store has it and read stream by stream when
// not; StreamVersions is this choice.
type StreamVersionReader interface {
	// StreamVersions returns the version of each of streams that exists;
	// a stream with no events is left out of the map.
	StreamVersions(ctx context.Context, streams []string) (map[string]uint64, error)
}

// StreamVersions returns the current version of each of streams that
// exists, in one call when s is a StreamVersionReader and by reading the
// last event of each stream otherwise.
func StreamVersions(ctx context.Context, s Store, streams []string) (map[string]uint64, error) {
	if r, ok := s.(StreamVersionReader); ok {
		return r.StreamVersions(ctx, streams)
	}
	out := make(map[string]uint64, len(streams))
	for _, stream := range streams {
		var after uint64
		for {
			recs, err := s.ReadStream(ctx, stream, after, 4096)
			if errors.Is(err, ErrStreamNotFound) {
				break
			}
			if err != nil {
				return nil, err
			}
			if len(recs) > 0 {
				after = recs[len(recs)-1].Version
				out[stream] = after
			}
			if len(recs) < 4096 {
				break
			}
		}
	}
	return out, nil
}

// Subscription is a catch-up subscription to the $all log.
type Subscription interface {
	// Next blocks until at least one event after the last one returned has
	// been committed, then returns the next events in commit order (a batch,
	// never empty). It returns ctx.Err() when ctx ends and ErrClosed after
	// Close.
	Next(ctx context.Context) ([]RecordedEvent, error)
	// Close ends the subscription; it is safe to call more than once.
	Close() error
}

var (
	// ErrWrongExpectedVersion means an append's expected version did not
	// match the stream. Errors returned for it are *WrongVersionError.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrStreamNotFound means the stream has no events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrClosed means the store or subscription has been closed.
	ErrClosed = errors.New("event store closed")
	// ErrInvalidEvent means an event to append is malformed (no id, no type,
	// data that is not JSON).
	ErrInvalidEvent = errors.New("invalid event")
)

// WrongVersionError says which version a failed append expected and which
// the stream had.
type WrongVersionError struct {
	Stream   string
	Expected ExpectedVersion
	Actual   uint64
}

func (e *WrongVersionError) Error() string {
	return fmt.Sprintf("append to %s: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Unwrap makes errors.Is(err, ErrWrongExpectedVersion) true.
func (e *WrongVersionError) Unwrap() error { return ErrWrongExpectedVersion }

// Validate checks the parts of an event that every engine relies on.
func (e EventData) Validate() error {
	switch {
	case e.ID == "":
		return fmt.Errorf("%w: missing id", ErrInvalidEvent)
	case e.Type == "":
		return fmt.Errorf("%w %s: missing type", ErrInvalidEvent, e.ID)
	case len(e.Data) > 0 && !validJSON(e.Data):
		return fmt.Errorf("%w %s: data is not JSON", ErrInvalidEvent, e.ID)
	}
	return nil
}
