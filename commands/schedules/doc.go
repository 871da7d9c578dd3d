// Package schedules is the write side and the HTTP surface of recurring
// sends: creating a schedule (a cron expression or an interval, in an IANA
// time zone, with a start and an optional end), reading it with its next
// firing, pausing, resuming and deleting it, and the Fire call the firing
// engine (adapters/recurring) makes.
//
// A schedule is the domain.Schedule aggregate in "schedule-<id>". Commands
// load the stream, decide and append expecting the version they decided
// on, retrying on a conflict. Time zones are loaded here (Deps.Zones), not
// in the domain, which reads no time zone database.
//
// The package must not create notifications (the engine does), write
// anything but schedule streams, or read configuration.
package schedules
