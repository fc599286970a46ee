package api

// InitProducerId (key 22), versions 0–5, for idempotent producers.
//   v2: flexible.  v3: producer id and epoch in the request (KIP-360: a producer asking to bump
//   its epoch after an error gets a fresh producer id instead, which is equally safe for
//   idempotence without transactions).  v4–v5: no schema change for idempotent producers.
// A transactional id is refused until the transaction coordinator exists: franz-go and the
// Java client reach it only through FindCoordinator, which is not served yet.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	id, err := h.ProducerIDs.Next(ctx)
	if err != nil {
		h.logReq(req).Warn("producer id allocation failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
