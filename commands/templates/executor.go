package templates

import (
	"context"

	"herald/commands/aggexec"
	"herald/domain"
	"herald/infra/eventstore"
)

// MaxConflictRetries is how many times a command reloads the stream and
// decides again after another writer appended first, before giving up with
// ErrContention.
const MaxConflictRetries = aggexec.MaxConflictRetries

var templateAggregate = aggexec.Aggregate[domain.Template]{
	Stream:  func(id string) string { return domain.TemplateStream(domain.TemplateID(id)) },
	Replay:  aggexec.Evolving(domain.EvolveTemplate),
	Version: domain.Template.Version,
}

// executor runs the load → decide → append loop of every template command
// (aggexec's, for the Template aggregate).
type executor struct {
	store eventstore.Store
	newID func() string
}

// load rebuilds the template from its stream; a stream that does not exist
// gives the zero Template.
func (x executor) load(ctx context.Context, id domain.TemplateID) (domain.Template, error) {
	t, err := aggexec.LoadFrom(ctx, x.store, templateAggregate, string(id), domain.Template{}, 0)
	if err != nil {
		return domain.Template{}, err
	}
	return t, nil
}

// execute loads the template, decides, and appends expecting the version it
// decided on; on a conflict it reloads and decides again, at most
// MaxConflictRetries times. A refused decision returns the template it was
// decided on with its error; any other failure an empty Result.
func (x executor) execute(ctx context.Context, id domain.TemplateID, meta eventstore.Metadata,
	decide func(domain.Template) ([]domain.Event, error)) (Result, error) {
	var refused error
	state, events, err := aggexec.Execute(ctx, aggexec.Loop{Store: x.store, NewID: x.newID, Contention: ErrContention},
		templateAggregate, string(id), meta,
		func(ctx context.Context) (domain.Template, error) { return x.load(ctx, id) },
		func(t domain.Template) ([]domain.Event, error) {
			events, err := decide(t)
			refused = err
			return events, err
		})
	switch {
	case err != nil && err == refused:
		return Result{Template: state}, err
	case err != nil:
		return Result{}, err
	}
	return Result{Template: state, Changed: len(events) > 0}, nil
}
