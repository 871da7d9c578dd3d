//go:build !race

package logbus_test

const raceEnabled = false
