package domain

import (
	"slices"
	"time"
)

// NotificationSnapshot is a Notification's whole state as plain data, so that
// a projection or a cache can store it and later resume evolving from it
// instead of replaying the stream. RestoreNotification(n.Snapshot()) equals n.
// The JSON form is internal to Herald's stores, not part of the API.
type NotificationSnapshot struct {
	ID             NotificationID      `json:"id"`
	Exists         bool                `json:"exists"`
	Request        NotificationRequest `json:"request"`
	IdempotencyKey string              `json:"idempotency_key,omitempty"`
	RequestedAt    time.Time           `json:"requested_at"`
	Version        int                 `json:"version"`
	Planned        bool                `json:"planned,omitempty"`
	HeldUntil      time.Time           `json:"held_until,omitzero"`
	Cancelled      bool                `json:"cancelled,omitempty"`
	Expired        bool                `json:"expired,omitempty"`
	Status         NotificationStatus  `json:"status"`
	Deliveries     []DeliverySnapshot  `json:"deliveries,omitempty"`
	KeyedResends   []ResendRequested   `json:"keyed_resends,omitempty"`
}

// DeliverySnapshot is a Delivery's whole state as plain data.
type DeliverySnapshot struct {
	ID                DeliveryID        `json:"id"`
	Channel           Channel           `json:"channel"`
	Address           string            `json:"address,omitempty"`
	Status            DeliveryStatus    `json:"status"`
	Attempts          int               `json:"attempts,omitempty"`
	Throttles         int               `json:"throttles,omitempty"`
	AttemptOpen       bool              `json:"attempt_open,omitempty"`
	LastError         string            `json:"last_error,omitempty"`
	ProviderMessageID string            `json:"provider_message_id,omitempty"`
	NextAttemptAt     time.Time         `json:"next_attempt_at,omitzero"`
	PlannedAt         time.Time         `json:"planned_at,omitzero"`
	Repeats           DeliveryID        `json:"repeats,omitempty"`
	SuppressionReason string            `json:"suppression_reason,omitempty"`
	Receipts          []ReceiptSnapshot `json:"receipts,omitempty"`
	Rendered          *Content          `json:"rendered,omitempty"`
}

// ReceiptSnapshot is one provider receipt already recorded on a delivery
// (kept so that a duplicate callback stays a no-op after a restore).
type ReceiptSnapshot struct {
	Outcome           ReceiptOutcome `json:"outcome"`
	ProviderMessageID string         `json:"provider_message_id,omitempty"`
	Reason            string         `json:"reason,omitempty"`
}

// Snapshot returns n's state as plain data that shares no memory with n.
func (n Notification) Snapshot() NotificationSnapshot {
	s := NotificationSnapshot{
		ID: n.id, Exists: n.exists, Request: n.request.clone(), IdempotencyKey: n.idempotencyKey,
		RequestedAt: n.requestedAt, Version: n.version, Planned: n.planned, HeldUntil: n.heldUntil, Cancelled: n.cancelled,
		Expired: n.expired, Status: n.status,
	}
	for _, r := range n.keyedResends {
		r.Deliveries = slices.Clone(r.Deliveries)
		s.KeyedResends = append(s.KeyedResends, r)
	}
	for _, d := range n.deliveries {
		ds := DeliverySnapshot{
			ID: d.id, Channel: d.channel, Address: d.address, Status: d.status, Attempts: d.attempts, Throttles: d.throttles,
			AttemptOpen: d.attemptOpen, LastError: d.lastError, ProviderMessageID: d.providerMessageID,
			NextAttemptAt: d.nextAttemptAt, PlannedAt: d.plannedAt, Repeats: d.repeats, SuppressionReason: d.suppressionReason,
			Rendered: d.rendered,
		}
		for _, r := range d.receipts {
			ds.Receipts = append(ds.Receipts, ReceiptSnapshot{Outcome: r.outcome, ProviderMessageID: r.providerMessageID, Reason: r.reason})
		}
		s.Deliveries = append(s.Deliveries, ds)
	}
	return s
}

// RestoreNotification rebuilds the Notification a snapshot was taken of.
func RestoreNotification(s NotificationSnapshot) Notification {
	n := Notification{
		id: s.ID, exists: s.Exists, request: s.Request.clone(), idempotencyKey: s.IdempotencyKey,
		requestedAt: s.RequestedAt, version: s.Version, planned: s.Planned, heldUntil: s.HeldUntil, cancelled: s.Cancelled,
		expired: s.Expired, status: s.Status,
	}
	for _, r := range s.KeyedResends {
		r.Deliveries = slices.Clone(r.Deliveries)
		n.keyedResends = append(n.keyedResends, r)
	}
	for _, ds := range s.Deliveries {
		d := Delivery{
			id: ds.ID, channel: ds.Channel, address: ds.Address, status: ds.Status, attempts: ds.Attempts, throttles: ds.Throttles,
			attemptOpen: ds.AttemptOpen, lastError: ds.LastError, providerMessageID: ds.ProviderMessageID,
			nextAttemptAt: ds.NextAttemptAt, plannedAt: ds.PlannedAt, repeats: ds.Repeats, suppressionReason: ds.SuppressionReason,
			rendered: ds.Rendered,
		}
		for _, r := range ds.Receipts {
			d.receipts = append(d.receipts, receiptKey{outcome: r.Outcome, providerMessageID: r.ProviderMessageID, reason: r.Reason})
		}
		n.deliveries = append(n.deliveries, d)
	}
	n.deliveries = slices.Clip(n.deliveries)
	return n
}
