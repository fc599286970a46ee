package api

// InitProducerId (key 22), versions 0–5.
//   v2: flexible.  v3: producer id and epoch in the request (KIP-360: a producer asking to bump
//   its epoch after an error). Without a transactional id it gets a fresh producer id instead,
//   which is equally safe for idempotence; with one, the transaction coordinator bumps the
//   epoch if the id and epoch are the current ones, else PRODUCER_FENCED.
//   v4–v5: no schema change. Transaction version 2 changes nothing here: InitProducerId
//   bumps the epoch as before, and each EndTxn v5 bumps it again.
// v6 (KIP-939 two-phase commit fields) is not served: the codec stops at v5.
// With a transactional id the request goes to the id's coordinator (internal/txn): a new id
// gets a producer id at epoch 0; a known one gets its epoch bumped, fencing older instances
// (an open transaction of theirs is aborted first: CONCURRENT_TRANSACTIONS until it is).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/txn"
)

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.InitProducerIDRequest)
	resp := kmsg.NewPtrInitProducerIDResponse()
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if r.TransactionalID != nil {
		if *r.TransactionalID == "" {
			resp.ErrorCode = kerr.InvalidRequest.Code
			return resp, nil
		}
		tr := txn.InitRequest{TransactionalID: *r.TransactionalID, TimeoutMs: r.TransactionTimeoutMillis,
			ProducerID: -1, ProducerEpoch: -1}
		if req.Version >= 3 {
			tr.ProducerID, tr.ProducerEpoch = r.ProducerID, r.ProducerEpoch
		}
		wait := awaitResult(func(cb func(txn.InitResult)) { h.Txns.InitProducerID(ctx, tr, cb) })
		return DeferFunc(func() Response {
			res := wait()
			resp.ErrorCode = errCode(res.Err)
			if res.Err == nil {
				resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
			} else if req.Version < 4 && resp.ErrorCode == kerr.ProducerFenced.Code {
				resp.ErrorCode = kerr.InvalidProducerEpoch.Code // PRODUCER_FENCED arrived with v4
			}
			return resp
		}), nil
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
