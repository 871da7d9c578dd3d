package domain_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"herald/domain"
)

func TestSnapshotRestoresTheSameState(t *testing.T) {
	t.Parallel()
	histories := map[string][]domain.Event{
		"none":         nil,
		"requested":    hRequested(),
		"planned":      hPlanned(),
		"in flight":    hEmailInFlight(),
		"sent":         hEmailSent(),
		"retry":        hEmailRetry(),
		"dead":         hEmailDead(),
		"inapp":        hInAppDelivered(),
		"delivered":    hAllDelivered(),
		"partial":      hPartial(),
		"all failed":   hAllFailed(),
		"suppressed":   hSMSSuppressed(),
		"expiring":     hExpiringPlanned(),
		"with receipt": hist(hEmailSent(), evs(receipt(did(email, 1), domain.ReceiptDelivered, "", at(3)))),
	}
	for name, h := range histories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := replay(h)
			raw, err := json.Marshal(n.Snapshot())
			if err != nil {
				t.Fatal(err)
			}
			var s domain.NotificationSnapshot
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatal(err)
			}
			got := domain.RestoreNotification(s)
			if !reflect.DeepEqual(got.Snapshot(), n.Snapshot()) {
				t.Fatalf("restored state differs:\n got %+v\nwant %+v", got.Snapshot(), n.Snapshot())
			}
			if got.Status() != n.Status() || got.Version() != n.Version() || len(got.Deliveries()) != len(n.Deliveries()) {
				t.Fatalf("accessors differ: %s/%d vs %s/%d", got.Status(), got.Version(), n.Status(), n.Version())
			}
			// The restored state must decide exactly like the original.
			cmd := domain.CancelNotification{Reason: "test", Actor: "ops", Now: at(9)}
			e1, err1 := domain.DecideNotification(n, cmd)
			e2, err2 := domain.DecideNotification(got, cmd)
			if !reflect.DeepEqual(e1, e2) || (err1 == nil) != (err2 == nil) {
				t.Fatalf("decisions differ: %v/%v vs %v/%v", e1, err1, e2, err2)
			}
		})
	}
}
