//go:build race

package logbus_test

// raceEnabled tells the tests the race detector slows them several times.
const raceEnabled = true
