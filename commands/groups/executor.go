package groups

import (
	"herald/commands/aggexec"
	"herald/domain"
)

// MaxConflictRetries is how many times a command reloads its stream and
// decides again after another writer appended first.
const MaxConflictRetries = aggexec.MaxConflictRetries

var groupAggregate = aggexec.Aggregate[domain.Group]{
	Stream:  func(id string) string { return domain.GroupStream(domain.GroupID(id)) },
	Replay:  domain.ReplayGroup,
	Version: domain.Group.Version,
}

var batchAggregate = aggexec.Aggregate[domain.Batch]{
	Stream:  func(id string) string { return domain.BatchStream(domain.BatchID(id)) },
	Replay:  aggexec.Evolving(domain.EvolveBatch),
	Version: domain.Batch.Version,
}

// loop is where this package's commands append.
func (s *Service) loop() aggexec.Loop {
	return aggexec.Loop{Store: s.d.Store, NewID: s.d.NewID, Contention: ErrContention}
}
