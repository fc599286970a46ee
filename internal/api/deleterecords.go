package api

// DeleteRecords (key 21), versions 0–2.
//   v0: moves each partition's log start offset; -1 means the high watermark.
//   v1: no change (throttling after the response).  v2: flexible.
// The answer is the new low watermark (the log start offset); the change is durable when
// it is sent. Segments wholly below it are removed after file.delete.delay.ms.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DeleteRecordsRequest)
	resp := kmsg.NewPtrDeleteRecordsResponse()
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := h.Replicas.Get(rt.Topic, rp.Partition)
			if err == nil {
				sp.LowWatermark, err = p.DeleteRecords(rp.Offset)
			}
			sp.ErrorCode = errCode(err)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
