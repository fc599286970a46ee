package api

// DescribeCluster (key 60), versions 0–1.
//   v0: brokers, controller, cluster id, authorized operations.  v1: endpoint type (1 = brokers;
//   2 = controllers: the quorum's voters at their controller listeners, KIP-919).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DescribeClusterRequest)
	resp := kmsg.NewPtrDescribeClusterResponse()
	if req.Version >= 1 && r.EndpointType == 2 {
		// The controllers (KIP-919): the voters at their controller listeners.
		resp.EndpointType = 2
		resp.ClusterID = h.Meta.Image().ClusterID()
		resp.ControllerID = -1
		if id, ok := h.Meta.LeaderID(); ok {
			resp.ControllerID = id
		}
		for _, v := range h.Meta.Voters() {
			if v.Addr == "" {
				continue // a single node has no controller listener
			}
			host, port := splitHostPort(v.Addr)
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port = v.ID, host, int32(port)
			resp.Brokers = append(resp.Brokers, b)
		}
		resp.ClusterAuthorizedOperations = notRequestedOps
		return resp, nil
	}
	if req.Version >= 1 && r.EndpointType != 1 {
		resp.ErrorCode = kerr.UnsupportedEndpointType.Code
		msg := "Unknown endpoint type; 1 is brokers, 2 controllers"
		resp.ErrorMessage = &msg
		return resp, nil
	}
	resp.EndpointType = 1
	resp.ClusterID = h.Meta.Image().ClusterID()
	img := h.Meta.Image()
	resp.ControllerID = h.controllerID(img)
	for _, mb := range h.brokers(img, req.Conn.Listener) {
		b := kmsg.NewDescribeClusterResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = mb.NodeID, mb.Host, mb.Port, mb.Rack
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterAuthorizedOperations = notRequestedOps
	if r.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = clusterOpsAll
	}
	return resp, nil
}
