package api

// EndTxn (key 26), versions 0–4.
//   v1–v2: no schema change.  v3: flexible.  v4: no schema change (KIP-890 error handling).
// v5 (an epoch bump per transaction, KIP-890 part 2) is not served.
// The answer is sent once the decision (PrepareCommit or PrepareAbort) is durable; the markers
// are written afterwards, and requests for the id get CONCURRENT_TRANSACTIONS until they are.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(26, 0, 4, handleEndTxn) }

func handleEndTxn(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.EndTxnRequest)
	wait := awaitResult(func(cb func(error)) {
		h.Txns.EndTxn(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit, cb)
	})
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrEndTxnResponse()
		resp.ErrorCode = errCode(wait())
		if req.Version < 2 && resp.ErrorCode == kerr.ProducerFenced.Code {
			resp.ErrorCode = kerr.InvalidProducerEpoch.Code
		}
		return resp
	}), nil
}
