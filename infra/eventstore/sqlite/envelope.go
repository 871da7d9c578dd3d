package sqlite

import (
	"fmt"
	"strconv"
	"strings"

	"herald/infra/eventstore"
)

// The envelope fields other than stream, version, position and time are kept
// in one TEXT column, separated by the ASCII unit separator. One column
// instead of six halves the work of binding and reading a row, which is most
// of what an append or a $all read costs; nothing queries these fields in SQL.
const sep = "\x1f"

func encodeEnvelope(e *eventstore.EventData) string {
	var b strings.Builder
	b.Grow(len(e.ID) + len(e.Type) + len(e.Metadata.CorrelationID) + len(e.Metadata.CausationID) + len(e.Metadata.Actor) + 8)
	b.WriteString(e.ID)
	b.WriteString(sep)
	b.WriteString(e.Type)
	b.WriteString(sep)
	b.WriteString(strconv.Itoa(e.SchemaVersion))
	b.WriteString(sep)
	b.WriteString(e.Metadata.CorrelationID)
	b.WriteString(sep)
	b.WriteString(e.Metadata.CausationID)
	b.WriteString(sep)
	b.WriteString(e.Metadata.Actor)
	return b.String()
}

func decodeEnvelope(s string, e *eventstore.RecordedEvent) error {
	var f [6]string
	for i := 0; i < 5; i++ {
		j := strings.Index(s, sep)
		if j < 0 {
			return fmt.Errorf("corrupt envelope at position %d", e.Position)
		}
		f[i], s = s[:j], s[j+1:]
	}
	f[5] = s
	v, err := strconv.Atoi(f[2])
	if err != nil {
		return fmt.Errorf("corrupt envelope at position %d: schema version %q", e.Position, f[2])
	}
	e.ID, e.Type, e.SchemaVersion = f[0], f[1], v
	e.Metadata = eventstore.Metadata{CorrelationID: f[3], CausationID: f[4], Actor: f[5]}
	return nil
}

// checkEnvelope refuses envelope fields that would break the encoding.
func checkEnvelope(e *eventstore.EventData) error {
	for _, f := range [...]string{e.ID, e.Type, e.Metadata.CorrelationID, e.Metadata.CausationID, e.Metadata.Actor} {
		if strings.Contains(f, sep) {
			return fmt.Errorf("%w %s: envelope field contains the unit separator", eventstore.ErrInvalidEvent, e.ID)
		}
	}
	return nil
}
