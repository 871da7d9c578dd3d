// Package readapi serves the query side of Herald's HTTP API (v1): a
// notification's status, its audit trail, search, recipient inboxes,
// analytics and the projections' admin endpoints. See NewHTTP for the
// routes.
//
// It reads only through ports: the projections' view ports for everything
// eventually consistent, and AuditLog (the event log's ReadStream) for the
// audit trail, which is served straight from the log so it is never stale.
// It imports no store implementation and changes no state, with one
// exception that is itself a port call: asking the projection runner to
// rebuild a projection.
//
// Not here: POST /v1/recipients/{id}/inbox/{notificationId}/read marks an
// in-app delivery read, which is a command (it appends NotificationRead
// after the domain decides); it belongs with the command API in commands/.
// The inbox view picks the read mark up from the log like any other event.
package readapi
