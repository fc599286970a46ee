package api

// Forwarding (as KRaft brokers do, KIP-590): an admin request that only the active controller
// can decide, arriving at a broker that is not the active controller, is sent on to it and
// its answer relayed. Requests that arrive on a controller listener are never forwarded, so
// a request cannot travel in circles during a leadership change; they get NOT_CONTROLLER.

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/cluster"
	"github.com/poste-io/poste/internal/controller"
)

// forwardTimeout bounds a forwarded request when the client gave no timeout.
const forwardTimeout = 30 * time.Second

// forward sends req to the active controller when this node is not it. ok is false when the
// request is to be handled here.
func (h *Handlers) forward(ctx context.Context, req *Request) (Response, bool) {
	if h.Channel == nil || h.Meta.IsLeader() || slices.Contains(h.Config.ControllerListeners, req.Conn.Listener) {
		return nil, false
	}
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	body := req.Body
	resp, err := h.Channel.Request(fctx, body)
	if err != nil {
		h.logReq(req).Warn("forwarding to the active controller failed", "err", err)
		// The client retries on NOT_CONTROLLER after refreshing its metadata.
		r := body.ResponseKind()
		setTopLevelError(r, kerr.NotController.Code)
		r.SetVersion(req.Version)
		return r, true
	}
	resp.SetVersion(req.Version)
	return resp, true
}

// setTopLevelError marks every item of an admin response with code (used when forwarding
// failed before any answer).
func setTopLevelError(r kmsg.Response, code int16) {
	switch r := r.(type) {
	case *kmsg.ElectLeadersResponse:
		r.ErrorCode = code
	case *kmsg.AlterPartitionAssignmentsResponse:
		r.ErrorCode = code
	}
}

// createTopics creates topics for the broker's own needs (auto-creation, internal topics):
// locally on the active controller, else through the controller channel. It returns once
// the local image has the created topics, or the wait expired.
func (h *Handlers) createTopics(ctx context.Context, specs []controller.TopicSpec) []controller.TopicResult {
	if h.Channel == nil || h.Meta.IsLeader() {
		return h.Controller.CreateTopics(ctx, specs, false)
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(forwardTimeout / time.Millisecond)
	for _, s := range specs {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = s.Name, s.NumPartitions, s.ReplicationFactor
		for k, v := range s.Configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, v
			t.Configs = append(t.Configs, c)
		}
		req.Topics = append(req.Topics, t)
	}
	results := make([]controller.TopicResult, len(specs))
	for i, s := range specs {
		results[i] = controller.TopicResult{Name: s.Name, NumPartitions: -1, ReplicationFactor: -1}
	}
	fctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	kresp, err := h.Channel.Request(fctx, req)
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	resp := kresp.(*kmsg.CreateTopicsResponse)
	for i, t := range resp.Topics {
		if i >= len(results) {
			break
		}
		results[i].Err = cluster.CodeError(t.ErrorCode, t.ErrorMessage)
		if results[i].Err == nil {
			results[i].ID, results[i].NumPartitions, results[i].ReplicationFactor = t.TopicID, t.NumPartitions, t.ReplicationFactor
		}
	}
	// Answer once this broker knows the topics, as a local creation does.
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range specs {
		for h.Meta.Image().Topic(s.Name) == nil && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return results
}
