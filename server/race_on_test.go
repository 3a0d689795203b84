//go:build race

package server_test

// timeoutScale stretches test timeouts under the race detector, which slows
// everything down several times.
const timeoutScale = 3
