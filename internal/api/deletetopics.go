package api

// DeleteTopics (key 20), versions 1–6.
//   v1: throttle.  v4: flexible.  v5: error messages.  v6: topics may be named by id.
// A topic's partitions are closed and their data removed once the deletion is committed to the
// metadata log; the answer waits for that.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(20, 1, 6, handleDeleteTopics) }

func handleDeleteTopics(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DeleteTopicsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrDeleteTopicsResponse()
	var names []string
	var ids [][16]byte
	if req.Version >= 6 {
		for _, t := range r.Topics {
			if t.Topic != nil && *t.Topic != "" {
				names = append(names, *t.Topic)
			} else {
				ids = append(ids, t.TopicID)
			}
		}
	} else {
		names = append(names, r.TopicNames...)
	}
	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := h.Controller.DeleteTopics(cctx, names, ids)
	if err := h.Replicas.WaitApplied(cctx, h.Meta.Image().AppliedIndex()); err != nil {
		h.logReq(req).Warn("deleted topics not yet removed", "err", err)
	}
	for _, res := range results {
		st := kmsg.NewDeleteTopicsResponseTopic()
		if res.Name != "" {
			name := res.Name
			st.Topic = &name
		}
		st.TopicID = res.ID
		st.ErrorCode = errCode(res.Err)
		st.ErrorMessage = errMessage(res.Err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
