package api

// AlterConfigs (key 33), versions 0–2.
//   v0: replaces a resource's whole set of dynamic configs (keys not listed are removed).
//   v1: no change (throttling after the response).  v2: flexible.
// Resources: topics (type 2) and brokers (type 4: a node id, or "" for the cluster-wide
// defaults), persisted through the metadata log and effective without restart. Topic values
// are checked as CreateTopics checks them (INVALID_CONFIG); broker keys must be ones Kafka
// lets change at run time.

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AlterConfigsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrAlterConfigsResponse()
	var changes []controller.ConfigChange
	var slots []int // response index of each change
	for _, res := range r.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = res.ResourceType, res.ResourceName
		cfgs := make(map[string]*string, len(res.Configs))
		dup := ""
		for _, c := range res.Configs {
			if _, ok := cfgs[c.Name]; ok {
				dup = c.Name
			}
			cfgs[c.Name] = c.Value
		}
		if err := checkConfigResource(h, int8(res.ResourceType), res.ResourceName); err != nil {
			sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		} else if dup != "" {
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "Error due to duplicate config keys"
			sr.ErrorMessage = &msg
		} else {
			changes = append(changes, controller.ConfigChange{ResourceType: int8(res.ResourceType),
				ResourceName: res.ResourceName, Configs: cfgs, Replace: true})
			slots = append(slots, len(resp.Resources))
		}
		resp.Resources = append(resp.Resources, sr)
	}
	if len(changes) > 0 {
		results := h.Controller.AlterConfigs(ctx, changes, r.ValidateOnly)
		for i, res := range results {
			sr := &resp.Resources[slots[i]]
			sr.ErrorCode, sr.ErrorMessage = errCode(res.Err), errMessage(res.Err)
		}
		if err := h.waitConfigsApplied(ctx, r.ValidateOnly); err != nil {
			h.logReq(req).Warn("configs altered but not yet applied here", "err", err)
		}
	}
	return resp, nil
}

// checkConfigResource refuses what AlterConfigs cannot change: unknown resource types, and
// broker resources naming another node (Kafka forwards those; a single node has none).
func checkConfigResource(h *Handlers, typ int8, name string) error {
	switch typ {
	case 2:
		return nil
	case 4:
		if name != "" && name != strconv.Itoa(int(h.Config.NodeID)) {
			return errInvalidRequest("Unexpected broker id, expected " + strconv.Itoa(int(h.Config.NodeID)) + " or empty string, but received " + name)
		}
		return nil
	}
	return errInvalidRequest("Unsupported resource type " + strconv.Itoa(int(typ)))
}

// waitConfigsApplied waits until this broker has applied the metadata that now holds the
// changes, so a DescribeConfigs or produce that follows sees them.
func (h *Handlers) waitConfigsApplied(ctx context.Context, validateOnly bool) error {
	if validateOnly {
		return nil
	}
	return h.Replicas.WaitApplied(ctx, h.Meta.Image().AppliedIndex())
}

// errInvalidRequest is an INVALID_REQUEST answer with Kafka's message.
func errInvalidRequest(msg string) error {
	return &kerrWithMessage{kerr.InvalidRequest, msg}
}
