//go:build !race

package server_test

const timeoutScale = 1
