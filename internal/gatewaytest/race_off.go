//go:build !race

package gatewaytest

// TimeoutScale stretches test timeouts under the race detector, which slows
// everything down several times.
const TimeoutScale = 1

// RaceEnabled reports whether the tests run with -race.
const RaceEnabled = false
