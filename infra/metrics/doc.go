// Package metrics exposes Herald's Prometheus metrics: HTTP requests by route
// and code, event log appends, and whatever gauges the composition root
// registers (projection lag). It holds no global registry: the caller creates
// one with New and passes it where it is needed.
package metrics
