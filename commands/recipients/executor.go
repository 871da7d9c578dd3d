package recipients

import (
	"context"
	"sync/atomic"

	"herald/commands/aggexec"
	"herald/domain"
	"herald/infra/eventstore"
)

// MaxConflictRetries is how many times a command reloads the stream and
// decides again after another writer appended first, before giving up with
// ErrContention.
const MaxConflictRetries = aggexec.MaxConflictRetries

var recipientAggregate = aggexec.Aggregate[domain.RecipientProfile]{
	Stream:  func(id string) string { return domain.RecipientStream(domain.RecipientID(id)) },
	Replay:  aggexec.Evolving(domain.EvolveRecipient),
	Version: domain.RecipientProfile.Version,
}

// executor runs the load → decide → append loop of every recipient command
// (aggexec's, for the RecipientProfile aggregate).
type executor struct {
	store eventstore.Store
	newID func() string
	// writes, when set, counts the appends this process made to recipient
	// streams: the Planner's cache drops what it knew when it moves.
	writes *atomic.Int64
}

// load rebuilds the recipient from its stream; a stream that does not
// exist gives the zero RecipientProfile.
func (x executor) load(ctx context.Context, id domain.RecipientID) (domain.RecipientProfile, error) {
	r, err := aggexec.LoadFrom(ctx, x.store, recipientAggregate, string(id), domain.RecipientProfile{}, 0)
	if err != nil {
		return domain.RecipientProfile{}, err
	}
	return r, nil
}

// execute loads the recipient, decides, and appends expecting the version
// it decided on; on a conflict it reloads and decides again, at most
// MaxConflictRetries times. A refused decision returns the recipient it was
// decided on with its error; any other failure an empty Result.
func (x executor) execute(ctx context.Context, id domain.RecipientID, meta eventstore.Metadata,
	decide func(domain.RecipientProfile) ([]domain.Event, error)) (Result, error) {
	var (
		refused error
		created bool // the recipient did not exist when last decided on
	)
	state, events, err := aggexec.Execute(ctx, aggexec.Loop{Store: x.store, NewID: x.newID, Contention: ErrContention},
		recipientAggregate, string(id), meta,
		func(ctx context.Context) (domain.RecipientProfile, error) { return x.load(ctx, id) },
		func(r domain.RecipientProfile) ([]domain.Event, error) {
			created = !r.Exists()
			events, err := decide(r)
			refused = err
			return events, err
		})
	switch {
	case err != nil && err == refused:
		return Result{Recipient: state}, err
	case err != nil:
		return Result{}, err
	case len(events) == 0:
		return Result{Recipient: state}, nil
	}
	if x.writes != nil {
		x.writes.Add(1)
	}
	return Result{Recipient: state, Changed: true, Created: created}, nil
}
