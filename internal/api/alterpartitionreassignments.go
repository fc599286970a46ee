package api

// AlterPartitionReassignments (key 45), versions 0–1 (KIP-455): move partitions to new replica
// sets. The new replicas are added first and copy the data as followers; once all of them are
// in the ISR the controller switches the partition to the target set (and moves the leader if
// it is being removed). Null replicas cancel a reassignment in progress. v1 adds
// allow_replication_factor_change (KIP-860): when false, a target of another size is refused.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(45, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AlterPartitionAssignmentsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrAlterPartitionAssignmentsResponse()
	resp.AllowReplicationFactorChange = req.Version < 1 || r.AllowReplicationFactorChange
	img := h.Meta.Image()
	type slot struct{ topic, part int }
	var reqs []controller.Reassignment
	var slots []slot
	for _, rt := range r.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			t := img.Topic(rt.Topic)
			switch {
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !resp.AllowReplicationFactorChange && rp.Replicas != nil &&
				len(rp.Replicas) != len(t.Partitions[rp.Partition].TargetReplicas()):
				sp.ErrorCode = kerr.InvalidReplicationFactor.Code
				sp.ErrorMessage = strPtr("The reassignment changes the replication factor and allow_replication_factor_change is false.")
			default:
				reqs = append(reqs, controller.Reassignment{Topic: rt.Topic, Partition: rp.Partition, Replicas: rp.Replicas})
				slots = append(slots, slot{len(resp.Topics), len(st.Partitions)})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(reqs) == 0 {
		return resp, nil
	}
	cctx, cancel := context.WithTimeout(ctx, msDuration(max(r.TimeoutMillis, 1000)))
	defer cancel()
	for i, res := range h.Controller.AlterReassignments(cctx, reqs) {
		sp := &resp.Topics[slots[i].topic].Partitions[slots[i].part]
		sp.ErrorCode = errCode(res.Err)
		if res.Err != nil {
			sp.ErrorMessage = errMessage(res.Err)
		}
	}
	return resp, nil
}
