package api

// ListTransactions (key 66), versions 0–1 (flexible): the transactions this broker
// coordinates, filtered by state names and producer ids; v1 adds the duration filter (only
// transactions open for longer). Unknown state names are echoed back, as in Kafka.
// v2 (transactional id pattern) is not served.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(66, 0, 1, handleListTransactions) }

func handleListTransactions(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.ListTransactionsRequest)
	resp := kmsg.NewPtrListTransactionsResponse()
	states := map[string]bool{}
	known := map[string]bool{}
	for _, n := range txnStateNames {
		known[n] = true
	}
	for _, s := range r.StateFilters {
		if !known[s] {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, s)
			continue
		}
		states[s] = true
	}
	pids := map[int64]bool{}
	for _, p := range r.ProducerIDFilters {
		pids[p] = true
	}
	ls, err := h.Txns.List()
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	now := time.Now().UnixMilli()
	for _, l := range ls {
		name := txnStateNames[l.State]
		if len(r.StateFilters) > 0 && !states[name] {
			continue
		}
		if len(pids) > 0 && !pids[l.ProducerID] {
			continue
		}
		if req.Version >= 1 && r.DurationFilterMillis >= 0 && (l.StartTimestamp < 0 || now-l.StartTimestamp < r.DurationFilterMillis) {
			continue
		}
		st := kmsg.NewListTransactionsResponseTransactionState()
		st.TransactionalID, st.ProducerID, st.TransactionState = l.TransactionalID, l.ProducerID, name
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
