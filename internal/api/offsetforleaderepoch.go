package api

// OffsetForLeaderEpoch (key 23), versions 0–4 (KIP-101, KIP-279, KIP-320).
//   v0: the end offset of the requested epoch.  v1: and the epoch it belongs to (the largest
//   known epoch ≤ the requested one).  v2: current_leader_epoch fencing (FENCED_LEADER_EPOCH,
//   UNKNOWN_LEADER_EPOCH) and throttle time.  v3: replica_id (-1 consumers, ≥ 0 followers;
//   both get the same answer).  v4: flexible.
// The answer comes from the partition's leader-epoch checkpoint: the start offset of the next
// larger epoch, or the log end offset for the current epoch; -1/-1 for an undefined or an
// unknown newer epoch.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := kmsg.NewPtrOffsetForLeaderEpochResponse()
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			sp.ErrorCode = h.offsetForLeaderEpoch(rt.Topic, rp, req.Version, &sp)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// offsetForLeaderEpoch fills one partition's answer and returns its error code.
func (h *Handlers) offsetForLeaderEpoch(topic string, rp *kmsg.OffsetForLeaderEpochRequestTopicPartition,
	version int16, sp *kmsg.OffsetForLeaderEpochResponseTopicPartition) int16 {
	p, err := h.leader(topic, rp.Partition)
	if err != nil {
		return errCode(err)
	}
	if version >= 2 {
		if code := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); code != 0 {
			return code
		}
	}
	epoch, end, err := p.EndOffsetForEpoch(rp.LeaderEpoch)
	if err != nil {
		return errCode(err)
	}
	sp.LeaderEpoch, sp.EndOffset = epoch, end
	return 0
}
