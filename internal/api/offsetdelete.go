package api

// OffsetDelete (key 47), version 0 (KIP-496).
// Deletes committed offsets of a group: of an empty group freely, of a consumer group with
// members only for topics none of them subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.OffsetDeleteRequest)
	var tps []group.TopicPartition
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
		}
	}
	type answer struct {
		err  error
		errs []error
	}
	wait := awaitResult(func(cb func(answer)) {
		h.Groups.DeleteOffsets(r.Group, tps, func(err error, errs []error) { cb(answer{err, errs}) })
	})
	return DeferFunc(func() Response {
		a := wait()
		resp := kmsg.NewPtrOffsetDeleteResponse()
		resp.ErrorCode = errCode(a.err)
		if a.err != nil {
			return resp
		}
		i := 0
		for _, t := range r.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition = p.Partition
				if i < len(a.errs) {
					rp.ErrorCode = errCode(a.errs[i])
				}
				i++
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}), nil
}
