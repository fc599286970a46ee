package api

// AllocateProducerIds (key 67), version 0, controller side (KIP-730): a broker gets the next
// block of producer ids, unique cluster-wide, for its idempotent and transactional producers.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ProducerIDBlock is the size of a block handed to a broker, Kafka's.
const ProducerIDBlock = 1000

func init() { register(67, 0, 0, handleAllocateProducerIDs) }

func handleAllocateProducerIDs(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AllocateProducerIDsRequest)
	resp := kmsg.NewPtrAllocateProducerIDsResponse()
	first, err := h.Controller.AllocateProducerIDs(ctx, r.BrokerID, ProducerIDBlock)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	resp.ProducerIDStart, resp.ProducerIDLen = first, ProducerIDBlock
	return resp, nil
}
