package commands

// Handlers are the command handlers the HTTP endpoints call.
type Handlers struct {
	Send          *SendHandler
	SendBatch     *SendBatchHandler
	Cancel        *CancelHandler
	Resend        *ResendHandler
	RecordReceipt *RecordReceiptHandler
	MarkRead      *MarkReadHandler
	// Attempts is the dispatcher's, Release the scheduler's: they have no
	// HTTP route.
	Attempts *AttemptHandler
	Release  *ReleaseHandler
}

// NewHandlers builds every handler on the same dependencies.
func NewHandlers(d Deps) (Handlers, error) {
	if err := d.validate("new handlers"); err != nil {
		return Handlers{}, err
	}
	// The constructors below only fail on missing dependencies, which
	// validate has just ruled out.
	// One state cache for every handler: the dispatcher's attempt then
	// finds the state the send left.
	x := executor{store: d.Store, newID: d.NewID, cache: newStateCache()}
	send := &SendHandler{x: x, clock: d.Clock, templates: d.Templates, planner: plannerOr(d.Planner)}
	return Handlers{
		Send:          send,
		SendBatch:     &SendBatchHandler{send: send},
		Cancel:        &CancelHandler{x: x, clock: d.Clock},
		Resend:        &ResendHandler{x: x, clock: d.Clock},
		RecordReceipt: &RecordReceiptHandler{x: x, clock: d.Clock},
		MarkRead:      &MarkReadHandler{x: x, clock: d.Clock},
		Attempts:      &AttemptHandler{x: x, clock: d.Clock},
		Release:       &ReleaseHandler{x: x, clock: d.Clock, planner: plannerOr(d.Planner)},
	}, nil
}

func (h Handlers) missing() []string {
	var out []string
	if h.Send == nil {
		out = append(out, "Send")
	}
	if h.SendBatch == nil {
		out = append(out, "SendBatch")
	}
	if h.Cancel == nil {
		out = append(out, "Cancel")
	}
	if h.Resend == nil {
		out = append(out, "Resend")
	}
	if h.RecordReceipt == nil {
		out = append(out, "RecordReceipt")
	}
	if h.MarkRead == nil {
		out = append(out, "MarkRead")
	}
	return out
}
