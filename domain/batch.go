package domain

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Sentinel errors of the Batch aggregate. Compare with errors.Is.
var (
	// ErrBatchNotFound means no batch has that ID.
	ErrBatchNotFound = errors.New("batch not found")
	// ErrBatchExists means a batch already lives under that ID with another
	// request or target (an idempotency key reused for another send).
	ErrBatchExists = errors.New("batch already exists")
	// ErrNotAdmin means the command needs an admin caller.
	ErrNotAdmin = errors.New("requires an admin caller")
	// ErrBatchNotAwaitingApproval means an approval or rejection came for
	// a batch that is not waiting for one.
	ErrBatchNotAwaitingApproval = errors.New("batch is not awaiting approval")
	// ErrBatchRejected means the batch was rejected.
	ErrBatchRejected = errors.New("batch rejected")
	// ErrBatchNotApproved means fan-out was recorded for a batch still
	// waiting for approval.
	ErrBatchNotApproved = errors.New("batch not approved")
	// ErrFanOutIncomplete means completion was recorded before every
	// recipient was handled.
	ErrFanOutIncomplete = errors.New("fan-out incomplete")
)

// Limits of batches.
const (
	MaxBatchIDLen = 64
	// MaxBatchRecipients bounds an explicit recipient list; larger
	// audiences are sent to as a group.
	MaxBatchRecipients = 10_000
	MaxBatchReasonLen  = 1024
)

// BatchID identifies a batch and names its stream.
type BatchID string

// BatchStream returns the event stream name of batch id: "batch-<id>".
func BatchStream(id BatchID) string { return "batch-" + string(id) }

// Valid reports whether id can name a batch: the rule of TemplateID.
func (id BatchID) Valid() bool { return validStreamID(string(id), MaxBatchIDLen) }

// BatchItemKey returns "batch-<id>-<recipient>", the idempotency key of the
// notification batch id sends to recipient: the same on every attempt, so
// a chunk redone after a crash notifies nobody twice.
func BatchItemKey(id BatchID, recipient string) string {
	return "batch-" + string(id) + "-" + recipient
}

// BatchStatus is the state of a batch.
type BatchStatus string

// The batch statuses. Accepted covers both a batch that needed no approval
// and an approved one that has not started.
const (
	BatchStatusAccepted         BatchStatus = "accepted"
	BatchStatusAwaitingApproval BatchStatus = "awaiting_approval"
	BatchStatusRejected         BatchStatus = "rejected"
	BatchStatusInProgress       BatchStatus = "in_progress"
	BatchStatusCompleted        BatchStatus = "completed"
)

// Batch is the state of one batch, rebuilt from its stream. The zero value
// means "no such batch". It changes only through EvolveBatch.
type Batch struct {
	id             BatchID
	exists         bool
	status         BatchStatus
	request        NotificationRequest
	groupID        GroupID
	groupVersion   int
	recipients     []string
	size           int
	requestedBy    string
	requestedAt    time.Time
	approvalReason string
	decidedBy      string
	decisionReason string
	decidedAt      time.Time
	done, failed   int
	completedAt    time.Time
	version        int
}

// ID returns the batch's ID.
func (b Batch) ID() BatchID { return b.id }

// Exists reports whether the batch was requested.
func (b Batch) Exists() bool { return b.exists }

// Status returns the batch's status ("" when it does not exist).
func (b Batch) Status() BatchStatus { return b.status }

// Request returns a copy of the notification sent to every recipient
// (without recipient).
func (b Batch) Request() NotificationRequest { return b.request.clone() }

// Group returns the target group and the group stream version whose
// membership the batch sends to; "" for a list batch.
func (b Batch) Group() (GroupID, int) { return b.groupID, b.groupVersion }

// Recipients returns a copy of the explicit recipient list (nil for a group
// batch).
func (b Batch) Recipients() []string { return slices.Clone(b.recipients) }

// Size returns the number of recipients.
func (b Batch) Size() int { return b.size }

// RequestedBy returns who requested the batch.
func (b Batch) RequestedBy() string { return b.requestedBy }

// RequestedAt returns when the batch was requested.
func (b Batch) RequestedAt() time.Time { return b.requestedAt }

// ApprovalReason says why the batch needed approval ("" when it did not).
func (b Batch) ApprovalReason() string { return b.approvalReason }

// Decision returns who approved or rejected the batch, their reason and
// when; empty when nobody decided.
func (b Batch) Decision() (actor, reason string, at time.Time) {
	return b.decidedBy, b.decisionReason, b.decidedAt
}

// Progress returns the fan-out cursor: how many recipients were handled and
// how many of them failed.
func (b Batch) Progress() (done, failed int) { return b.done, b.failed }

// CompletedAt returns when the batch completed (zero until then).
func (b Batch) CompletedAt() time.Time { return b.completedAt }

// Version returns how many events have been applied.
func (b Batch) Version() int { return b.version }

// Runnable reports whether fan-out work remains and may proceed: the
// batch is accepted (or approved) or in progress.
func (b Batch) Runnable() bool {
	return b.status == BatchStatusAccepted || b.status == BatchStatusInProgress
}

// MemberRequest returns the notification request for recipient: the
// batch's request addressed to the recipient ID and tagged with the batch.
func (b Batch) MemberRequest(recipient string) NotificationRequest {
	r := b.request.clone()
	r.Recipient = Recipient{ID: recipient}
	r.BatchID = string(b.id)
	return r
}

// BatchCommand is a command DecideBatch understands. The interface is
// sealed.
type BatchCommand interface{ batchCommand() }

// RequestBatch requests a batch to the group GroupID as of GroupVersion
// (with Size members, Protected as the group is) or to Recipients. The
// batch waits for approval when Size exceeds ApprovalThreshold (a
// threshold of 0 or less disables the size rule) or the group is
// protected. Repeating the request is a no-op.
type RequestBatch struct {
	ID                BatchID
	Request           NotificationRequest
	GroupID           GroupID
	GroupVersion      int
	Size              int
	Protected         bool
	Recipients        []string
	ApprovalThreshold int
	Actor             string
	Now               time.Time
}

// ApproveBatch approves a batch awaiting approval. Admin says whether the
// caller is an admin; only admins may approve. Approving an approved batch
// is a no-op.
type ApproveBatch struct {
	Actor  string
	Admin  bool
	Reason string
	Now    time.Time
}

// RejectBatch rejects a batch awaiting approval; Reason is required and
// only admins may reject. Rejecting a rejected batch is a no-op.
type RejectBatch struct {
	Actor  string
	Admin  bool
	Reason string
	Now    time.Time
}

// RecordFanOutProgress moves the cursor to Done recipients handled, Failed
// of them refused (totals). A cursor at or behind the recorded one is a
// no-op: a redone chunk records nothing twice.
type RecordFanOutProgress struct {
	Done   int
	Failed int
	Now    time.Time
}

// CompleteBatch records that the fan-out finished; the cursor must be at
// Size. Completing a completed batch is a no-op.
type CompleteBatch struct {
	Now time.Time
}

func (RequestBatch) batchCommand()         {}
func (ApproveBatch) batchCommand()         {}
func (RejectBatch) batchCommand()          {}
func (RecordFanOutProgress) batchCommand() {}
func (CompleteBatch) batchCommand()        {}

// DecideBatch returns the events cmd causes on state, or an error wrapping
// a batch or group sentinel, ErrNotAdmin, ErrInvalidCommand, or a
// *ValidationError. It is pure; (nil, nil) means already applied.
func DecideBatch(state Batch, cmd BatchCommand) ([]Event, error) {
	switch c := cmd.(type) {
	case RequestBatch:
		return decideRequestBatch(state, c)
	case ApproveBatch:
		return decideBatchDecision(state, c.Actor, c.Admin, c.Reason, true, c.Now)
	case RejectBatch:
		return decideBatchDecision(state, c.Actor, c.Admin, c.Reason, false, c.Now)
	case RecordFanOutProgress:
		return decideProgress(state, c)
	case CompleteBatch:
		const op = "complete batch"
		switch {
		case !state.exists:
			return nil, fmt.Errorf("%s: %w", op, ErrBatchNotFound)
		case state.status == BatchStatusCompleted:
			return nil, nil
		case !state.Runnable():
			return nil, fmt.Errorf("%s %s: %w", op, state.id, batchStateError(state))
		case state.done < state.size:
			return nil, fmt.Errorf("%s %s: %d of %d done: %w", op, state.id, state.done, state.size, ErrFanOutIncomplete)
		}
		return []Event{BatchCompleted{BatchID: state.id, Total: state.size, Failed: state.failed, CompletedAt: c.Now.UTC()}}, nil
	}
	return nil, fmt.Errorf("decide batch: unsupported command %T: %w", cmd, ErrInvalidCommand)
}

func batchStateError(b Batch) error {
	switch b.status {
	case BatchStatusRejected:
		return ErrBatchRejected
	case BatchStatusAwaitingApproval:
		return ErrBatchNotApproved
	}
	return ErrInvalidCommand
}

func decideRequestBatch(b Batch, c RequestBatch) ([]Event, error) {
	if b.exists {
		// A repeat is judged against the original, not revalidated: its
		// expires_at may have passed since, or its group emptied. The
		// group's version may have moved too: a repeat is the same send
		// if it names the same target.
		if sameRequest(b.request, c.Request.Normalized()) && b.groupID == c.GroupID && slices.Equal(b.recipients, c.Recipients) {
			return nil, nil
		}
		return nil, fmt.Errorf("request batch %s: %w", c.ID, ErrBatchExists)
	}
	var v validator
	if !c.ID.Valid() {
		v.add("id", fmt.Sprintf("must be 1 to %d characters of A-Z, a-z, 0-9, '_', '.', '-'", MaxBatchIDLen))
	}
	if c.Request.Recipient != (Recipient{}) {
		v.add("recipient", "must be left out: each recipient of the batch is filled in")
	}
	probe := c.Request
	probe.Recipient = Recipient{ID: "batch-recipient"}
	var ve *ValidationError
	if err := probe.Validate(c.Now); errors.As(err, &ve) {
		v.fields = append(v.fields, ve.Fields...)
	}
	switch {
	case c.GroupID == "" && len(c.Recipients) == 0:
		v.add("recipients", "a group or at least one recipient is required")
	case c.GroupID != "" && len(c.Recipients) > 0:
		v.add("recipients", "must not be given together with a group")
	case c.GroupID != "" && !c.GroupID.Valid():
		v.add("group_id", "is not a group id")
	case c.GroupID != "" && (c.GroupVersion < 1 || c.Size < 0):
		return nil, fmt.Errorf("request batch: group version %d, size %d: %w", c.GroupVersion, c.Size, ErrInvalidCommand)
	case c.GroupID != "" && c.Size == 0:
		return nil, fmt.Errorf("request batch to group %s: %w", c.GroupID, ErrGroupEmpty)
	case len(c.Recipients) > MaxBatchRecipients:
		v.add("recipients", fmt.Sprintf("must hold at most %d recipient ids; send to a group instead", MaxBatchRecipients))
	default:
		seen := make(map[string]int, len(c.Recipients))
		for i, id := range c.Recipients {
			field := fmt.Sprintf("recipients[%d]", i)
			if p := MemberIDProblem(id); p != "" {
				v.add(field, p)
			} else if j, dup := seen[id]; dup {
				v.add(field, fmt.Sprintf("repeats recipients[%d]", j))
			}
			seen[id] = i
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	size := c.Size
	if c.GroupID == "" {
		size = len(c.Recipients)
	}
	ev := BatchRequested{
		BatchID: c.ID, Request: c.Request.Normalized(), GroupID: c.GroupID, Size: size,
		Recipients: slices.Clone(c.Recipients), Actor: c.Actor, RequestedAt: c.Now.UTC(),
	}
	if c.GroupID != "" {
		ev.GroupVersion = c.GroupVersion
	}
	out := []Event{ev}
	var why string
	switch {
	case c.Protected:
		why = fmt.Sprintf("group %s is protected", c.GroupID)
	case c.ApprovalThreshold > 0 && size > c.ApprovalThreshold:
		why = fmt.Sprintf("%d recipients exceed the approval threshold of %d", size, c.ApprovalThreshold)
	}
	if why != "" {
		out = append(out, BatchAwaitingApproval{BatchID: c.ID, Reason: why, Since: c.Now.UTC()})
	}
	return out, nil
}

func decideBatchDecision(b Batch, actor string, admin bool, reason string, approve bool, now time.Time) ([]Event, error) {
	op, want := "reject batch", BatchStatusRejected
	if approve {
		op = "approve batch"
	}
	switch {
	case !b.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrBatchNotFound)
	case !admin:
		return nil, fmt.Errorf("%s %s: %w", op, b.id, ErrNotAdmin)
	case utf8.RuneCountInString(reason) > MaxBatchReasonLen:
		return nil, &ValidationError{Fields: []FieldError{{Field: "reason", Problem: fmt.Sprintf("must be at most %d characters", MaxBatchReasonLen)}}}
	case !approve && reason == "":
		return nil, &ValidationError{Fields: []FieldError{{Field: "reason", Problem: "is required to reject a batch"}}}
	}
	approved := b.decidedBy != "" && b.status != BatchStatusRejected
	switch {
	case approve && approved, !approve && b.status == want:
		return nil, nil
	case b.status == BatchStatusRejected:
		return nil, fmt.Errorf("%s %s: %w", op, b.id, ErrBatchRejected)
	case b.status != BatchStatusAwaitingApproval:
		return nil, fmt.Errorf("%s %s (status %s): %w", op, b.id, b.status, ErrBatchNotAwaitingApproval)
	}
	if approve {
		return []Event{BatchApproved{BatchID: b.id, Actor: actor, Reason: reason, ApprovedAt: now.UTC()}}, nil
	}
	return []Event{BatchRejected{BatchID: b.id, Actor: actor, Reason: reason, RejectedAt: now.UTC()}}, nil
}

func decideProgress(b Batch, c RecordFanOutProgress) ([]Event, error) {
	const op = "record fan-out progress"
	switch {
	case !b.exists:
		return nil, fmt.Errorf("%s: %w", op, ErrBatchNotFound)
	case c.Done <= b.done:
		return nil, nil
	case !b.Runnable():
		return nil, fmt.Errorf("%s %s: %w", op, b.id, batchStateError(b))
	case c.Done > b.size || c.Failed < b.failed || c.Failed > c.Done:
		return nil, fmt.Errorf("%s %s: done %d, failed %d of %d (recorded %d, %d): %w",
			op, b.id, c.Done, c.Failed, b.size, b.done, b.failed, ErrInvalidCommand)
	}
	return []Event{FanOutProgressed{BatchID: b.id, Done: c.Done, Failed: c.Failed, ProgressedAt: c.Now.UTC()}}, nil
}

// EvolveBatch returns state with e applied. Every event counts towards
// Version, including ones this aggregate does not know.
func EvolveBatch(state Batch, e Event) Batch {
	e = batchValueEvent(e)
	if e == nil {
		return state
	}
	b := state
	b.version++
	switch ev := e.(type) {
	case BatchRequested:
		if b.exists {
			return b
		}
		b.id, b.exists, b.status = ev.BatchID, true, BatchStatusAccepted
		b.request, b.groupID, b.groupVersion = ev.Request.clone(), ev.GroupID, ev.GroupVersion
		b.recipients, b.size = slices.Clone(ev.Recipients), ev.Size
		b.requestedBy, b.requestedAt = ev.Actor, ev.RequestedAt
	case BatchAwaitingApproval:
		if b.status == BatchStatusAccepted && b.done == 0 {
			b.status, b.approvalReason = BatchStatusAwaitingApproval, ev.Reason
		}
	case BatchApproved:
		if b.status == BatchStatusAwaitingApproval {
			b.status, b.decidedBy, b.decisionReason, b.decidedAt = BatchStatusAccepted, ev.Actor, ev.Reason, ev.ApprovedAt
		}
	case BatchRejected:
		if b.status == BatchStatusAwaitingApproval {
			b.status, b.decidedBy, b.decisionReason, b.decidedAt = BatchStatusRejected, ev.Actor, ev.Reason, ev.RejectedAt
		}
	case FanOutProgressed:
		if b.Runnable() && ev.Done > b.done {
			b.status, b.done, b.failed = BatchStatusInProgress, ev.Done, ev.Failed
		}
	case BatchCompleted:
		if b.Runnable() {
			b.status, b.completedAt, b.failed = BatchStatusCompleted, ev.CompletedAt, ev.Failed
			b.done = b.size
		}
	}
	return b
}
