// Package server implements kgate's gRPC services on top of small Publisher
// and Subscriber interfaces that package kafkaio implements. It is the only
// package that speaks gRPC status: every error a client sees is made by
// toStatus in status.go.
package server
