package api

// Produce (key 0), versions 3–12; ApiVersions lists 0–12, as Kafka 4 does (KAFKA-18659): older
// librdkafka only compresses when the broker lists Produce v0, and clients use the highest
// common version. A v0–v2 request is refused like any unsupported version.
//   v3: magic v2 record batches only, transactional id (the only format Poste stores; v0–v2
//       carried older message formats and are not served, as in Kafka 4).
//   v5: log start offset in the response.  v8: per-record errors and an error message.
//   v9: flexible.  v10–v12: current-leader hints on NOT_LEADER (KIP-951, sent when known),
//       no other schema change.
// acks=0 gets no response at all; acks=1 and acks=-1 are answered once the batch is
// committed, which on a single node means fsynced (log.flush.policy=always). Two stages: the
// append happens in request order on the connection's reader; the wait for the fsync happens
// on its writer, so pipelined requests overlap their fsyncs and are answered in order.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/partition"
)

func init() {
	register(0, 3, 12, handleProduce)
	advertiseFrom(0, 0)
}

// pendingAck is one appended partition whose commit the response waits for.
type pendingAck struct {
	p    *partition.Partition
	resp *kmsg.ProduceResponseTopicPartition
	end  int64 // commit needed up to here
}

func handleProduce(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ProduceRequest)
	resp := kmsg.NewPtrProduceResponse()
	var pending []pendingAck
	badAcks := r.Acks != 0 && r.Acks != 1 && r.Acks != -1
	img := h.Meta.Image()

	resp.Topics = make([]kmsg.ProduceResponseTopic, len(r.Topics))
	for i := range r.Topics {
		rt := &r.Topics[i]
		st := &resp.Topics[i]
		*st = kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		topic := img.Topic(rt.Topic)
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			sp := &st.Partitions[j]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case badAcks:
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			case topic == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case r.TransactionID != nil:
				// Transactions are not served yet; InitProducerId refuses transactional ids,
				// so a conforming client never gets here.
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				continue
			}
			p, err := h.Replicas.Get(rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = errCode(err)
				continue
			}
			res, err := p.Append(rp.Records)
			if err != nil {
				sp.ErrorCode = errCode(err)
				if req.Version >= 8 && sp.ErrorCode != kerr.KafkaStorageError.Code {
					sp.ErrorMessage = errMessage(err)
				}
				if !errors.Is(err, partition.ErrStorage) && sp.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
					h.logReq(req).Debug("produce refused", "topic", rt.Topic, "partition", rp.Partition, "err", err)
				}
				continue
			}
			sp.BaseOffset = res.BaseOffset
			sp.LogAppendTime = res.LogAppendTime
			sp.LogStartOffset = res.LogStartOffset
			pending = append(pending, pendingAck{p: p, resp: sp, end: res.LastOffset + 1})
		}
	}
	if r.Acks == 0 {
		return nil, nil
	}
	if len(pending) == 0 {
		return resp, nil
	}
	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second // a zero timeout still waits for the fsync it must cover
	}
	deadline := time.Now().Add(timeout)
	return DeferFunc(func() Response {
		for _, pa := range pending {
			if err := pa.p.AwaitCommitted(pa.end, deadline); err != nil {
				pa.resp.ErrorCode = errCode(err)
				pa.resp.BaseOffset = -1
			}
		}
		return resp
	}), nil
}
