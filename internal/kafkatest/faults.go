package kafkatest

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FailedCommit answers an OffsetCommit request with an error for every
// partition, for a kfake control function: REBALANCE_IN_PROGRESS when nth
// is odd, NOT_COORDINATOR when it is even, the failures a consumer meets
// while its group rebalances or its coordinator moves.
func FailedCommit(req *kmsg.OffsetCommitRequest, nth int64) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	code := kerr.RebalanceInProgress.Code
	if nth%2 == 0 {
		code = kerr.NotCoordinator.Code
	}
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
