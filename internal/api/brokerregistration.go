package api

// BrokerRegistration (key 62), versions 0–4, controller side (KIP-631): a broker registers
// its listeners and rack with the active controller and gets its broker epoch; a broker that
// is not a voter becomes an observer of the metadata quorum. v1 adds
// is_migrating_zk_broker (refused: there is no ZooKeeper), v2 log dir ids, v3 the previous
// broker epoch, v4 nothing the controller reads.

import (
	"context"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/metadata"
)

func init() { register(62, 0, 4, handleBrokerRegistration) }

func handleBrokerRegistration(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.BrokerRegistrationRequest)
	resp := kmsg.NewPtrBrokerRegistrationResponse()
	resp.BrokerEpoch = -1
	if cid := h.Meta.Image().ClusterID(); cid != "" && r.ClusterID != "" && r.ClusterID != cid {
		resp.ErrorCode = kerr.InconsistentClusterID.Code
		return resp, nil
	}
	if r.IsMigratingZkBroker {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	reg := metadata.RegisterBrokerRecord{BrokerID: r.BrokerID, IncarnationID: r.IncarnationID, Rack: r.Rack}
	for _, l := range r.Listeners {
		reg.Endpoints = append(reg.Endpoints, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port), SecurityProtocol: l.SecurityProtocol})
	}
	epoch, err := h.Controller.RegisterBroker(ctx, reg)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	// A broker that is not a voter follows the metadata log as a raft observer, reached at the
	// first endpoint it registered (where it splits off raft connections).
	if len(reg.Endpoints) > 0 && h.Channel != nil && !slices.ContainsFunc(h.Meta.Voters(), func(v metadata.Voter) bool { return v.ID == r.BrokerID }) {
		e := reg.Endpoints[0]
		if err := h.Meta.AddObserver(ctx, r.BrokerID, net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port)))); err != nil {
			h.logReq(req).Warn("adding the broker as a metadata observer failed", "broker", r.BrokerID, "err", err)
			resp.ErrorCode = errCode(err)
			return resp, nil
		}
	}
	resp.BrokerEpoch = epoch
	return resp, nil
}
