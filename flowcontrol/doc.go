// Package flowcontrol holds kgate's admission and flow-control data
// structures: the publish in-flight byte Budget, and for subscriptions the
// per-stream Window of outstanding records and the per-partition ack Tracker.
//
// The package has no goroutines and does no I/O. Budget is safe for
// concurrent use; every other type belongs to one owning goroutine and is not
// safe for concurrent use.
package flowcontrol
