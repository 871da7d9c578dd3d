package commands

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"herald/domain"
	"herald/infra/eventstore"
)

// Deps are what every handler needs. All fields are required.
type Deps struct {
	// Store is the event log the handlers load from and append to.
	Store eventstore.Store
	// Clock gives the time of a command; the handlers never read the
	// system clock themselves.
	Clock func() time.Time
	// NewID returns a fresh, unique UUIDv7 string; it names events and the
	// notifications sent without an Idempotency-Key. UUIDv7 is a suitable
	// implementation.
	NewID func() string
	// Templates, when set, checks and pins the template a send names
	// (commands/templates.Service). Without it a send naming a template is
	// refused: nothing could render it.
	Templates TemplateResolver
	// Planner, when set, decides channels, addresses, suppressions and
	// holds from the recipient's profile and preferences (the recipients
	// package). Without it deliveries are planned from the request alone.
	Planner Planner
}

// Planner applies a recipient's profile and preferences to a request at
// now. Its decision (with the policy record) goes into the log as it is.
type Planner interface {
	Plan(ctx context.Context, req domain.NotificationRequest, now time.Time) (domain.PlanDecision, error)
}

// Prefetcher is a Planner that can prepare for planning many requests at
// once (reading what they need in one go). A batch send calls it first;
// an error only means each request is planned on its own.
type Prefetcher interface {
	Prefetch(ctx context.Context, reqs []domain.NotificationRequest, now time.Time) error
}

// requestPlanner plans from the request alone: the addresses it carries,
// no preferences.
type requestPlanner struct{}

func (requestPlanner) Plan(_ context.Context, req domain.NotificationRequest, _ time.Time) (domain.PlanDecision, error) {
	plans, suppressions := planFor(req)
	return domain.PlanDecision{Plans: plans, Suppressions: suppressions}, nil
}

func plannerOr(p Planner) Planner {
	if p == nil {
		return requestPlanner{}
	}
	return p
}

// planCommand turns a planner's decision into the domain command; the
// policy record goes in only when a profile or preference had a say.
func planCommand(d domain.PlanDecision, now time.Time) domain.PlanDeliveries {
	cmd := domain.PlanDeliveries{Plans: d.Plans, Suppressions: d.Suppressions, HoldUntil: d.HoldUntil, HoldReason: d.HoldReason, Now: now}
	if d.Applied.ProfileVersion > 0 || len(d.Applied.Rules) > 0 {
		applied := d.Applied
		cmd.Policy = &applied
	}
	return cmd
}

// TemplateResolver pins a send's template reference to a published
// version and checks its variables against the channels it goes to. Its
// refusals carry a *domain.ValidationError naming template.* fields.
type TemplateResolver interface {
	Resolve(ctx context.Context, ref domain.TemplateRef, channels []domain.Channel) (domain.TemplateRef, error)
}

func (d Deps) validate(op string) error {
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
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Origin says who issued a command and in which flow. It becomes the
// metadata of every event the command appends.
type Origin struct {
	// Actor is who asked: the API key name for HTTP calls, a role name
	// ("dispatcher", "scheduler") for internal ones.
	Actor string
	// CorrelationID groups the events of one business flow. Empty means
	// the notification ID, so every event of a notification correlates.
	CorrelationID string
	// CausationID is what caused the command (an HTTP request ID, the ID of
	// the event a process manager reacted to). Empty is allowed.
	CausationID string
}

func (o Origin) metadata(id domain.NotificationID) eventstore.Metadata {
	corr := o.CorrelationID
	if corr == "" {
		corr = string(id)
	}
	return eventstore.Metadata{CorrelationID: corr, CausationID: o.CausationID, Actor: o.Actor}
}

// UUIDv7 returns a new UUIDv7 string. It is the production Deps.NewID.
func UUIDv7() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; a v4 is
		// still unique, only not time-ordered.
		return uuid.NewString()
	}
	return id.String()
}

// IdempotentNotificationID returns the notification ID that the
// Idempotency-Key key maps to for the API key named actor: the SHA-256 of
// "actor\x00key" formatted as a UUIDv8. It depends on nothing else, so the
// mapping holds forever and across restarts, and two API keys using the
// same Idempotency-Key never collide.
func IdempotentNotificationID(actor, key string) domain.NotificationID {
	sum := sha256.Sum256([]byte(actor + "\x00" + key))
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x80 // version 8
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	return domain.NotificationID(u.String())
}

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

// validIdempotencyKey allows printable ASCII only, so keys log and compare
// without surprises.
func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > MaxIdempotencyKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// validNotificationID reports whether id can name a notification: Herald
// only ever issues UUIDs, so anything else is unknown without a lookup.
func validNotificationID(id domain.NotificationID) bool {
	_, err := uuid.Parse(string(id))
	return err == nil && len(id) == 36
}
