package api

// AddPartitionsToTxn (key 24), versions 0–5.
//   v1: no schema change.  v2: no schema change.  v3: flexible.
//   v4: broker to coordinator only: batched transactions and the verify-only form (KIP-890):
//       a verify-only transaction is checked, never changed — each partition answers whether
//       it is already in the producer's ongoing transaction (INVALID_TXN_STATE if not). The
//       adding form (verify-only false) is what the leader of a partition sends for a producer
//       of transaction version 2 whose first transactional batch arrived there (KIP-890 part
//       2): the partition joins the transaction, which is opened if none is.
//   v5: no schema change (TRANSACTION_ABORTABLE allowed; Poste answers as for v4).
// A partition of a topic that does not exist gets UNKNOWN_TOPIC_OR_PARTITION and the others
// OPERATION_NOT_ATTEMPTED, as in Kafka; otherwise every partition gets the transaction's error.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/txn"
)

func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

type txnPartitions struct {
	id     string
	pid    int64
	epoch  int16
	verify bool
	v2     bool // a broker's adding form (v4+): transaction version 2
	topics map[string][]int32
	order  []string
}

func handleAddPartitionsToTxn(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AddPartitionsToTxnRequest)
	var txns []txnPartitions
	if req.Version < 4 {
		t := txnPartitions{id: r.TransactionalID, pid: r.ProducerID, epoch: r.ProducerEpoch, topics: map[string][]int32{}}
		for _, rt := range r.Topics {
			t.topics[rt.Topic] = append(t.topics[rt.Topic], rt.Partitions...)
			t.order = append(t.order, rt.Topic)
		}
		txns = append(txns, t)
	} else {
		for _, rx := range r.Transactions {
			t := txnPartitions{id: rx.TransactionalID, pid: rx.ProducerID, epoch: rx.ProducerEpoch, verify: rx.VerifyOnly,
				v2: !rx.VerifyOnly, topics: map[string][]int32{}}
			for _, rt := range rx.Topics {
				t.topics[rt.Topic] = append(t.topics[rt.Topic], rt.Partitions...)
				t.order = append(t.order, rt.Topic)
			}
			txns = append(txns, t)
		}
	}
	waits := make([]func() map[txn.TopicPartition]int16, len(txns))
	for i := range txns {
		waits[i] = h.addPartitions(&txns[i])
	}
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrAddPartitionsToTxnResponse()
		for i, t := range txns {
			codes := waits[i]()
			if req.Version < 4 {
				for _, topic := range t.order {
					rt := kmsg.NewAddPartitionsToTxnResponseTopic()
					rt.Topic = topic
					for _, p := range t.topics[topic] {
						rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
						rp.Partition, rp.ErrorCode = p, codes[txn.TopicPartition{Topic: topic, Partition: p}]
						if req.Version < 2 && rp.ErrorCode == kerr.ProducerFenced.Code {
							rp.ErrorCode = kerr.InvalidProducerEpoch.Code
						}
						rt.Partitions = append(rt.Partitions, rp)
					}
					resp.Topics = append(resp.Topics, rt)
				}
				continue
			}
			rx := kmsg.NewAddPartitionsToTxnResponseTransaction()
			rx.TransactionalID = t.id
			for _, topic := range t.order {
				rt := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
				rt.Topic = topic
				for _, p := range t.topics[topic] {
					rp := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
					rp.Partition, rp.ErrorCode = p, codes[txn.TopicPartition{Topic: topic, Partition: p}]
					rt.Partitions = append(rt.Partitions, rp)
				}
				rx.Topics = append(rx.Topics, rt)
			}
			resp.Transactions = append(resp.Transactions, rx)
		}
		return resp
	}), nil
}

// addPartitions starts adding (or verifying) one transaction's partitions and returns a
// function that waits for the per-partition error codes.
func (h *Handlers) addPartitions(t *txnPartitions) func() map[txn.TopicPartition]int16 {
	codes := map[txn.TopicPartition]int16{}
	img := h.Meta.Image()
	var tps []txn.TopicPartition
	bad := false
	for _, topic := range t.order {
		it := img.Topic(topic)
		for _, p := range t.topics[topic] {
			tp := txn.TopicPartition{Topic: topic, Partition: p}
			tps = append(tps, tp)
			if it == nil || p < 0 || int(p) >= len(it.Partitions) {
				codes[tp] = kerr.UnknownTopicOrPartition.Code
				bad = true
			}
		}
	}
	if bad {
		for _, tp := range tps {
			if codes[tp] == 0 {
				codes[tp] = kerr.OperationNotAttempted.Code
			}
		}
		return func() map[txn.TopicPartition]int16 { return codes }
	}
	if t.verify {
		waits := make([]func() error, len(tps))
		for i, tp := range tps {
			waits[i] = awaitResult(func(cb func(error)) { h.Txns.Verify(t.id, t.pid, t.epoch, tp, cb) })
		}
		return func() map[txn.TopicPartition]int16 {
			for i, tp := range tps {
				codes[tp] = errCode(waits[i]())
			}
			return codes
		}
	}
	add := h.Txns.AddPartitions
	if t.v2 {
		add = h.Txns.AddPartitionsV2
	}
	wait := awaitResult(func(cb func(error)) { add(t.id, t.pid, t.epoch, tps, cb) })
	return func() map[txn.TopicPartition]int16 {
		code := errCode(wait())
		for _, tp := range tps {
			codes[tp] = code
		}
		return codes
	}
}
