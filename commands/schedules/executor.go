package schedules

import (
	"herald/commands/aggexec"
	"herald/domain"
)

// MaxConflictRetries is how many times a command reloads its stream and
// decides again after another writer appended first.
const MaxConflictRetries = aggexec.MaxConflictRetries

var scheduleAggregate = aggexec.Aggregate[domain.Schedule]{
	Stream:  func(id string) string { return domain.ScheduleStream(domain.ScheduleID(id)) },
	Replay:  aggexec.Evolving(domain.EvolveSchedule),
	Version: domain.Schedule.Version,
}
