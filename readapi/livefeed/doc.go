// Package livefeed pushes a recipient's in-app notifications to the
// browser tabs and apps it has open, as they happen: the live side of
// GET /v1/recipients/{id}/inbox.
//
// A Hub follows the event log ($all) with a single subscription while at
// least one client is connected, turns the events that matter to an in-app
// inbox into small messages, and fans each one out to the clients connected
// for its recipient:
//
//   - inbox: an in-app delivery succeeded (DeliverySucceeded of a delivery
//     planned on channel inapp); the data is a projections.InboxItem.
//   - read: the recipient read an in-app delivery (NotificationRead), so
//     other tabs can mark it read; the data is a ReadMark.
//   - resync: the client missed something it cannot get from the stream
//     (it was too slow, or the replay it asked for was too long) and should
//     reload its inbox with GET /v1/recipients/{id}/inbox; the data is a
//     Resync.
//
// Handler serves the stream over Server-Sent Events, or over a WebSocket
// when the request is an upgrade. Every inbox and read message carries the
// log position of its event as its id; a client that reconnects with that
// id (Last-Event-ID, or ?last_event_id=) first gets what it missed, replayed
// from the log, then the live feed, with nothing lost or repeated at the
// seam (see Hub for how).
//
// What it must not do: write anything (it changes no state; marking an
// item read is a command), block the hub on one slow client, or keep more
// in memory than the in-app deliveries in flight — anything older is read
// back from the notification's stream when needed. It reads only through
// the event log port and imports no store engine.
package livefeed
