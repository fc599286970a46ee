package api

// JoinGroup (key 11), versions 0–9, the classic group protocol.
//   v1: rebalance timeout (v0 uses the session timeout).  v2: throttle time.
//   v3: no schema change.  v4: an unknown member first gets MEMBER_ID_REQUIRED with its id
//   and rejoins with it (KIP-394).  v5: group.instance.id, static membership (KIP-345).
//   v6: flexible.  v7: protocol type and name in the response, nullable (KIP-559).
//   v8: a reason (logged by Kafka; ignored).  v9: skip_assignment for a static leader that
//   rejoins a stable group (KIP-814).
// The answer is parked until the join completes (all members rejoined, or the rebalance
// timeout), so it is deferred.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.JoinGroupRequest)
	jr := group.JoinRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID,
		ClientID: req.ClientID, ClientHost: clientHost(req.Conn),
		SessionTimeout: msDuration(r.SessionTimeoutMillis), RebalanceTimeout: msDuration(r.RebalanceTimeoutMillis),
		ProtocolType: r.ProtocolType, RequireKnownMemberID: req.Version >= 4, SupportsSkipAssign: req.Version >= 9,
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	if req.Version < 5 {
		jr.InstanceID = nil
	}
	for _, p := range r.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	wait := awaitResult(func(cb func(group.JoinResult)) { h.Groups.Join(jr, cb) })
	version := req.Version
	return DeferFunc(func() Response {
		res := wait()
		resp := kmsg.NewPtrJoinGroupResponse()
		resp.ErrorCode = errCode(res.Err)
		resp.Generation = res.Generation
		resp.MemberID = res.MemberID
		resp.LeaderID = res.LeaderID
		resp.SkipAssignment = res.SkipAssignment
		switch {
		case res.Err == nil:
			resp.ProtocolType, resp.Protocol = strPtr(res.ProtocolType), strPtr(res.Protocol)
		case version < 7:
			resp.Protocol = strPtr("") // not nullable before v7
		}
		for _, m := range res.Members {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID, jm.InstanceID, jm.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
			resp.Members = append(resp.Members, jm)
		}
		return resp
	}), nil
}
