package api

// ConsumerGroupDescribe (key 69), versions 0–1, describes KIP-848 consumer groups.
//   v0: state, group and assignment epochs, assignor, members with their subscriptions,
//   current and target assignments.
//   v1: each member's type (KIP-1099): always 1, "consumer", since classic members cannot
//   join a consumer group here.
// An unknown group, or a classic one, is GROUP_ID_NOT_FOUND with state Dead, as in Kafka.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ConsumerGroupDescribeRequest)
	waits := make([]func() group.ConsumerDescription, len(r.Groups))
	for i, g := range r.Groups {
		waits[i] = awaitResult(func(cb func(group.ConsumerDescription)) { h.Groups.ConsumerDescribe(g, cb) })
	}
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrConsumerGroupDescribeResponse()
		img := h.Meta.Image()
		for i := range r.Groups {
			d := waits[i]()
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode, g.ErrorMessage = d.Group, errCode(d.Err), errMessage(d.Err)
			g.State, g.Epoch, g.AssignmentEpoch, g.AssignorName = d.State, d.Epoch, d.AssignmentEpoch, d.Assignor
			if r.IncludeAuthorizedOperations {
				g.AuthorizedOperations = groupOpsAll
			}
			name := func(id group.TopicID) string {
				if t := img.TopicByID(id); t != nil {
					return t.Name
				}
				return d.TopicNames[id]
			}
			toKmsg := func(tps []group.TopicPartitions) kmsg.Assignment {
				a := kmsg.NewAssignment()
				a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
				for _, t := range tps {
					at := kmsg.NewAssignmentTopicPartition()
					at.TopicID, at.Topic, at.Partitions = t.ID, name(t.ID), t.Partitions
					a.TopicPartitions = append(a.TopicPartitions, at)
				}
				return a
			}
			for _, m := range d.Members {
				gm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
				gm.MemberID, gm.InstanceID, gm.RackID, gm.MemberEpoch = m.MemberID, m.InstanceID, m.RackID, m.Epoch
				gm.ClientID, gm.ClientHost = m.ClientID, m.ClientHost
				gm.SubscribedTopics, gm.SubscribedTopicRegex = m.SubscribedTopics, m.SubscribedRegex
				if gm.SubscribedTopics == nil {
					gm.SubscribedTopics = []string{}
				}
				gm.Assignment, gm.TargetAssignment = toKmsg(m.Assignment), toKmsg(m.Target)
				gm.MemberType = 1
				g.Members = append(g.Members, gm)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}), nil
}
