package api

// ElectLeaders (key 43), versions 0–2 (KIP-183, KIP-460): preferred-replica election, and from
// v1 unclean election (election_type 1) of a partition that has no leader. A null topic list
// means every partition (preferred only). v1 adds the top-level error code.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ElectLeadersRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrElectLeadersResponse()
	unclean := req.Version >= 1 && r.ElectionType == 1
	if req.Version >= 1 && r.ElectionType != 0 && r.ElectionType != 1 {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	var parts []controller.TopicPartition
	if r.Topics != nil {
		parts = []controller.TopicPartition{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				parts = append(parts, controller.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, msDuration(max(r.TimeoutMillis, 1000)))
	defer cancel()
	results := h.Controller.ElectLeaders(cctx, unclean, parts)
	idx := map[string]int{}
	for _, res := range results {
		i, ok := idx[res.Topic]
		if !ok {
			t := kmsg.NewElectLeadersResponseTopic()
			t.Topic = res.Topic
			resp.Topics = append(resp.Topics, t)
			i = len(resp.Topics) - 1
			idx[res.Topic] = i
		}
		p := kmsg.NewElectLeadersResponseTopicPartition()
		p.Partition = res.Partition
		p.ErrorCode = errCode(res.Err)
		if res.Err != nil {
			p.ErrorMessage = errMessage(res.Err)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp, nil
}
