package api

// CreatePartitions (key 37), versions 0–3.
//   v2: flexible.  v3: no schema change.
// Partitions only grow; the answer waits until the new partitions are open here.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.CreatePartitionsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrCreatePartitionsResponse()
	specs := make([]controller.PartitionsSpec, 0, len(r.Topics))
	for _, t := range r.Topics {
		s := controller.PartitionsSpec{Topic: t.Topic, Count: t.Count}
		for _, a := range t.Assignment {
			s.Assignments = append(s.Assignments, a.Replicas)
		}
		specs = append(specs, s)
	}
	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := h.Controller.CreatePartitions(cctx, specs, r.ValidateOnly)
	if !r.ValidateOnly {
		if err := h.Replicas.WaitApplied(cctx, h.Meta.Image().AppliedIndex()); err != nil {
			h.logReq(req).Warn("new partitions not yet open", "err", err)
		}
	}
	for _, res := range results {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = res.Name
		st.ErrorCode = errCode(res.Err)
		st.ErrorMessage = errMessage(res.Err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
