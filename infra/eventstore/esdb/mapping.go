package esdb

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"herald/infra/eventstore"
)

// expectedRevision maps the port's expectation onto EventStoreDB's: port
// versions count events from 1, revisions from 0.
func expectedRevision(e eventstore.ExpectedVersion) esdb.ExpectedRevision {
	v, ok := e.Version()
	switch {
	case !ok:
		return esdb.Any{}
	case v == 0:
		return esdb.NoStream{}
	default:
		return esdb.Revision(v - 1)
	}
}

// versionOf is the port version of the event at revision rev.
func versionOf(rev uint64) uint64 { return rev + 1 }

// firstRevisionAfter is the revision of the event with version after+1, the
// first one a read "after version after" returns.
func firstRevisionAfter(after uint64) esdb.StreamRevision { return esdb.Revision(after) }

// maxLogPosition is the largest position an EventStoreDB log can hold: the
// server keeps positions as signed 64-bit numbers.
const maxLogPosition = math.MaxInt64

// allFrom is where a forward read or subscription of $all starts for the
// port position after. Reads from a position are inclusive on the server, so
// callers still drop the event at after itself.
func allFrom(after eventstore.Position) esdb.AllPosition {
	switch {
	case after == 0:
		return esdb.Start{}
	case after > maxLogPosition:
		return esdb.End{}
	default:
		return esdb.Position{Commit: uint64(after), Prepare: uint64(after)}
	}
}

// positionOf is the port position of an event the server returned: its
// commit position. The server sends the all-ones value (its -1) when it does
// not know a position; then the prepare position, equal to the commit
// position for every event this package writes, stands in, and 0 says
// "unknown" when neither is known.
func positionOf(p esdb.Position) eventstore.Position {
	switch {
	case p.Commit <= maxLogPosition:
		return eventstore.Position(p.Commit)
	case p.Prepare <= maxLogPosition:
		return eventstore.Position(p.Prepare)
	default:
		return 0
	}
}

// isSystemType reports whether an event type is EventStoreDB's own (stream
// metadata, links, statistics, subscription checkpoints, ...): those are not
// part of Herald's log.
func isSystemType(eventType string) bool { return strings.HasPrefix(eventType, "$") }

// checkStream refuses stream names the server would change or hide.
func checkStream(stream string) error {
	switch {
	case stream == "":
		return fmt.Errorf("%w: empty stream name", eventstore.ErrInvalidEvent)
	case !utf8.ValidString(stream):
		return fmt.Errorf("%w: stream name %q is not UTF-8", eventstore.ErrInvalidEvent, stream)
	case strings.HasPrefix(stream, "$"):
		return fmt.Errorf("%w: stream name %q is reserved for EventStoreDB (starts with $)", eventstore.ErrInvalidEvent, stream)
	}
	return nil
}

// checkEvent validates e beyond eventstore.EventData.Validate and returns its
// id as a UUID.
func checkEvent(e *eventstore.EventData) (uuid.UUID, error) {
	if err := e.Validate(); err != nil {
		return uuid.UUID{}, err
	}
	id, err := uuid.Parse(e.ID)
	if err != nil || id.String() != e.ID {
		// Only the canonical form survives the round trip through the
		// server's 16-byte id unchanged.
		return uuid.UUID{}, fmt.Errorf("%w %s: id is not a UUID in canonical form", eventstore.ErrInvalidEvent, e.ID)
	}
	switch {
	case !utf8.ValidString(e.Type):
		return uuid.UUID{}, fmt.Errorf("%w %s: type %q is not UTF-8", eventstore.ErrInvalidEvent, e.ID, e.Type)
	case isSystemType(e.Type):
		return uuid.UUID{}, fmt.Errorf("%w %s: type %q is reserved for EventStoreDB (starts with $)", eventstore.ErrInvalidEvent, e.ID, e.Type)
	}
	for _, f := range [...]string{e.Metadata.CorrelationID, e.Metadata.CausationID, e.Metadata.Actor} {
		if !utf8.ValidString(f) {
			return uuid.UUID{}, fmt.Errorf("%w %s: metadata is not UTF-8", eventstore.ErrInvalidEvent, e.ID)
		}
	}
	return id, nil
}

// wrongVersionActual reads the stream's version out of a wrong expected
// version error. The client (v4.2.0) keeps the server's current revision only
// in the message of the error it wraps:
//
//	wrong expected version: expecting '<expected>' but got '<current>'
//
// where <current> is a revision or "no_stream". ok is false when err is not
// such an error or the message has another shape.
func wrongVersionActual(err error) (actual uint64, ok bool) {
	var e *esdb.Error
	if !errors.As(err, &e) || e == nil || e.Code() != esdb.ErrorCodeWrongExpectedVersion || e.Err() == nil {
		return 0, false
	}
	msg := e.Err().Error()
	const marker = "but got '"
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return 0, false
	}
	rest := msg[i+len(marker):]
	j := strings.IndexByte(rest, '\'')
	if j < 0 {
		return 0, false
	}
	current := rest[:j]
	if current == "no_stream" {
		return 0, true
	}
	rev, perr := strconv.ParseUint(current, 10, 64)
	if perr != nil {
		return 0, false
	}
	return versionOf(rev), true
}

// isWrongVersion reports whether err is the server refusing an expected
// revision.
func isWrongVersion(err error) bool {
	code, ok := errorCode(err)
	return ok && code == esdb.ErrorCodeWrongExpectedVersion
}

// isStreamMissing reports whether err says a stream has no events: never
// written, or deleted.
func isStreamMissing(err error) bool {
	code, ok := errorCode(err)
	return ok && (code == esdb.ErrorCodeResourceNotFound || code == esdb.ErrorCodeStreamDeleted)
}
