package api

// Heartbeat (key 12), versions 0–4, the classic group protocol.
//   v1: throttle time.  v2: no schema change.  v3: group.instance.id (KIP-345).
//   v4: flexible.
// REBALANCE_IN_PROGRESS tells a member to rejoin; the heartbeat still counts for its session.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
)

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.HeartbeatRequest)
	hr := group.HeartbeatRequest{Group: r.Group, Generation: r.Generation, MemberID: r.MemberID}
	if req.Version >= 3 {
		hr.InstanceID = r.InstanceID
	}
	wait := awaitResult(func(cb func(error)) { h.Groups.Heartbeat(hr, cb) })
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.ErrorCode = errCode(wait())
		return resp
	}), nil
}
