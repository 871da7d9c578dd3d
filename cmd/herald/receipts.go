package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"herald/adapters/sms"
	"herald/commands"
	"herald/domain"
	"herald/infra/config"
	"herald/infra/httpserver"
)

// smsReceipts serves POST /v1/receipts/sms. An SMS provider's status
// callback carries no API key: it is a form signed with the account's auth
// token (X-Twilio-Signature), checked before anything in it is trusted, and
// recorded as the "sms-callback" actor. Anything else is the JSON receipt
// every channel accepts, which needs a key with the send scope.
func smsReceipts(d config.Delivery, h *commands.RecordReceiptHandler, withKey http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signed := r.Header.Get("X-Twilio-Signature") != "" &&
			strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
		if !signed {
			withKey.ServeHTTP(w, r)
			return
		}
		if d.SMSAuthToken == "" || d.PublicURL == "" {
			httpserver.Problem(w, http.StatusNotFound, "sms-callbacks-off", "SMS callbacks not configured",
				"SMS status callbacks are not configured on this server (sms-account-sid and public-url)")
			return
		}
		rc, err := sms.ParseStatusCallback(r, d.SMSAuthToken, d.PublicURL)
		switch {
		case errors.Is(err, sms.ErrBadSignature):
			httpserver.Problem(w, http.StatusUnauthorized, "bad-signature", "Bad callback signature", "the callback's signature does not match")
			return
		case err != nil:
			httpserver.Problem(w, http.StatusBadRequest, "invalid-callback", "Invalid callback", err.Error())
			return
		}
		if !rc.Final {
			w.WriteHeader(http.StatusNoContent) // queued, sending, sent: nothing decided yet
			return
		}
		res, err := h.Handle(r.Context(), commands.RecordReceipt{
			Origin: commands.Origin{Actor: "sms-callback"}, Channel: domain.ChannelSMS,
			NotificationID: rc.NotificationID, DeliveryID: rc.DeliveryID, Outcome: rc.Outcome,
			Reason: rc.Reason, ProviderMessageID: rc.ProviderMessageID,
		})
		switch {
		case err != nil && commands.Transient(err):
			// The provider retries callbacks that fail: this one may
			// be recorded next time (the store was busy or down).
			log.Warn("sms status callback not recorded yet; the provider will retry", "notification", rc.NotificationID, "delivery", rc.DeliveryID, "err", err)
			httpserver.Problem(w, http.StatusServiceUnavailable, "unavailable", "Try again", "the receipt could not be recorded now")
			return
		case err != nil:
			// A receipt the ledger refuses (unknown delivery, closed)
			// will not improve with a retry: acknowledged and logged.
			log.Warn("sms status callback not recorded", "notification", rc.NotificationID, "delivery", rc.DeliveryID, "err", err)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"notification_id": res.NotificationID, "delivery_id": res.DeliveryID, "delivery_status": res.DeliveryStatus,
		})
	})
}
