package api

// EndTxn (key 26), versions 0–5.
//   v1–v2: no schema change.  v3: flexible.  v4: no schema change (KIP-890 error handling).
//   v5: transaction version 2 (KIP-890 part 2): every EndTxn bumps the producer epoch — the
//       markers carry the bumped epoch, so a late write of the ended transaction is fenced —
//       and the response returns the producer id and epoch to use next (a fresh id once the
//       epoch is exhausted). An abort with no transaction open is accepted (it only bumps
//       the epoch), and a retry of an EndTxn that succeeded is answered again. See
//       internal/txn/v2.go for the table of outcomes.
// v0–v4 (transaction version 1) keep the epoch; the response carries no producer id.
// The answer is sent once the decision (PrepareCommit or PrepareAbort) is durable; the markers
// are written afterwards, and requests for the id get CONCURRENT_TRANSACTIONS until they are.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/txn"
)

func init() { register(26, 0, 5, handleEndTxn) }

func handleEndTxn(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.EndTxnRequest)
	if req.Version >= 5 {
		wait := awaitResult(func(cb func(txn.EndResult)) {
			h.Txns.EndTxnV2(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit, cb)
		})
		return DeferFunc(func() Response {
			res := wait()
			resp := kmsg.NewPtrEndTxnResponse()
			resp.ErrorCode = errCode(res.Err)
			if res.Err == nil {
				resp.ProducerID, resp.ProducerEpoch = res.ProducerID, res.ProducerEpoch
			}
			return resp
		}), nil
	}
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
