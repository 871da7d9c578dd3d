package esdb

// White-box tests of the translations between the port and EventStoreDB:
// they need no server, and the functions they test are unexported on
// purpose.

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"herald/infra/eventstore"
)

// clientError builds an *esdb.Error as the client does inside its package
// (&Error{code: ..., err: ...}); its fields are unexported, so the test
// relies on the struct's layout, which TestClientErrorLayout guards.
func clientError(code esdb.ErrorCode, inner error) *esdb.Error {
	type layout struct {
		code esdb.ErrorCode
		err  error
	}
	return (*esdb.Error)(unsafe.Pointer(&layout{code: code, err: inner}))
}

// wrongVersionError is the error AppendToStream returns (client v4.2.0,
// client.go) when the server refuses the expected revision.
func wrongVersionError(expected, current string) error {
	return clientError(esdb.ErrorCodeWrongExpectedVersion,
		fmt.Errorf("wrong expected version: expecting '%s' but got '%s'", expected, current))
}

func TestClientErrorLayout(t *testing.T) {
	t.Parallel()
	inner := errors.New("inner")
	e := clientError(esdb.ErrorCodeStreamDeleted, inner)
	if e.Code() != esdb.ErrorCodeStreamDeleted || e.Err() != inner || !errors.Is(e, inner) {
		t.Fatalf("built error has code %d and inner %v: the layout of esdb.Error changed", e.Code(), e.Err())
	}
}

func TestExpectedRevision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		expected eventstore.ExpectedVersion
		want     esdb.ExpectedRevision
	}{
		{eventstore.Any, esdb.Any{}},
		{eventstore.NoStream, esdb.NoStream{}},
		{eventstore.Exactly(0), esdb.NoStream{}},
		{eventstore.Exactly(1), esdb.Revision(0)},
		{eventstore.Exactly(2), esdb.Revision(1)},
		{eventstore.Exactly(130), esdb.Revision(129)},
		{eventstore.Exactly(math.MaxInt64), esdb.Revision(math.MaxInt64 - 1)},
	}
	for _, tc := range tests {
		if got := expectedRevision(tc.expected); got != tc.want {
			t.Errorf("expectedRevision(%s) = %#v, want %#v", tc.expected, got, tc.want)
		}
	}
}

func TestVersionsAndRevisions(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 2, 9, 1 << 40} {
		// Reading after version v starts at the event with version v+1.
		rev := firstRevisionAfter(v).Value
		if got := versionOf(rev); got != v+1 {
			t.Errorf("after version %d: first revision %d has version %d, want %d", v, rev, got, v+1)
		}
		// An exact expectation names the revision of the stream's
		// last event, whose version is the expectation.
		if v > 0 {
			r := expectedRevision(eventstore.Exactly(v)).(esdb.StreamRevision)
			if versionOf(r.Value) != v {
				t.Errorf("Exactly(%d) maps to revision %d, whose version is %d", v, r.Value, versionOf(r.Value))
			}
		}
	}
}

func TestAllFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		after eventstore.Position
		want  esdb.AllPosition
	}{
		{0, esdb.Start{}},
		{1, esdb.Position{Commit: 1, Prepare: 1}},
		{123456, esdb.Position{Commit: 123456, Prepare: 123456}},
		{math.MaxInt64, esdb.Position{Commit: math.MaxInt64, Prepare: math.MaxInt64}},
		{math.MaxInt64 + 1, esdb.End{}},
		{math.MaxUint64, esdb.End{}},
	}
	for _, tc := range tests {
		if got := allFrom(tc.after); got != tc.want {
			t.Errorf("allFrom(%d) = %#v, want %#v", tc.after, got, tc.want)
		}
	}
}

func TestPositionOf(t *testing.T) {
	t.Parallel()
	const unknown = math.MaxUint64 // the server's -1
	tests := []struct {
		in   esdb.Position
		want eventstore.Position
	}{
		{esdb.Position{Commit: 4096, Prepare: 4096}, 4096},
		{esdb.Position{Commit: 8192, Prepare: 4096}, 8192}, // commit order rules
		{esdb.Position{Commit: unknown, Prepare: 777}, 777},
		{esdb.Position{Commit: unknown, Prepare: unknown}, 0},
		{esdb.Position{}, 0},
	}
	for _, tc := range tests {
		if got := positionOf(tc.in); got != tc.want {
			t.Errorf("positionOf(%+v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestWrongVersionActual(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		err    error
		want   uint64
		wantOK bool
	}{
		{"Behind", wrongVersionError("1", "2"), 3, true},
		{"Ahead", wrongVersionError("3", "2"), 3, true},
		{"NoStreamOnExisting", wrongVersionError("no_stream", "2"), 3, true},
		{"ExactOnNew", wrongVersionError("4", "no_stream"), 0, true},
		{"FirstEvent", wrongVersionError("no_stream", "0"), 1, true},
		{"Wrapped", fmt.Errorf("append: %w", wrongVersionError("1", "7")), 8, true},
		{"OtherWording", clientError(esdb.ErrorCodeWrongExpectedVersion, errors.New("conflict")), 0, false},
		{"NoInner", clientError(esdb.ErrorCodeWrongExpectedVersion, nil), 0, false},
		{"NotANumber", wrongVersionError("1", "many"), 0, false},
		{"OtherCode", clientError(esdb.ErrorCodeResourceNotFound, errors.New("but got '3'")), 0, false},
		{"NotAClientError", errors.New("wrong expected version: expecting '1' but got '2'"), 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := wrongVersionActual(tc.err)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("wrongVersionActual(%v) = %d, %v; want %d, %v", tc.err, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                         string
		err                          error
		wrongVersion, missing, final bool
	}{
		{"WrongVersion", wrongVersionError("1", "2"), true, false, false},
		{"StreamNotFound", clientError(esdb.ErrorCodeResourceNotFound, errors.New("stream 'x' is not found")), false, true, false},
		{"StreamDeleted", fmt.Errorf("read: %w", clientError(esdb.ErrorCodeStreamDeleted, nil)), false, true, false},
		{"AccessDenied", clientError(esdb.ErrorCodeAccessDenied, nil), false, false, true},
		{"Unauthenticated", clientError(esdb.ErrorCodeUnauthenticated, nil), false, false, true},
		{"ConnectionClosed", clientError(esdb.ErrorCodeConnectionClosed, nil), false, false, true},
		{"Unavailable", clientError(esdb.ErrorUnavailable, nil), false, false, false},
		{"NotLeader", clientError(esdb.ErrorCodeNotLeader, nil), false, false, false},
		{"Plain", errors.New("network"), false, false, false},
	}
	for _, tc := range tests {
		if got := isWrongVersion(tc.err); got != tc.wrongVersion {
			t.Errorf("%s: isWrongVersion = %v", tc.name, got)
		}
		if got := isStreamMissing(tc.err); got != tc.missing {
			t.Errorf("%s: isStreamMissing = %v", tc.name, got)
		}
		if got := permanent(tc.err); got != tc.final {
			t.Errorf("%s: permanent = %v", tc.name, got)
		}
	}
	if err := permanentError(clientError(esdb.ErrorCodeConnectionClosed, nil)); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("a closed client gives %v, want ErrClosed", err)
	}
}

func TestCheckStream(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"notification-1", "unicode-żółć-✓", "with spaces", "control-\t-\n"} {
		if err := checkStream(ok); err != nil {
			t.Errorf("checkStream(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "$all", "$ce-notification", "not-utf8-\xff\xfe"} {
		if err := checkStream(bad); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("checkStream(%q) = %v, want ErrInvalidEvent", bad, err)
		}
	}
}

func TestCheckEvent(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7())
	good := func() eventstore.EventData {
		return eventstore.EventData{ID: id.String(), Type: "NotificationQueued", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
	}
	e := good()
	got, err := checkEvent(&e)
	if err != nil || got != id {
		t.Fatalf("checkEvent(good) = %v, %v", got, err)
	}
	tests := []struct {
		name   string
		change func(*eventstore.EventData)
	}{
		{"NoID", func(e *eventstore.EventData) { e.ID = "" }},
		{"NotUUID", func(e *eventstore.EventData) { e.ID = "evt-1" }},
		{"UpperCaseUUID", func(e *eventstore.EventData) { e.ID = strings.ToUpper(e.ID) }},
		{"BracedUUID", func(e *eventstore.EventData) { e.ID = "{" + e.ID + "}" }},
		{"NoType", func(e *eventstore.EventData) { e.Type = "" }},
		{"SystemType", func(e *eventstore.EventData) { e.Type = "$metadata" }},
		{"TypeNotUTF8", func(e *eventstore.EventData) { e.Type = "bad-\xff" }},
		{"ActorNotUTF8", func(e *eventstore.EventData) { e.Metadata.Actor = "bad-\xff" }},
		{"DataNotJSON", func(e *eventstore.EventData) { e.Data = json.RawMessage(`{`) }},
	}
	for _, tc := range tests {
		e := good()
		tc.change(&e)
		if _, err := checkEvent(&e); !errors.Is(err, eventstore.ErrInvalidEvent) {
			t.Errorf("%s: checkEvent = %v, want ErrInvalidEvent", tc.name, err)
		}
	}
}

// recordedFrom is the event the server would return for data appended at
// position pos as revision rev of stream.
func recordedFrom(d esdb.EventData, stream string, rev uint64, pos uint64, created time.Time) *esdb.RecordedEvent {
	return &esdb.RecordedEvent{
		EventID:      d.EventID,
		EventType:    d.EventType,
		ContentType:  "application/json",
		StreamID:     stream,
		EventNumber:  rev,
		Position:     esdb.Position{Commit: pos, Prepare: pos},
		CreatedDate:  created,
		Data:         d.Data,
		UserMetadata: d.Metadata,
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	recordedAt := time.Date(2026, 11, 30, 9, 15, 42, 123456789, time.FixedZone("CET", 3600))
	tests := []eventstore.EventData{
		{
			ID: uuid.Must(uuid.NewV7()).String(), Type: "NotificationQueued", SchemaVersion: 3,
			Data: json.RawMessage(`{"recipient":"alice@example.com", "body":"Grüße ✉"}`),
			Metadata: eventstore.Metadata{
				CorrelationID: "corr-1", CausationID: uuid.Must(uuid.NewV7()).String(), Actor: "user:alice",
			},
		},
		{ID: uuid.Must(uuid.NewV7()).String(), Type: "DeliveryAttempted", SchemaVersion: 0, Data: json.RawMessage(`[]`)},
		{ID: uuid.Must(uuid.NewV7()).String(), Type: "Délivré", SchemaVersion: 12, Data: nil, Metadata: eventstore.Metadata{Actor: "système ✓"}},
	}
	for i, in := range tests {
		id, err := checkEvent(&in)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		d, err := toEventData(&in, id, recordedAt)
		if err != nil {
			t.Fatalf("event %d: encode: %v", i, err)
		}
		if d.ContentType != esdb.ContentTypeJson || d.EventType != in.Type || string(d.Data) != string(in.Data) {
			t.Errorf("event %d: sent as %+v", i, d)
		}
		var raw map[string]any
		if err := json.Unmarshal(d.Metadata, &raw); err != nil {
			t.Fatalf("event %d: metadata %s is not JSON: %v", i, d.Metadata, err)
		}
		if in.Metadata.CorrelationID != "" && raw["$correlationId"] != in.Metadata.CorrelationID {
			t.Errorf("event %d: metadata %s lacks $correlationId", i, d.Metadata)
		}
		if in.Metadata.CausationID != "" && raw["$causationId"] != in.Metadata.CausationID {
			t.Errorf("event %d: metadata %s lacks $causationId", i, d.Metadata)
		}

		created := time.Date(2026, 11, 30, 8, 15, 43, 0, time.UTC)
		got := toRecorded(recordedFrom(d, "notification-7", uint64(i), 4096*uint64(i+1), created))
		want := eventstore.RecordedEvent{
			ID: in.ID, Type: in.Type, Stream: "notification-7", Version: uint64(i + 1),
			Position: eventstore.Position(4096 * (i + 1)), RecordedAt: recordedAt.UTC(),
			SchemaVersion: in.SchemaVersion, Metadata: in.Metadata, Data: in.Data,
		}
		if got.ID != want.ID || got.Type != want.Type || got.Stream != want.Stream || got.Version != want.Version ||
			got.Position != want.Position || got.SchemaVersion != want.SchemaVersion || got.Metadata != want.Metadata ||
			string(got.Data) != string(want.Data) {
			t.Errorf("event %d: round trip gave\n%+v\nwant\n%+v", i, got, want)
		}
		if !got.RecordedAt.Equal(want.RecordedAt) || got.RecordedAt.Location() != time.UTC {
			t.Errorf("event %d: recorded at %v, want %v in UTC", i, got.RecordedAt, want.RecordedAt)
		}
	}
}

func TestForeignMetadata(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, meta := range []string{"", "not json", `{"$correlationId": 5}`} {
		ev := &esdb.RecordedEvent{
			EventID: uuid.Must(uuid.NewV7()), EventType: "Imported", StreamID: "legacy-1",
			EventNumber: 0, Position: esdb.Position{Commit: 10, Prepare: 10}, CreatedDate: created,
			Data: []byte(`{}`), UserMetadata: []byte(meta),
		}
		got := toRecorded(ev)
		if got.Metadata != (eventstore.Metadata{}) || got.SchemaVersion != 0 || !got.RecordedAt.Equal(created) || got.Version != 1 {
			t.Errorf("metadata %q: got %+v", meta, got)
		}
	}
}

func TestSystemTypes(t *testing.T) {
	t.Parallel()
	for typ, want := range map[string]bool{
		"$>": true, "$metadata": true, "$statsCollected": true, "$SubscriptionCheckpoint": true,
		"NotificationQueued": false, "Délivré": false, "a$b": false,
	} {
		if got := isSystemType(typ); got != want {
			t.Errorf("isSystemType(%q) = %v, want %v", typ, got, want)
		}
	}
}
