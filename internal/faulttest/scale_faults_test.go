//go:build faults

package faulttest

func scale() int64 { return 4 }

const faultsBuild = true
