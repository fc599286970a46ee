package api

// Produce (key 0), versions 3–12; ApiVersions lists 0–12, as Kafka 4 does (KAFKA-18659): older
// librdkafka only compresses when the broker lists Produce v0, and clients use the highest
// common version. A v0–v2 request is refused like any unsupported version.
//   v3: magic v2 record batches only, transactional id (the only format Poste stores; v0–v2
//       carried older message formats and are not served, as in Kafka 4).
//   v5: log start offset in the response.  v8: per-record errors and an error message.
//   v9: flexible.  v10–v12: current-leader hints on NOT_LEADER (KIP-951, sent when known),
//       no other schema change.
// Transactional produce (transactional id set): before a transactional batch is appended, the
// transaction coordinator confirms that the partition was added to the producer's ongoing
// transaction (KIP-890 part 1), so a late or stray write can never open a transaction that no
// coordinator will close. Refused with INVALID_TXN_STATE, or INVALID_PRODUCER_EPOCH when the
// producer was fenced.
// acks=0 gets no response at all; acks=1 is answered once the leader's own log has the batch
// (fsynced under log.flush.policy=always), acks=-1 once the high watermark covers it — on
// every in-sync replica; below min.insync.replicas it is refused (NOT_ENOUGH_REPLICAS), and an
// ISR that shrank below it while the batch was being replicated gives
// NOT_ENOUGH_REPLICAS_AFTER_APPEND. On a single node both mean fsynced here. Two stages: the
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
	all  bool  // acks=all: the ISR must still be big enough once it is committed
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
			}
			p, err := h.Replicas.Get(rt.Topic, rp.Partition)
			if err != nil {
				sp.ErrorCode = errCode(err)
				continue
			}
			if r.Acks == -1 && !p.EnoughReplicas() {
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				continue
			}
			if r.TransactionID != nil {
				if code := h.checkTxnProduce(req.Version, *r.TransactionID, rt.Topic, rp.Partition, rp.Records); code != 0 {
					sp.ErrorCode = code
					continue
				}
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
			pending = append(pending, pendingAck{p: p, resp: sp, end: res.LastOffset + 1, all: r.Acks == -1})
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
			await := pa.p.AwaitCommitted
			if !pa.all {
				// acks=1: the leader's own log has it (fsynced under log.flush.policy=always);
				// the followers are not waited for, as in Kafka.
				await = pa.p.AwaitLocal
			}
			if err := await(pa.end, deadline); err != nil {
				pa.resp.ErrorCode = errCode(err)
				pa.resp.BaseOffset = -1
			} else if pa.all && !pa.p.EnoughReplicas() {
				// Committed by an ISR that shrank below min.insync.replicas meanwhile.
				pa.resp.ErrorCode = kerr.NotEnoughReplicasAfterAppend.Code
			}
		}
		return resp
	}), nil
}
