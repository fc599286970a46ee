package api

// SyncGroup (key 14), versions 0–5, the classic group protocol.
//   v1: throttle time.  v2: no schema change.  v3: group.instance.id (KIP-345).
//   v4: flexible.  v5: protocol type and name in request and response (KIP-559), checked
//   against the group's.
// Members wait for the leader's assignment, which is answered once stored, so the answer is
// deferred.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.SyncGroupRequest)
	sr := group.SyncRequest{Group: r.Group, Generation: r.Generation, MemberID: r.MemberID,
		Assignments: make(map[string][]byte, len(r.GroupAssignment))}
	if req.Version >= 3 {
		sr.InstanceID = r.InstanceID
	}
	if req.Version >= 5 {
		sr.ProtocolType, sr.Protocol = r.ProtocolType, r.Protocol
	}
	for _, a := range r.GroupAssignment {
		sr.Assignments[a.MemberID] = a.MemberAssignment
	}
	wait := awaitResult(func(cb func(group.SyncResult)) { h.Groups.Sync(sr, cb) })
	return DeferFunc(func() Response {
		res := wait()
		resp := kmsg.NewPtrSyncGroupResponse()
		resp.ErrorCode = errCode(res.Err)
		if res.Err == nil {
			resp.ProtocolType, resp.Protocol = strPtr(res.ProtocolType), strPtr(res.Protocol)
			resp.MemberAssignment = res.Assignment
		}
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
		return resp
	}), nil
}
