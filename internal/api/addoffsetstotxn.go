package api

// AddOffsetsToTxn (key 25), versions 0–4.
//   v1–v2: no schema change.  v3: flexible.  v4: no schema change (KIP-890 error handling).
// Adds the group's __consumer_offsets partition to the transaction, so that the offsets the
// producer then sends with TxnOffsetCommit are committed or dropped with it.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AddOffsetsToTxnRequest)
	resp := kmsg.NewPtrAddOffsetsToTxnResponse()
	if r.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	if err := h.ensureOffsetsTopic(ctx); err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	gp, ok := h.Groups.PartitionFor(r.Group)
	if !ok {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	wait := awaitResult(func(cb func(error)) {
		h.Txns.AddOffsets(r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, gp, cb)
	})
	return DeferFunc(func() Response {
		resp.ErrorCode = errCode(wait())
		if req.Version < 2 && resp.ErrorCode == kerr.ProducerFenced.Code {
			resp.ErrorCode = kerr.InvalidProducerEpoch.Code
		}
		return resp
	}), nil
}
