//go:build !race

package faulttest

const (
	timeoutScale = 1
	raceEnabled  = false
)
