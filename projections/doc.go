// Package projections will hold the projectors (event → view change), the
// checkpoint and rebuild runner, and the view ports.
//
// It imports only domain and the event store port, and never changes state
// except the views it owns. Nothing here yet: projections are issue 3.
package projections
