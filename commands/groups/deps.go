package groups

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

// DefaultApprovalThreshold is the batch size above which a send waits for
// an admin when Deps leave the threshold zero.
const DefaultApprovalThreshold = 10_000

// Deps are what the service needs. Store, Clock and NewID are required.
type Deps struct {
	// Store is the event log the group and batch streams live in.
	Store eventstore.Store
	// Clock gives the time of a command; nothing here reads the system
	// clock.
	Clock func() time.Time
	// NewID returns a fresh, unique UUIDv7 string naming an event or a
	// batch sent without an Idempotency-Key.
	NewID func() string
	// ApprovalThreshold is the largest batch that is accepted without an
	// admin's approval. Zero means DefaultApprovalThreshold; a negative
	// value turns the size rule off (protected groups still wait).
	ApprovalThreshold int
	// Templates checks the template a group send names, and pins "the
	// latest" to the version published then, when the send is requested:
	// an approver approves that version, and a bad reference is refused
	// once instead of failing every member's item at fan-out. Nil leaves
	// the check to each member's send.
	Templates TemplateResolver
}

// TemplateResolver pins a template reference to a published version and
// checks its variables against the channels named (commands.TemplateResolver;
// templates.Service is the production one). Refusals carry a
// *domain.ValidationError naming template.* or channels fields.
type TemplateResolver interface {
	Resolve(ctx context.Context, ref domain.TemplateRef, channels []domain.Channel) (domain.TemplateRef, error)
}

func (d *Deps) setDefaults() {
	if d.ApprovalThreshold == 0 {
		d.ApprovalThreshold = DefaultApprovalThreshold
	}
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

// Origin says who issued a command; it becomes the metadata of every event
// the command appends.
type Origin struct {
	// Actor is who asked: the API key name for HTTP calls, a role name for
	// internal ones.
	Actor string
	// CorrelationID groups the events of one flow. Empty means the stream
	// name.
	CorrelationID string
	// CausationID is what caused the command (an HTTP request ID). Empty is
	// allowed.
	CausationID string
}

func (o Origin) metadata(stream string) eventstore.Metadata {
	corr := o.CorrelationID
	if corr == "" {
		corr = stream
	}
	return eventstore.Metadata{CorrelationID: corr, CausationID: o.CausationID, Actor: o.Actor}
}

// ErrContention means a stream kept changing under a command: every retry
// met a newer version. The command changed nothing; the caller may retry.
var ErrContention = errors.New("stream kept changing; gave up after retries")

// IdempotentBatchID returns the batch ID an Idempotency-Key maps to for the
// caller actor sending to group: a UUIDv8 made of the SHA-256 of the three.
// It depends on nothing else, so a retried send finds its batch forever.
func IdempotentBatchID(actor string, group domain.GroupID, key string) domain.BatchID {
	sum := sha256.Sum256([]byte("batch\x00" + actor + "\x00" + string(group) + "\x00" + key))
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x80
	u[8] = (u[8] & 0x3f) | 0x80
	return domain.BatchID(u.String())
}

// MaxIdempotencyKeyLen bounds an Idempotency-Key.
const MaxIdempotencyKeyLen = 255

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
