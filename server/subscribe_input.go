package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	kgatev1 "github.com/kgate/kgate/gen/kgate/v1"
)

// The checks of what a Subscribe client sends, apart from the stream's
// handling of it: each refuses bad input with INVALID_ARGUMENT naming the
// valid range, as the proto documents.

// recvSubscribeRequest receives the next request of a Subscribe stream. A
// request that does not decode (a string that is not UTF-8, such as an
// ack id the client corrupted) ends the stream with INVALID_ARGUMENT,
// reason MALFORMED_REQUEST; other errors are RecvMsg's (see recvDecoded).
func recvSubscribeRequest(stream grpc.ServerStream) (*kgatev1.SubscribeRequest, error) {
	req := new(kgatev1.SubscribeRequest)
	if err := recvDecoded(stream, req, "every string field must be valid UTF-8; send ack ids back exactly as the gateway sent them"); err != nil {
		return nil, err
	}
	return req, nil
}

// startEarliest reads open.start_position: true for earliest, false for
// latest or unspecified.
func startEarliest(p kgatev1.StartPosition) (bool, error) {
	switch p {
	case kgatev1.StartPosition_START_POSITION_UNSPECIFIED, kgatev1.StartPosition_START_POSITION_LATEST:
		return false, nil
	case kgatev1.StartPosition_START_POSITION_EARLIEST:
		return true, nil
	}
	return false, invalidf("INVALID_SUBSCRIPTION", "start_position %d is not a StartPosition: use START_POSITION_EARLIEST (1) or START_POSITION_LATEST (2); 0 (unspecified) means latest", int32(p))
}

// nackDelay reads a nack's delay: unset means the subscription's backoff
// (useBackoff), else 0 to maxDeadline.
func nackDelay(d *durationpb.Duration) (delay time.Duration, useBackoff bool, err error) {
	if d == nil {
		return 0, true, nil
	}
	delay, err = requestDuration("INVALID_NACK", "nack delay", d, "0s (redeliver at once) to %v, or leave it unset for the subscription's backoff")
	return delay, false, err
}

// extendDeadline reads an extend's deadline: unset means ackDeadline, else
// 0 to maxDeadline.
func extendDeadline(d *durationpb.Duration, ackDeadline time.Duration) (time.Duration, error) {
	if d == nil {
		return ackDeadline, nil
	}
	return requestDuration("INVALID_EXTEND", "extend deadline", d, "0s to %v, or leave it unset for the subscription's ack_deadline")
}

// requestDuration checks a duration a client sent: valid, and from 0 to
// maxDeadline. valid describes the range (with a %v for maxDeadline).
func requestDuration(reason, name string, d *durationpb.Duration, valid string) (time.Duration, error) {
	if err := d.CheckValid(); err != nil {
		return 0, invalidf(reason, "%s is not a valid duration (%v): use "+valid, name, err, maxDeadline)
	}
	v := d.AsDuration()
	if v < 0 || v > maxDeadline {
		return 0, invalidf(reason, "%s %v is out of range: use "+valid, name, v, maxDeadline)
	}
	return v, nil
}
