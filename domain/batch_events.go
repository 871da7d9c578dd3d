package domain

import "time"

// The stable event type names of the Batch aggregate.
const (
	TypeBatchRequested        = "BatchRequested"
	TypeBatchAwaitingApproval = "BatchAwaitingApproval"
	TypeBatchApproved         = "BatchApproved"
	TypeBatchRejected         = "BatchRejected"
	TypeFanOutProgressed      = "FanOutProgressed"
	TypeBatchCompleted        = "BatchCompleted"
)

// BatchEventTypes returns every event type name of the Batch aggregate, in
// a fixed order. The slice is fresh on every call.
func BatchEventTypes() []string {
	return []string{TypeBatchRequested, TypeBatchAwaitingApproval, TypeBatchApproved,
		TypeBatchRejected, TypeFanOutProgressed, TypeBatchCompleted}
}

// BatchRequested starts a batch stream: one notification built from
// Request for each recipient of the target. The target is either the group
// GroupID as of its stream version GroupVersion (members added or removed
// later do not change the batch) or the explicit list Recipients. Size is
// the number of recipients. Request has no recipient; it is stored
// normalized.
type BatchRequested struct {
	BatchID      BatchID             `json:"batch_id"`
	Request      NotificationRequest `json:"request"`
	GroupID      GroupID             `json:"group_id,omitempty"`
	GroupVersion int                 `json:"group_version,omitempty"`
	Recipients   []string            `json:"recipients,omitempty"`
	Size         int                 `json:"size"`
	Actor        string              `json:"actor"`
	RequestedAt  time.Time           `json:"requested_at"`
}

// BatchAwaitingApproval follows BatchRequested, in the same append, when
// the batch needs an admin's approval before anything is sent; Reason says
// why (its size, a protected group).
type BatchAwaitingApproval struct {
	BatchID BatchID   `json:"batch_id"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
}

// BatchApproved records an admin's approval: the fan-out may start.
type BatchApproved struct {
	BatchID    BatchID   `json:"batch_id"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason,omitempty"`
	ApprovedAt time.Time `json:"approved_at"`
}

// BatchRejected records an admin's rejection: nothing will be sent.
type BatchRejected struct {
	BatchID    BatchID   `json:"batch_id"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
	RejectedAt time.Time `json:"rejected_at"`
}

// FanOutProgressed moves the fan-out cursor: the first Done recipients (in
// the batch's recipient order) have had their notification requested, and
// Failed of them were refused. Both are totals, not increments, so a
// repeated event changes nothing.
type FanOutProgressed struct {
	BatchID      BatchID   `json:"batch_id"`
	Done         int       `json:"done"`
	Failed       int       `json:"failed"`
	ProgressedAt time.Time `json:"progressed_at"`
}

// BatchCompleted records that every recipient was handled.
type BatchCompleted struct {
	BatchID     BatchID   `json:"batch_id"`
	Total       int       `json:"total"`
	Failed      int       `json:"failed"`
	CompletedAt time.Time `json:"completed_at"`
}

// EventType returns TypeBatchRequested.
func (BatchRequested) EventType() string { return TypeBatchRequested }

// EventType returns TypeBatchAwaitingApproval.
func (BatchAwaitingApproval) EventType() string { return TypeBatchAwaitingApproval }

// EventType returns TypeBatchApproved.
func (BatchApproved) EventType() string { return TypeBatchApproved }

// EventType returns TypeBatchRejected.
func (BatchRejected) EventType() string { return TypeBatchRejected }

// EventType returns TypeFanOutProgressed.
func (FanOutProgressed) EventType() string { return TypeFanOutProgressed }

// EventType returns TypeBatchCompleted.
func (BatchCompleted) EventType() string { return TypeBatchCompleted }

func batchValueEvent(e Event) Event {
	switch p := e.(type) {
	case *BatchRequested:
		return deref(p)
	case *BatchAwaitingApproval:
		return deref(p)
	case *BatchApproved:
		return deref(p)
	case *BatchRejected:
		return deref(p)
	case *FanOutProgressed:
		return deref(p)
	case *BatchCompleted:
		return deref(p)
	}
	return e
}
