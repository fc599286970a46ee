package api

// ListPartitionReassignments (key 46), version 0 (KIP-455): the reassignments in progress, with
// the full replica set, the replicas being added and those being removed. A null topic list
// means every partition.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ListPartitionReassignmentsRequest)
	resp := kmsg.NewPtrListPartitionReassignmentsResponse()
	var parts []controller.TopicPartition
	if r.Topics != nil {
		parts = []controller.TopicPartition{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, controller.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	idx := map[string]int{}
	for _, o := range h.Controller.ListReassignments(parts) {
		i, ok := idx[o.Topic]
		if !ok {
			t := kmsg.NewListPartitionReassignmentsResponseTopic()
			t.Topic = o.Topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			idx[o.Topic] = i
		}
		p := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas = o.Partition, o.Replicas, o.Adding, o.Removing
		if p.AddingReplicas == nil {
			p.AddingReplicas = []int32{}
		}
		if p.RemovingReplicas == nil {
			p.RemovingReplicas = []int32{}
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp, nil
}
