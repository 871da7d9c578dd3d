package logbus

import (
	"context"
	"sync"

	"herald/infra/eventstore"
)

// CheckpointStore keeps, per consumer group and topic, the position of the
// last event the group has finished with. Implementations are safe for
// concurrent use.
type CheckpointStore interface {
	// Load returns the saved position, or 0 when nothing has been saved.
	Load(ctx context.Context, group, topic string) (eventstore.Position, error)
	// Save records p as the group's position in topic. The stores of this
	// package never move a checkpoint backwards: a p below the saved one
	// is ignored, so two subscribers of one group cannot rewind each other.
	Save(ctx context.Context, group, topic string, p eventstore.Position) error
}

var (
	_ CheckpointStore = (*MemoryCheckpoints)(nil)
	_ CheckpointStore = (*SQLiteCheckpoints)(nil)
)

// MemoryCheckpoints is a CheckpointStore in memory, for tests and for
// subscribers that need to resume within one process only. The zero value is
// ready to use.
type MemoryCheckpoints struct {
	mu  sync.Mutex
	pos map[checkpointKey]eventstore.Position
}

type checkpointKey struct{ group, topic string }

// Load implements CheckpointStore.
func (m *MemoryCheckpoints) Load(ctx context.Context, group, topic string) (eventstore.Position, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pos[checkpointKey{group, topic}], nil
}

// Save implements CheckpointStore.
func (m *MemoryCheckpoints) Save(ctx context.Context, group, topic string, p eventstore.Position) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pos == nil {
		m.pos = make(map[checkpointKey]eventstore.Position)
	}
	k := checkpointKey{group, topic}
	if p > m.pos[k] {
		m.pos[k] = p
	}
	return nil
}
