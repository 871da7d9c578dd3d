package esdb

import (
	"encoding/json"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"herald/infra/eventstore"
)

// userMetadata is the JSON document kept in an event's EventStoreDB user
// metadata. The correlation and causation ids use the names EventStoreDB's
// projections and tooling understand.
type userMetadata struct {
	CorrelationID string `json:"$correlationId,omitempty"`
	CausationID   string `json:"$causationId,omitempty"`
	Actor         string `json:"actor,omitempty"`
	SchemaVersion int    `json:"schemaVersion"`
	RecordedAt    string `json:"recordedAt,omitempty"`
}

// toEventData builds the event to send. recordedAt is the time the store
// accepted the append; id is e.ID already checked and parsed.
func toEventData(e *eventstore.EventData, id uuid.UUID, recordedAt time.Time) (esdb.EventData, error) {
	meta, err := json.Marshal(userMetadata{
		CorrelationID: e.Metadata.CorrelationID,
		CausationID:   e.Metadata.CausationID,
		Actor:         e.Metadata.Actor,
		SchemaVersion: e.SchemaVersion,
		RecordedAt:    recordedAt.UTC().Format(time.RFC3339Nano),
	})
	if err != nil {
		return esdb.EventData{}, err
	}
	return esdb.EventData{
		EventID:     id,
		EventType:   e.Type,
		ContentType: esdb.ContentTypeJson,
		Data:        e.Data,
		Metadata:    meta,
	}, nil
}

// toRecorded turns an event read from the server into the port's envelope.
// It never fails: an event written by another tool, whose metadata is not
// this package's JSON, comes back with an empty Metadata, schema version 0
// and the server's created date.
func toRecorded(ev *esdb.RecordedEvent) eventstore.RecordedEvent {
	rec := eventstore.RecordedEvent{
		ID:         ev.EventID.String(),
		Type:       ev.EventType,
		Stream:     ev.StreamID,
		Version:    versionOf(ev.EventNumber),
		Position:   positionOf(ev.Position),
		RecordedAt: ev.CreatedDate.UTC(),
		Data:       json.RawMessage(ev.Data),
	}
	var meta userMetadata
	if len(ev.UserMetadata) == 0 || json.Unmarshal(ev.UserMetadata, &meta) != nil {
		return rec
	}
	rec.SchemaVersion = meta.SchemaVersion
	rec.Metadata = eventstore.Metadata{
		CorrelationID: meta.CorrelationID,
		CausationID:   meta.CausationID,
		Actor:         meta.Actor,
	}
	if at, err := time.Parse(time.RFC3339Nano, meta.RecordedAt); err == nil {
		rec.RecordedAt = at.UTC()
	}
	return rec
}
