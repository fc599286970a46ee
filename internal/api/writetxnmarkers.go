package api

// WriteTxnMarkers (key 27), versions 0–1.
//   v1: flexible.  v2 (transaction version in the marker) is not served.
// Sent by a transaction coordinator to partition leaders. Poste's coordinator writes markers
// to the partitions directly; this handler serves the same operation for completeness and
// answers once each marker is durable.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(27, 0, 1, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.WriteTxnMarkersRequest)
	resp := kmsg.NewPtrWriteTxnMarkersResponse()
	var pending []pendingMarker
	for _, m := range r.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, mt := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = mt.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(mt.Partitions))
			for i, p := range mt.Partitions {
				rp := &rt.Partitions[i]
				*rp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				rp.Partition = p
				part, err := h.Replicas.Get(mt.Topic, p)
				if err != nil {
					rp.ErrorCode = errCode(err)
					continue
				}
				res, err := part.AppendMarker(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch)
				if err != nil {
					rp.ErrorCode = errCode(err)
					continue
				}
				pending = append(pending, pendingMarker{await: part.AwaitCommitted, end: res.LastOffset + 1, code: &rp.ErrorCode})
			}
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	if len(pending) == 0 {
		return resp, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	return DeferFunc(func() Response {
		for _, pm := range pending {
			if err := pm.await(pm.end, deadline); err != nil {
				*pm.code = errCode(err)
			}
		}
		return resp
	}), nil
}

type pendingMarker struct {
	await func(int64, time.Time) error
	end   int64
	code  *int16
}
