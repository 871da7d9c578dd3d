package domain_test

import (
	"errors"
	"testing"

	"herald/domain"
)

func batchMessage() domain.NotificationRequest {
	return domain.NotificationRequest{Content: &domain.Content{Subject: "Hi", Body: "News"}, Channels: []domain.Channel{domain.ChannelInApp}}
}

func batchOf(t *testing.T, cmds ...domain.BatchCommand) domain.Batch {
	t.Helper()
	var b domain.Batch
	for _, c := range cmds {
		events, err := domain.DecideBatch(b, c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		for _, e := range events {
			b = domain.EvolveBatch(b, e)
		}
	}
	return b
}

func TestDecideBatch(t *testing.T) {
	t.Parallel()
	small := domain.RequestBatch{ID: "b1", Request: batchMessage(), GroupID: "staff", GroupVersion: 3, Size: 10, ApprovalThreshold: 100, Actor: "ann", Now: t0}
	big := small
	big.Size = 101
	protected := small
	protected.Protected = true
	accepted := batchOf(t, small)
	awaiting := batchOf(t, big)
	approve := domain.ApproveBatch{Actor: "root", Admin: true, Reason: "looks fine", Now: at(1)}
	reject := domain.RejectBatch{Actor: "root", Admin: true, Reason: "too many", Now: at(1)}
	approved := batchOf(t, big, approve)
	rejected := batchOf(t, big, reject)
	half := batchOf(t, small, domain.RecordFanOutProgress{Done: 5, Failed: 1, Now: at(2)})
	full := batchOf(t, small, domain.RecordFanOutProgress{Done: 10, Failed: 1, Now: at(2)})
	withRecipient := small
	withRecipient.Request.Recipient = domain.Recipient{ID: "x"}
	list := domain.RequestBatch{ID: "b2", Request: batchMessage(), Recipients: []string{"a", "b", "a", ""}, Now: t0}
	expiring := small
	expiring.Request.ExpiresAt = ptr(at(30))
	expiringAccepted := batchOf(t, expiring)
	lateRepeat := expiring
	lateRepeat.Now = at(60)
	emptiedRepeat := small
	emptiedRepeat.Size, emptiedRepeat.GroupVersion = 0, 4

	cases := []struct {
		name   string
		state  domain.Batch
		cmd    domain.BatchCommand
		err    error
		fields []string
		types  []string
	}{
		{"small batch is accepted", domain.Batch{}, small, nil, nil, []string{domain.TypeBatchRequested}},
		{"over the threshold waits", domain.Batch{}, big, nil, nil, []string{domain.TypeBatchRequested, domain.TypeBatchAwaitingApproval}},
		{"protected group waits", domain.Batch{}, protected, nil, nil, []string{domain.TypeBatchRequested, domain.TypeBatchAwaitingApproval}},
		{"repeat is a no-op", accepted, small, nil, nil, nil},
		{"repeat after expires_at is a no-op", expiringAccepted, lateRepeat, nil, nil, nil},
		{"repeat after the group emptied is a no-op", accepted, emptiedRepeat, nil, nil, nil},
		{"same id, other content", accepted, domain.RequestBatch{ID: "b1", Request: domain.NotificationRequest{Content: &domain.Content{Body: "x"}}, GroupID: "staff", GroupVersion: 3, Size: 10, Now: t0}, domain.ErrBatchExists, nil, nil},
		{"empty group", domain.Batch{}, domain.RequestBatch{ID: "b1", Request: batchMessage(), GroupID: "staff", GroupVersion: 1, Now: t0}, domain.ErrGroupEmpty, nil, nil},
		{"recipient given", domain.Batch{}, withRecipient, domain.ErrInvalidRequest, []string{"recipient"}, nil},
		{"bad list", domain.Batch{}, list, domain.ErrInvalidRequest, []string{"recipients[2]", "recipients[3]"}, nil},
		{"no content", domain.Batch{}, domain.RequestBatch{ID: "b1", GroupID: "g", GroupVersion: 1, Size: 1, Now: t0}, domain.ErrInvalidRequest, []string{"content"}, nil},
		{"approve needs an admin", awaiting, domain.ApproveBatch{Actor: "ann", Now: at(1)}, domain.ErrNotAdmin, nil, nil},
		{"reject needs an admin", awaiting, domain.RejectBatch{Actor: "ann", Reason: "no", Now: at(1)}, domain.ErrNotAdmin, nil, nil},
		{"approve", awaiting, approve, nil, nil, []string{domain.TypeBatchApproved}},
		{"approve again is a no-op", approved, approve, nil, nil, nil},
		{"reject an approved batch", approved, reject, domain.ErrBatchNotAwaitingApproval, nil, nil},
		{"reject needs a reason", awaiting, domain.RejectBatch{Admin: true, Now: at(1)}, domain.ErrInvalidRequest, []string{"reason"}, nil},
		{"reject", awaiting, reject, nil, nil, []string{domain.TypeBatchRejected}},
		{"approve a rejected batch", rejected, approve, domain.ErrBatchRejected, nil, nil},
		{"approve a batch that needed none", accepted, approve, domain.ErrBatchNotAwaitingApproval, nil, nil},
		{"progress before approval", awaiting, domain.RecordFanOutProgress{Done: 1}, domain.ErrBatchNotApproved, nil, nil},
		{"progress after approval", approved, domain.RecordFanOutProgress{Done: 100}, nil, nil, []string{domain.TypeFanOutProgressed}},
		{"progress behind the cursor is a no-op", half, domain.RecordFanOutProgress{Done: 5, Failed: 1}, nil, nil, nil},
		{"progress past the size", half, domain.RecordFanOutProgress{Done: 11}, domain.ErrInvalidCommand, nil, nil},
		{"complete too early", half, domain.CompleteBatch{}, domain.ErrFanOutIncomplete, nil, nil},
		{"complete", full, domain.CompleteBatch{Now: at(3)}, nil, nil, []string{domain.TypeBatchCompleted}},
		{"complete a rejected batch", rejected, domain.CompleteBatch{}, domain.ErrBatchRejected, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			events, err := domain.DecideBatch(tc.state, tc.cmd)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if got := specFields(err); !equalStrings(got, tc.fields) {
				t.Errorf("fields %v, want %v", got, tc.fields)
			}
			var types []string
			for _, e := range events {
				types = append(types, e.EventType())
			}
			if !equalStrings(types, tc.types) {
				t.Errorf("events %v, want %v", types, tc.types)
			}
		})
	}
}

func TestBatchLifecycle(t *testing.T) {
	t.Parallel()
	b := batchOf(t,
		domain.RequestBatch{ID: "b1", Request: batchMessage(), GroupID: "staff", GroupVersion: 3, Size: 2500, ApprovalThreshold: 1000, Actor: "ann", Now: t0},
	)
	if b.Status() != domain.BatchStatusAwaitingApproval || b.Runnable() || b.ApprovalReason() == "" {
		t.Fatalf("status %s, reason %q", b.Status(), b.ApprovalReason())
	}
	b = batchOf(t,
		domain.RequestBatch{ID: "b1", Request: batchMessage(), GroupID: "staff", GroupVersion: 3, Size: 2500, ApprovalThreshold: 1000, Actor: "ann", Now: t0},
		domain.ApproveBatch{Actor: "root", Admin: true, Now: at(1)},
		domain.RecordFanOutProgress{Done: 1000, Now: at(2)},
		domain.RecordFanOutProgress{Done: 2000, Failed: 3, Now: at(3)},
	)
	if done, failed := b.Progress(); b.Status() != domain.BatchStatusInProgress || done != 2000 || failed != 3 || !b.Runnable() {
		t.Fatalf("status %s, progress %d/%d", b.Status(), done, failed)
	}
	if who, _, _ := b.Decision(); who != "root" {
		t.Errorf("decided by %q", who)
	}
	if g, v := b.Group(); g != "staff" || v != 3 {
		t.Errorf("group %s@%d", g, v)
	}
	r := b.MemberRequest("u-7")
	if r.Recipient.ID != "u-7" || r.BatchID != "b1" || r.Content.Body != "News" || r.Priority != domain.PriorityNormal {
		t.Errorf("member request %+v", r)
	}
	if domain.BatchItemKey("b1", "u-7") != "batch-b1-u-7" || domain.BatchStream("b1") != "batch-b1" {
		t.Error("key or stream name")
	}
	// A replayed (duplicate) progress event does not move the cursor back.
	b = domain.EvolveBatch(b, domain.FanOutProgressed{BatchID: "b1", Done: 1000})
	if done, _ := b.Progress(); done != 2000 {
		t.Errorf("cursor moved back to %d", done)
	}
}
