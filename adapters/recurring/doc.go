// Package recurring is the role that fires schedules: at each firing time
// of an active schedule it records ScheduleFired and sends the schedule's
// notification through the Sender with the idempotency key
// domain.ScheduleFiringKey(id, firing time).
//
// It follows the event log from position 0 and keeps, in memory, the next
// firing of every active schedule (reloading a schedule's stream whenever
// the log shows an event of it). Recording comes first and is idempotent
// (the domain takes a firing at or before the last one as done), and the
// send is idempotent by its key, so an engine restarted at the due moment,
// or two engines, fire once. On recovery it sends the last recorded firing
// of each schedule again, which creates nothing when the first send went
// through and repairs a crash between recording and sending when it did
// not. Firings missed while no engine ran are collapsed into one: the
// latest that is due.
//
// It checks the clock at least every PollInterval, so a firing happens
// within that of its time even if the wall clock jumps. It must not send
// anything but schedule notifications or append anything but
// ScheduleFired.
package recurring
