package api

// DescribeTransactions (key 65), version 0 (flexible): the state of each transactional id
// this broker coordinates; TRANSACTIONAL_ID_NOT_FOUND for an unknown id, NOT_COORDINATOR for
// an id coordinated elsewhere.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/txn"
)

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DescribeTransactionsRequest)
	waits := make([]func() txn.Description, len(r.TransactionalIDs))
	for i, id := range r.TransactionalIDs {
		waits[i] = awaitResult(func(cb func(txn.Description)) { h.Txns.Describe(id, cb) })
	}
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrDescribeTransactionsResponse()
		for i, id := range r.TransactionalIDs {
			d := waits[i]()
			st := kmsg.NewDescribeTransactionsResponseTransactionState()
			st.TransactionalID = id
			st.ProducerID, st.ProducerEpoch, st.StartTimestamp = -1, -1, -1
			if d.Err != nil {
				st.ErrorCode = errCode(d.Err)
				resp.TransactionStates = append(resp.TransactionStates, st)
				continue
			}
			st.State = txnStateNames[d.State]
			st.TimeoutMillis, st.StartTimestamp = d.TimeoutMs, d.StartTimestamp
			st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
			for _, tp := range d.Partitions {
				if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == tp.Topic {
					st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, tp.Partition)
					continue
				}
				t := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
				t.Topic, t.Partitions = tp.Topic, []int32{tp.Partition}
				st.Topics = append(st.Topics, t)
			}
			resp.TransactionStates = append(resp.TransactionStates, st)
		}
		return resp
	}), nil
}
