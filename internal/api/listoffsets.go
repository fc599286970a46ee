package api

// ListOffsets (key 2), versions 1–9.
//   v1: a single offset per partition (v0's offset lists are not served, as in Kafka 4).
//   v2: isolation level (read_committed answers the last stable offset for "latest").
//   v4: current leader epoch (fencing) and the leader epoch of the answer.
//   v6: flexible.  v7: MAX_TIMESTAMP (-3, KIP-734).  v8: EARLIEST_LOCAL (-4, KIP-405; equals
//   earliest without tiered storage).  v9: LATEST_TIERED (-5, KIP-1005; -1 without tiered storage).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(2, 1, 9, handleListOffsets) }

func handleListOffsets(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ListOffsetsRequest)
	resp := kmsg.NewPtrListOffsetsResponse()
	committed := r.IsolationLevel == 1
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, err := h.leader(rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = errCode(err)
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if code := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); code != 0 {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			if p.Failed() {
				sp.ErrorCode = kerr.KafkaStorageError.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			epoch := p.LeaderEpoch()
			switch ts := rp.Timestamp; {
			case ts == -1: // latest
				sp.Offset = p.HighWatermark()
				if committed {
					sp.Offset = p.LastStableOffset()
				}
				sp.LeaderEpoch = epoch
			case ts == -2 || ts == -4: // earliest, earliest local
				sp.Offset = p.LogStartOffset()
				sp.LeaderEpoch = epoch
			case ts == -3: // max timestamp
				mts, off := p.MaxTimestamp()
				if off >= 0 && off < p.HighWatermark() {
					sp.Timestamp, sp.Offset, sp.LeaderEpoch = mts, off, epoch
				}
			case ts == -5: // latest tiered: no tiered storage
			case ts < 0:
				sp.ErrorCode = kerr.InvalidRequest.Code
			default:
				off, found, ok, err := p.OffsetForTimestamp(ts)
				switch {
				case err != nil:
					sp.ErrorCode = errCode(err)
				case ok:
					sp.Timestamp, sp.Offset, sp.LeaderEpoch = found, off, epoch
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
