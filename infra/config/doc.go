// Package config is Herald's configuration: the Serve settings, parsed once
// by cmd/herald from flags and HERALD_* environment variables, defaulted and
// validated with every problem reported at once.
//
// It does not read the environment itself: the caller passes a lookup
// function, so tests and the composition root decide where values come from.
package config
