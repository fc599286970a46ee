package api

// ConsumerGroupHeartbeat (key 68), versions 0–1, the KIP-848 consumer group protocol.
//   v0: the coordinator names a member that joins with an empty member id.
//   v1: the client names itself (the member id is required); SubscribedTopicRegex, a
//   regular expression matched against whole topic names (internal topics excepted).
// The coordinator assigns partitions with its server-side assignors, "uniform" (the
// default) and "range"; any other name is UNSUPPORTED_ASSIGNOR. The answer is sent once
// the records of the change are committed in __consumer_offsets.
// The heartbeat interval and session timeout come from group.consumer.heartbeat.interval.ms
// and group.consumer.session.timeout.ms, the size bound from group.consumer.max.size.

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/metadata"
)

func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

// topicsView shows a metadata image to the group coordinator; images are immutable.
type topicsView struct{ img *metadata.Image }

func (v topicsView) Topic(name string) (group.TopicInfo, bool) {
	t := v.img.Topic(name)
	if t == nil {
		return group.TopicInfo{}, false
	}
	return group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))}, true
}

func (v topicsView) Each(fn func(group.TopicInfo)) {
	for _, t := range v.img.Topics() {
		fn(group.TopicInfo{Name: t.Name, ID: t.ID, Partitions: int32(len(t.Partitions))})
	}
}

func handleConsumerGroupHeartbeat(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	if req.Version >= 1 && r.MemberID == "" {
		err := fmt.Errorf("%w: MemberId can't be empty.", group.ErrInvalidRequest)
		resp.ErrorCode, resp.ErrorMessage = errCode(err), errMessage(err)
		return resp, nil
	}
	hr := group.ConsumerHeartbeatRequest{
		Group: r.Group, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch, InstanceID: r.InstanceID,
		RackID: r.RackID, RebalanceTimeoutMs: r.RebalanceTimeoutMillis, SubscribedTopics: r.SubscribedTopicNames,
		ServerAssignor: r.ServerAssignor, ClientID: req.ClientID, ClientHost: clientHost(req.Conn),
		SessionTimeout:    msDuration(h.Config.ConsumerSessionTimeoutMs),
		HeartbeatInterval: msDuration(h.Config.ConsumerHeartbeatIntervalMs),
		Topics:            topicsView{h.Meta.Image()},
	}
	if n := h.Config.ConsumerGroupMaxSize; n > 0 && n < math.MaxInt32 {
		hr.MaxSize = int(n)
	}
	if req.Version >= 1 {
		hr.SubscribedRegex = r.SubscribedTopicRegex
	}
	if r.Topics != nil {
		hr.Owned = make([]group.TopicPartitions, 0, len(r.Topics))
		for _, t := range r.Topics {
			hr.Owned = append(hr.Owned, group.TopicPartitions{ID: t.TopicID, Partitions: t.Partitions})
		}
	}
	wait := awaitResult(func(cb func(group.ConsumerHeartbeatResult)) { h.Groups.ConsumerHeartbeat(hr, cb) })
	return DeferFunc(func() Response {
		res := wait()
		resp.ErrorCode, resp.ErrorMessage = errCode(res.Err), errMessage(res.Err)
		if res.Err != nil {
			return resp
		}
		resp.MemberID = strPtr(res.MemberID)
		resp.MemberEpoch = res.MemberEpoch
		resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval / time.Millisecond)
		if res.Assignment != nil {
			a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
			a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
			for _, t := range res.Assignment {
				at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				at.TopicID, at.Partitions = t.ID, t.Partitions
				a.Topics = append(a.Topics, at)
			}
			resp.Assignment = &a
		}
		return resp
	}), nil
}
