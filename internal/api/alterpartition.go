package api

// AlterPartition (key 56), versions 0–3, controller side: a partition leader asks for an
// ISR change (KIP-497). v1 adds the leader recovery state, v2 topic ids in place of names,
// v3 broker epochs of the new ISR members (KIP-903; members are checked against the current
// registrations either way).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(56, 0, 3, handleAlterPartition) }

func handleAlterPartition(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AlterPartitionRequest)
	resp := kmsg.NewPtrAlterPartitionResponse()
	img := h.Meta.Image()
	type slot struct{ topic, part int }
	var changes []controller.ISRChange
	var slots []slot
	for _, rt := range r.Topics {
		t := kmsg.NewAlterPartitionResponseTopic()
		t.Topic, t.TopidID = rt.Topic, rt.TopicID
		id := rt.TopicID
		if req.Version < 2 {
			if mt := img.Topic(rt.Topic); mt != nil {
				id = mt.ID
			}
		}
		for _, rp := range rt.Partitions {
			p := kmsg.NewAlterPartitionResponseTopicPartition()
			p.Partition = rp.Partition
			isr := rp.NewISR
			if req.Version >= 3 {
				isr = isr[:0:0]
				for _, m := range rp.NewEpochISR {
					isr = append(isr, m.BrokerID)
				}
			}
			if img.TopicByID(id) == nil {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if req.Version >= 2 {
					p.ErrorCode = kerr.UnknownTopicID.Code
				}
			} else {
				changes = append(changes, controller.ISRChange{TopicID: id, Partition: rp.Partition,
					LeaderEpoch: rp.LeaderEpoch, PartitionEpoch: rp.PartitionEpoch, NewISR: isr})
				slots = append(slots, slot{len(resp.Topics), len(t.Partitions)})
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if len(changes) == 0 {
		return resp, nil
	}
	results := h.Controller.AlterPartition(ctx, r.BrokerID, r.BrokerEpoch, changes)
	for i, res := range results {
		p := &resp.Topics[slots[i].topic].Partitions[slots[i].part]
		p.ErrorCode = errCode(res.Err)
		p.LeaderID, p.LeaderEpoch, p.PartitionEpoch = res.Partition.Leader, res.Partition.LeaderEpoch, res.Partition.PartitionEpoch
		p.ISR = res.Partition.ISR
	}
	// A request-wide failure (not the controller, stale broker epoch) is reported at the top
	// as Kafka does.
	if len(results) > 0 {
		switch code := resp.Topics[slots[0].topic].Partitions[slots[0].part].ErrorCode; code {
		case kerr.NotController.Code, kerr.StaleBrokerEpoch.Code:
			resp.ErrorCode = code
		}
	}
	return resp, nil
}
