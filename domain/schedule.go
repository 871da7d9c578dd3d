package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinel errors of the Schedule aggregate. Compare with errors.Is.
var (
	// ErrScheduleNotFound means no schedule has that ID.
	ErrScheduleNotFound = errors.New("schedule not found")
	// ErrScheduleExists means a schedule already lives under that ID with
	// another definition.
	ErrScheduleExists = errors.New("schedule already exists")
	// ErrScheduleDeleted means the schedule was deleted.
	ErrScheduleDeleted = errors.New("schedule deleted")
	// ErrSchedulePaused means the schedule is paused and does not fire.
	ErrSchedulePaused = errors.New("schedule paused")
	// ErrNotAFiring means a firing time is not an occurrence of the
	// schedule's recurrence (or falls outside its start and end).
	ErrNotAFiring = errors.New("not a firing time of the schedule")
)

// Limits of schedules.
const (
	MaxScheduleIDLen   = 64
	MinScheduleEvery   = time.Minute
	MaxScheduleEvery   = 366 * 24 * time.Hour
	MaxScheduleZoneLen = 64
)

// ScheduleID identifies a schedule and names its stream.
type ScheduleID string

// ScheduleStream returns the event stream name of schedule id:
// "schedule-<id>".
func ScheduleStream(id ScheduleID) string { return "schedule-" + string(id) }

// Valid reports whether id can name a schedule: the rule of TemplateID.
func (id ScheduleID) Valid() bool { return validStreamID(string(id), MaxScheduleIDLen) }

// ScheduleFiringKey returns "schedule-<id>-<unix seconds of at>", the
// idempotency key of the notification the firing at at sends.
func ScheduleFiringKey(id ScheduleID, at time.Time) string {
	return "schedule-" + string(id) + "-" + strconv.FormatInt(at.Unix(), 10)
}

// validStreamID is the ID rule of client-chosen aggregate IDs: 1 to max
// characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or a
// digit, so an ID is safe in stream names and URL paths.
func validStreamID(id string, max int) bool {
	return len(id) <= max && TemplateID(id).Valid()
}

// ScheduleSpec says when a schedule fires: by Cron (a five-field
// expression, see CronExpr) or every EverySeconds seconds counted from
// StartAt, never both. Cron is read in the IANA zone TimeZone (default
// "UTC"); an interval is absolute time, unaffected by daylight saving.
// Nothing fires before StartAt nor after EndAt (when set).
type ScheduleSpec struct {
	Cron         string     `json:"cron,omitempty"`
	EverySeconds int64      `json:"every_seconds,omitempty"`
	TimeZone     string     `json:"time_zone"`
	StartAt      time.Time  `json:"start_at"`
	EndAt        *time.Time `json:"end_at,omitempty"`
}

// Validate checks the spec against the location its TimeZone names (loaded
// by the caller: the domain reads no time zone database) and returns nil or
// a *ValidationError naming "cron", "every", "time_zone" and "end_at". A
// nil loc means the zone is unknown.
func (s ScheduleSpec) Validate(loc *time.Location) error {
	var v validator
	switch {
	case s.Cron == "" && s.EverySeconds == 0:
		v.add("cron", "one of cron or every is required")
	case s.Cron != "" && s.EverySeconds != 0:
		v.add("every", "must not be given together with cron")
	case s.Cron != "":
		if _, err := ParseCron(s.Cron); err != nil {
			v.add("cron", err.Error())
		}
	case time.Duration(s.EverySeconds)*time.Second < MinScheduleEvery || time.Duration(s.EverySeconds)*time.Second > MaxScheduleEvery:
		v.add("every", fmt.Sprintf("must be %s to %s", MinScheduleEvery, MaxScheduleEvery))
	}
	if s.TimeZone == "" || len(s.TimeZone) > MaxScheduleZoneLen || loc == nil {
		v.add("time_zone", "must be an IANA time zone name like Europe/Berlin")
	}
	if !Representable(s.StartAt) {
		v.add("start_at", representableProblem)
	}
	switch {
	case s.EndAt == nil:
	case !Representable(*s.EndAt):
		v.add("end_at", representableProblem)
	case !s.EndAt.After(s.StartAt):
		v.add("end_at", "must be after start_at")
	}
	return v.err()
}

// Recurrence is a validated ScheduleSpec bound to its location: it computes
// firing times. It is a plain value, safe to copy and share.
type Recurrence struct {
	cron  *CronExpr
	every time.Duration
	loc   *time.Location
	start time.Time
	end   time.Time // zero: no end
}

// NewRecurrence binds spec to loc, the location spec.TimeZone names. Errors
// are the *ValidationError of spec.Validate.
func NewRecurrence(spec ScheduleSpec, loc *time.Location) (Recurrence, error) {
	if err := spec.Validate(loc); err != nil {
		return Recurrence{}, err
	}
	r := Recurrence{every: time.Duration(spec.EverySeconds) * time.Second, loc: loc, start: spec.StartAt}
	if spec.Cron != "" {
		c, _ := ParseCron(spec.Cron)
		r.cron = &c
	}
	if spec.EndAt != nil {
		r.end = *spec.EndAt
	}
	return r, nil
}

// NextFiring returns the first firing time strictly after after, or the
// zero time when there is none (the end has passed, or a cron expression
// that never matches). It is pure: the same inputs give the same instant.
// Daylight saving follows CronExpr.Next.
func (r Recurrence) NextFiring(after time.Time) time.Time {
	if r.cron == nil && r.every <= 0 {
		return time.Time{}
	}
	var next time.Time
	switch {
	case r.cron != nil && after.Before(r.start):
		next = r.cron.Next(r.start.Add(-time.Nanosecond), r.loc) // the start itself may fire
	case r.cron != nil:
		next = r.cron.Next(after, r.loc)
	case after.Before(r.start):
		next = r.start.In(r.loc)
	default:
		k := after.Sub(r.start)/r.every + 1
		next = r.start.Add(k * r.every).In(r.loc)
	}
	if next.IsZero() || (!r.end.IsZero() && next.After(r.end)) {
		return time.Time{}
	}
	return next
}

// IsFiring reports whether at is one of r's firing times.
func (r Recurrence) IsFiring(at time.Time) bool {
	next := r.NextFiring(at.Add(-time.Nanosecond))
	return !next.IsZero() && next.Equal(at)
}

// ScheduleStatus is the state of a schedule.
type ScheduleStatus string

// The schedule statuses.
const (
	ScheduleStatusActive  ScheduleStatus = "active"
	ScheduleStatusPaused  ScheduleStatus = "paused"
	ScheduleStatusDeleted ScheduleStatus = "deleted"
)

// Schedule is the state of one schedule, rebuilt from its stream. The zero
// value means "no such schedule". It changes only through EvolveSchedule.
type Schedule struct {
	id        ScheduleID
	exists    bool
	spec      ScheduleSpec
	request   NotificationRequest
	createdAt time.Time
	createdBy string
	status    ScheduleStatus
	resumedAt time.Time // zero unless resumed; firings before it were skipped
	lastFired time.Time
	firings   int
	version   int
}

// ID returns the schedule's ID.
func (s Schedule) ID() ScheduleID { return s.id }

// Exists reports whether the schedule was created.
func (s Schedule) Exists() bool { return s.exists }

// Spec returns when the schedule fires.
func (s Schedule) Spec() ScheduleSpec {
	sp := s.spec
	if sp.EndAt != nil {
		t := *sp.EndAt
		sp.EndAt = &t
	}
	return sp
}

// Request returns a copy of the notification every firing sends.
func (s Schedule) Request() NotificationRequest { return s.request.clone() }

// Status returns active, paused or deleted ("" when it does not exist).
func (s Schedule) Status() ScheduleStatus { return s.status }

// CreatedAt returns when the schedule was created.
func (s Schedule) CreatedAt() time.Time { return s.createdAt }

// CreatedBy returns who created the schedule.
func (s Schedule) CreatedBy() string { return s.createdBy }

// LastFiring returns the firing time of the latest ScheduleFired (zero
// when it never fired).
func (s Schedule) LastFiring() time.Time { return s.lastFired }

// Firings returns how many times the schedule fired.
func (s Schedule) Firings() int { return s.firings }

// Version returns how many events have been applied: the stream version to
// expect when appending.
func (s Schedule) Version() int { return s.version }

// NextFiring returns the schedule's next firing time under r (its
// Recurrence): the first occurrence after the latest firing and not before
// the latest resume. It is zero when the schedule is not active or has no
// further firing.
func (s Schedule) NextFiring(r Recurrence) time.Time {
	if s.status != ScheduleStatusActive {
		return time.Time{}
	}
	after := s.lastFired
	if floor := s.resumedAt.Add(-time.Nanosecond); !s.resumedAt.IsZero() && floor.After(after) {
		after = floor
	}
	if after.IsZero() {
		after = s.spec.StartAt.Add(-time.Nanosecond)
	}
	return r.NextFiring(after)
}

// ScheduleCommand is a command DecideSchedule understands. The interface
// is sealed.
type ScheduleCommand interface{ scheduleCommand() }

// CreateSchedule creates schedule ID. Location is the zone Spec.TimeZone
// names, loaded by the caller (nil when unknown). A zero Spec.StartAt
// means Now. Repeating a create with the same spec and request is a no-op.
type CreateSchedule struct {
	ID       ScheduleID
	Spec     ScheduleSpec
	Location *time.Location
	Request  NotificationRequest
	Actor    string
	Now      time.Time
}

// PauseSchedule pauses an active schedule; pausing a paused one is a no-op.
type PauseSchedule struct {
	Actor string
	Now   time.Time
}

// ResumeSchedule resumes a paused schedule; resuming an active one is a
// no-op. Firings missed while paused are not caught up.
type ResumeSchedule struct {
	Actor string
	Now   time.Time
}

// DeleteSchedule deletes the schedule; deleting a deleted one is a no-op.
type DeleteSchedule struct {
	Actor string
	Now   time.Time
}

// FireSchedule records the firing due at FiringTime. Location is the zone
// of the schedule's spec, loaded by the caller. A firing at or before the
// latest one is an idempotent repeat (no events), so two engines, or one
// restarted at the due moment, record it once.
type FireSchedule struct {
	FiringTime time.Time
	Location   *time.Location
	Now        time.Time
}

func (CreateSchedule) scheduleCommand() {}
func (PauseSchedule) scheduleCommand()  {}
func (ResumeSchedule) scheduleCommand() {}
func (DeleteSchedule) scheduleCommand() {}
func (FireSchedule) scheduleCommand()   {}

// DecideSchedule returns the events cmd causes on state, or an error
// wrapping a schedule sentinel, ErrNotDue, ErrInvalidCommand, or a
// *ValidationError. It is pure; (nil, nil) means already applied.
func DecideSchedule(state Schedule, cmd ScheduleCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case CreateSchedule:
		return decideCreateSchedule(state, c)
	case PauseSchedule:
		if err := scheduleUsable(state, "pause schedule"); err != nil || state.status == ScheduleStatusPaused {
			return nil, err
		}
		return []Event{SchedulePaused{ScheduleID: state.id, Actor: c.Actor, PausedAt: c.Now.UTC()}}, nil
	case ResumeSchedule:
		if err := scheduleUsable(state, "resume schedule"); err != nil || state.status == ScheduleStatusActive {
			return nil, err
		}
		return []Event{ScheduleResumed{ScheduleID: state.id, Actor: c.Actor, ResumedAt: c.Now.UTC()}}, nil
	case DeleteSchedule:
		if !state.exists {
			return nil, fmt.Errorf("delete schedule: %w", ErrScheduleNotFound)
		}
		if state.status == ScheduleStatusDeleted {
			return nil, nil
		}
		return []Event{ScheduleDeleted{ScheduleID: state.id, Actor: c.Actor, DeletedAt: c.Now.UTC()}}, nil
	case FireSchedule:
		return decideFireSchedule(state, c)
	}
	return nil, fmt.Errorf("decide schedule: unsupported command %T: %w", cmd, ErrInvalidCommand)
}

func scheduleUsable(s Schedule, op string) error {
	switch {
	case !s.exists:
		return fmt.Errorf("%s: %w", op, ErrScheduleNotFound)
	case s.status == ScheduleStatusDeleted:
		return fmt.Errorf("%s %s: %w", op, s.id, ErrScheduleDeleted)
	}
	return nil
}

// normalizedSpec is spec in UTC, starting at start when it gives no
// start_at.
func normalizedSpec(spec ScheduleSpec, start time.Time) ScheduleSpec {
	if spec.StartAt.IsZero() {
		spec.StartAt = start
	}
	spec.StartAt = spec.StartAt.UTC()
	if spec.EndAt != nil {
		t := spec.EndAt.UTC()
		spec.EndAt = &t
	}
	return spec
}

func decideCreateSchedule(s Schedule, c CreateSchedule) ([]Event, error) {
	if s.exists {
		// A repeat is judged against the original, not revalidated (its
		// end_at may have passed since); one without start_at means the
		// original's, which defaulted to its creation time.
		if sameJSON(s.spec, normalizedSpec(c.Spec, s.spec.StartAt)) && sameRequest(s.request, c.Request.Normalized()) {
			return nil, nil
		}
		return nil, fmt.Errorf("create schedule %s: %w", c.ID, ErrScheduleExists)
	}
	var v validator
	if !c.ID.Valid() {
		v.add("id", fmt.Sprintf("must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.', '-', starting with a letter or digit", MaxScheduleIDLen))
	}
	spec := normalizedSpec(c.Spec, c.Now)
	var ve *ValidationError
	if err := spec.Validate(c.Location); errors.As(err, &ve) {
		v.fields = append(v.fields, ve.Fields...)
	}
	if err := c.Request.Validate(c.Now); errors.As(err, &ve) {
		for _, f := range ve.Fields {
			v.add("request."+f.Field, f.Problem)
		}
	}
	if c.Request.ScheduledAt != nil {
		v.add("request.scheduled_at", "must not be set: the schedule decides when each notification is sent")
	}
	if c.Request.ExpiresAt != nil {
		v.add("request.expires_at", "must not be set on a recurring send")
	}
	if len(v.fields) == 0 {
		r, _ := NewRecurrence(spec, c.Location)
		if r.NextFiring(c.Now).IsZero() {
			v.add("end_at", "leaves no firing after now")
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return []Event{ScheduleCreated{ScheduleID: c.ID, Spec: spec, Request: c.Request.Normalized(), Actor: c.Actor, CreatedAt: c.Now.UTC()}}, nil
}

func decideFireSchedule(s Schedule, c FireSchedule) ([]Event, error) {
	const op = "fire schedule"
	if err := scheduleUsable(s, op); err != nil {
		return nil, err
	}
	at := c.FiringTime.UTC()
	switch {
	case !s.lastFired.IsZero() && !at.After(s.lastFired):
		return nil, nil
	case s.status == ScheduleStatusPaused:
		return nil, fmt.Errorf("%s %s: %w", op, s.id, ErrSchedulePaused)
	case at.After(c.Now):
		return nil, fmt.Errorf("%s %s at %s: %w", op, s.id, at.Format(time.RFC3339), ErrNotDue)
	case !s.resumedAt.IsZero() && at.Before(s.resumedAt):
		return nil, fmt.Errorf("%s %s at %s: skipped while paused: %w", op, s.id, at.Format(time.RFC3339), ErrNotAFiring)
	}
	r, err := NewRecurrence(s.spec, c.Location)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %w", op, s.id, ErrInvalidCommand, err)
	}
	if !r.IsFiring(at) {
		return nil, fmt.Errorf("%s %s at %s: %w", op, s.id, at.Format(time.RFC3339), ErrNotAFiring)
	}
	return []Event{ScheduleFired{ScheduleID: s.id, FiringTime: at, FiredAt: c.Now.UTC()}}, nil
}

// EvolveSchedule returns state with e applied. Every event counts towards
// Version, including ones this aggregate does not know.
func EvolveSchedule(state Schedule, e Event) Schedule {
	e = scheduleValueEvent(e)
	if e == nil {
		return state
	}
	s := state
	s.version++
	switch ev := e.(type) {
	case ScheduleCreated:
		if s.exists {
			return s
		}
		s.id, s.exists, s.spec, s.request = ev.ScheduleID, true, ev.Spec, ev.Request.clone()
		s.createdAt, s.createdBy, s.status = ev.CreatedAt, ev.Actor, ScheduleStatusActive
	case SchedulePaused:
		if s.status == ScheduleStatusActive {
			s.status = ScheduleStatusPaused
		}
	case ScheduleResumed:
		if s.status == ScheduleStatusPaused {
			s.status, s.resumedAt = ScheduleStatusActive, ev.ResumedAt
		}
	case ScheduleDeleted:
		if s.exists {
			s.status = ScheduleStatusDeleted
		}
	case ScheduleFired:
		if s.exists && ev.FiringTime.After(s.lastFired) {
			s.lastFired = ev.FiringTime
			s.firings++
		}
	}
	return s
}

// sameJSON compares two values through their JSON encoding.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
