// Package readapi will hold the query HTTP endpoints (status, audit trail,
// search, inbox, analytics) and the live feed, reading only through the
// projections' view ports. Nothing here yet: the read side is issue 3.
package readapi
