// Package projections turns the event log into read models: it defines the
// view ports (the write side a projector needs, Store, and the query side the
// read API needs: NotificationView, Search, Inbox, Analytics) and the Runner
// that feeds every projection from the log, keeps its checkpoint, reports its
// lag and rebuilds it from position zero while the old view keeps answering.
//
// Like database/sql, the ports are types and interfaces only: the engines
// live in infra/viewstore. This package imports only the standard library,
// domain and the event store port, and never writes anything but views
// through Store. Projectors never decide a notification's status themselves:
// they decode events with domain.UnmarshalEvent and evolve a restored
// domain.NotificationSnapshot, so the view always agrees with the domain.
package projections
