package api

// BrokerHeartbeat (key 63), versions 0–2, controller side (KIP-631): a registered broker
// reports that it is alive and how far it has applied the metadata log; the answer says
// whether it is caught up, fenced, and (in a controlled shutdown) allowed to stop. v1 adds
// offline log dirs, v2 cordoned log dirs, neither read yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(63, 0, 2, handleBrokerHeartbeat) }

func handleBrokerHeartbeat(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.BrokerHeartbeatRequest)
	resp := kmsg.NewPtrBrokerHeartbeatResponse()
	resp.IsFenced = true
	offset := uint64(0)
	if r.CurrentMetadataOffset > 0 {
		offset = uint64(r.CurrentMetadataOffset)
	}
	res, err := h.Controller.Heartbeat(ctx, controller.Heartbeat{BrokerID: r.BrokerID, BrokerEpoch: r.BrokerEpoch,
		MetadataOffset: offset, WantFence: r.WantFence, WantShutDown: r.WantShutdown, Conn: req.Conn.ID})
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = res.IsCaughtUp, res.IsFenced, res.ShouldShutDown
	return resp, nil
}
