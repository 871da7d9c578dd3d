package commands

import "errors"

// Handlers are the command handlers the HTTP endpoints call.
type Handlers struct {
	Send          *SendHandler
	SendBatch     *SendBatchHandler
	Cancel        *CancelHandler
	Resend        *ResendHandler
	RecordReceipt *RecordReceiptHandler
	MarkRead      *MarkReadHandler
}

// NewHandlers builds every handler on the same dependencies.
func NewHandlers(d Deps) (Handlers, error) {
	if err := d.validate("new handlers"); err != nil {
		return Handlers{}, err
	}
	var h Handlers
	var errs [6]error
	h.Send, errs[0] = NewSendHandler(d)
	h.SendBatch, errs[1] = NewSendBatchHandler(d)
	h.Cancel, errs[2] = NewCancelHandler(d)
	h.Resend, errs[3] = NewResendHandler(d)
	h.RecordReceipt, errs[4] = NewRecordReceiptHandler(d)
	h.MarkRead, errs[5] = NewMarkReadHandler(d)
	return h, errors.Join(errs[:]...)
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
