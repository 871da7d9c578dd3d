package schedules

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"herald/commands/aggexec"
	"herald/domain"
	"herald/infra/eventstore"
)

// Deps are what the service needs. Store, Clock and NewID are required.
type Deps struct {
	Store eventstore.Store
	// Clock gives the time of a command.
	Clock func() time.Time
	// NewID returns a fresh UUIDv7 string naming an event or a schedule
	// created without an ID.
	NewID func() string
	// Zones loads an IANA time zone; nil means time.LoadLocation.
	Zones func(name string) (*time.Location, error)
	// Templates checks the template a schedule's request names when the
	// schedule is created, so that a bad reference is refused then and
	// not at every firing. Nil leaves the check to each firing's send.
	Templates TemplateResolver
}

// TemplateResolver checks a template reference against the channels named
// (commands.TemplateResolver; templates.Service is the production one).
// Refusals carry a *domain.ValidationError naming template.* or channels
// fields.
type TemplateResolver interface {
	Resolve(ctx context.Context, ref domain.TemplateRef, channels []domain.Channel) (domain.TemplateRef, error)
}

// Origin says who issued a command; it becomes the events' metadata.
type Origin struct {
	Actor         string
	CorrelationID string
	CausationID   string
}

func (o Origin) metadata(stream string) eventstore.Metadata {
	corr := o.CorrelationID
	if corr == "" {
		corr = stream
	}
	return eventstore.Metadata{CorrelationID: corr, CausationID: o.CausationID, Actor: o.Actor}
}

// ErrContention means the schedule's stream kept changing under a command.
var ErrContention = errors.New("stream kept changing; gave up after retries")

// Service is the schedule side of Herald. Safe for concurrent use.
type Service struct{ d Deps }

// NewService returns a Service over d; it refuses missing Deps.
func NewService(d Deps) (*Service, error) {
	var errs []error
	if d.Store == nil {
		errs = append(errs, errors.New("nil Store"))
	}
	if d.Clock == nil {
		errs = append(errs, errors.New("nil Clock"))
	}
	if d.NewID == nil {
		errs = append(errs, errors.New("nil NewID"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("new schedule service: %w", err)
	}
	if d.Zones == nil {
		d.Zones = time.LoadLocation
	}
	return &Service{d: d}, nil
}

// Result is the outcome of a schedule command.
type Result struct {
	Schedule domain.Schedule
	// Changed is false when the command appended nothing.
	Changed bool
}

// zone loads name; an unknown or empty name gives nil, which the domain
// reports as a time_zone field error. "UTC" never needs the database.
func (s *Service) zone(name string) *time.Location {
	if name == "" {
		return nil
	}
	loc, err := s.d.Zones(name)
	if err != nil {
		return nil
	}
	return loc
}

func (s *Service) load(ctx context.Context, id domain.ScheduleID) (domain.Schedule, error) {
	return aggexec.LoadFrom(ctx, s.d.Store, scheduleAggregate, string(id), domain.Schedule{}, 0)
}

func (s *Service) command(ctx context.Context, o Origin, id domain.ScheduleID, decide func(domain.Schedule) ([]domain.Event, error)) (Result, error) {
	sc, events, err := aggexec.Execute(ctx, aggexec.Loop{Store: s.d.Store, NewID: s.d.NewID, Contention: ErrContention}, scheduleAggregate, string(id), o.metadata(domain.ScheduleStream(id)),
		func(ctx context.Context) (domain.Schedule, error) { return s.load(ctx, id) }, decide)
	return Result{Schedule: sc, Changed: len(events) > 0}, err
}

// Create creates a schedule. An empty id is derived from idempotencyKey
// (scoped to the actor) when one is given, else drawn fresh. Repeating a
// create with the same definition succeeds with Changed false.
func (s *Service) Create(ctx context.Context, o Origin, id domain.ScheduleID, spec domain.ScheduleSpec, req domain.NotificationRequest, idempotencyKey string) (Result, error) {
	switch {
	case id != "":
	case idempotencyKey != "":
		sum := sha256.Sum256([]byte("schedule\x00" + o.Actor + "\x00" + idempotencyKey))
		var u uuid.UUID
		copy(u[:], sum[:16])
		u[6], u[8] = (u[6]&0x0f)|0x80, (u[8]&0x3f)|0x80
		id = domain.ScheduleID(u.String())
	default:
		id = domain.ScheduleID(s.d.NewID())
	}
	if spec.TimeZone == "" {
		spec.TimeZone = "UTC"
	}
	loc, now := s.zone(spec.TimeZone), s.d.Clock()
	if !id.Valid() {
		_, err := domain.DecideSchedule(domain.Schedule{}, domain.CreateSchedule{ID: id, Spec: spec, Location: loc, Request: req, Now: now})
		return Result{}, err
	}
	return s.command(ctx, o, id, func(sc domain.Schedule) ([]domain.Event, error) {
		if !sc.Exists() && req.Template != nil && s.d.Templates != nil {
			// Checked, not pinned: each firing sends the version
			// published at its time (or the one the request names). A
			// repeat is judged against the original whatever became of
			// the template since. Only the named channels are checked
			// (none: every required variable must be given).
			if _, err := s.d.Templates.Resolve(ctx, *req.Template, req.Channels); err != nil {
				return nil, err
			}
		}
		return domain.DecideSchedule(sc, domain.CreateSchedule{ID: id, Spec: spec, Location: loc, Request: req, Actor: o.Actor, Now: now})
	})
}

// Get returns the schedule; errors wrap domain.ErrScheduleNotFound.
func (s *Service) Get(ctx context.Context, id domain.ScheduleID) (domain.Schedule, error) {
	if !id.Valid() {
		return domain.Schedule{}, fmt.Errorf("schedule %q: %w", id, domain.ErrScheduleNotFound)
	}
	sc, err := s.load(ctx, id)
	if err != nil {
		return domain.Schedule{}, err
	}
	if !sc.Exists() {
		return domain.Schedule{}, fmt.Errorf("schedule %q: %w", id, domain.ErrScheduleNotFound)
	}
	return sc, nil
}

// Recurrence returns the schedule's recurrence in its time zone.
func (s *Service) Recurrence(sc domain.Schedule) (domain.Recurrence, error) {
	spec := sc.Spec()
	return domain.NewRecurrence(spec, s.zone(spec.TimeZone))
}

// NextFiring returns the schedule's next firing time, zero when none.
func (s *Service) NextFiring(sc domain.Schedule) time.Time {
	r, err := s.Recurrence(sc)
	if err != nil {
		return time.Time{}
	}
	return sc.NextFiring(r)
}

func (s *Service) simple(ctx context.Context, o Origin, id domain.ScheduleID, cmd func(now time.Time) domain.ScheduleCommand) (Result, error) {
	if !id.Valid() {
		return Result{}, fmt.Errorf("schedule %q: %w", id, domain.ErrScheduleNotFound)
	}
	now := s.d.Clock()
	return s.command(ctx, o, id, func(sc domain.Schedule) ([]domain.Event, error) { return domain.DecideSchedule(sc, cmd(now)) })
}

// Pause pauses the schedule; pausing a paused one changes nothing.
func (s *Service) Pause(ctx context.Context, o Origin, id domain.ScheduleID) (Result, error) {
	return s.simple(ctx, o, id, func(now time.Time) domain.ScheduleCommand { return domain.PauseSchedule{Actor: o.Actor, Now: now} })
}

// Resume resumes the schedule from its next firing after now.
func (s *Service) Resume(ctx context.Context, o Origin, id domain.ScheduleID) (Result, error) {
	return s.simple(ctx, o, id, func(now time.Time) domain.ScheduleCommand { return domain.ResumeSchedule{Actor: o.Actor, Now: now} })
}

// Delete deletes the schedule; its stream stays in the ledger.
func (s *Service) Delete(ctx context.Context, o Origin, id domain.ScheduleID) (Result, error) {
	return s.simple(ctx, o, id, func(now time.Time) domain.ScheduleCommand { return domain.DeleteSchedule{Actor: o.Actor, Now: now} })
}

// Fire records the firing due at at. A firing already recorded succeeds
// with Changed false, so an engine restarted at the due moment records it
// once. Errors wrap domain.ErrNotDue, domain.ErrNotAFiring,
// domain.ErrSchedulePaused, domain.ErrScheduleDeleted.
func (s *Service) Fire(ctx context.Context, actor string, id domain.ScheduleID, at time.Time) (Result, error) {
	now := s.d.Clock()
	return s.command(ctx, Origin{Actor: actor}, id, func(sc domain.Schedule) ([]domain.Event, error) {
		return domain.DecideSchedule(sc, domain.FireSchedule{FiringTime: at, Location: s.zone(sc.Spec().TimeZone), Now: now})
	})
}
