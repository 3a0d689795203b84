//go:build !linux || !cgo

package kafkaio

// TuneMalloc does nothing where the C library is not glibc.
func TuneMalloc() {}

func releaseMemory() {}
