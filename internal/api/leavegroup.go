package api

// LeaveGroup (key 13), versions 0–5, the classic group protocol.
//   v1: throttle time.  v2: no schema change.
//   v3: a batch of members, each by member id and/or group.instance.id, with an error each
//       (KIP-345).  v4: flexible.  v5: a reason per member (ignored).
// Before v3 the one member's error is the response's error.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.LeaveGroupRequest)
	var members []group.LeaveMember
	if req.Version < 3 {
		members = []group.LeaveMember{{MemberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			members = append(members, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	wait := awaitResult(func(cb func(group.LeaveResult)) { h.Groups.Leave(r.Group, members, cb) })
	version := req.Version
	return DeferFunc(func() Response {
		res := wait()
		resp := kmsg.NewPtrLeaveGroupResponse()
		resp.ErrorCode = errCode(res.Err)
		if version < 3 {
			if res.Err == nil && len(res.Members) == 1 {
				resp.ErrorCode = errCode(res.Members[0])
			}
			return resp
		}
		if res.Err != nil {
			return resp
		}
		for i, m := range members {
			lm := kmsg.NewLeaveGroupResponseMember()
			lm.MemberID, lm.InstanceID = m.MemberID, m.InstanceID
			lm.ErrorCode = errCode(res.Members[i])
			resp.Members = append(resp.Members, lm)
		}
		return resp
	}), nil
}
