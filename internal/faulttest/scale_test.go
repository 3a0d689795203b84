//go:build !faults

package faulttest

// scale multiplies the length of load phases: 1 in `make test`, more with
// the faults build tag (`make test-faults`).
func scale() int64 { return 1 }

const faultsBuild = false
