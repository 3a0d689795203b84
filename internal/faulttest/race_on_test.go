//go:build race

package faulttest

// timeoutScale stretches waits under the race detector.
const (
	timeoutScale = 3
	raceEnabled  = true
)
