package api

// Requests a broker sends to its peers for its clients in a cluster: the transactional checks
// and offsets that belong to the transaction coordinator of another broker.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/txn"
)

// peerTimeout bounds one request to a peer broker.
const peerTimeout = 30 * time.Second

// leaderOf returns the leader of a partition of topic and its inter-broker address; local
// reports that it is this broker.
func (h *Handlers) leaderOf(topic string, partition int32) (id int32, addr string, local bool, ok bool) {
	id, addr, err := h.Meta.Image().LeaderAddr(topic, partition, h.Config.InterBrokerListener)
	if id == h.Config.NodeID {
		return id, "", true, true
	}
	return id, addr, false, err == nil
}

// txnCoordinator finds the broker coordinating a transactional id: local, or its address.
func (h *Handlers) txnCoordinator(id string) (node int32, addr string, local bool, ok bool) {
	if h.Peers == nil || h.Txns == nil {
		return h.Config.NodeID, "", true, true
	}
	p, ok := h.Txns.PartitionFor(id)
	if !ok {
		return -1, "", false, false
	}
	return h.leaderOf(txn.StateTopic, p)
}

// txnPartitionRemote sends AddPartitionsToTxn (v4+) for one partition to the transaction
// coordinator on another broker: verifyOnly asks whether the partition is in the producer's
// transaction (KIP-890 part 1), otherwise it is added (transaction version 2, from the
// partition leader). It returns the partition's error code.
func (h *Handlers) txnPartitionRemote(node int32, addr, id string, pid int64, epoch int16, topic string, partition int32, verifyOnly bool) int16 {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = id, pid, epoch, verifyOnly
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = topic, []int32{partition}
	tr.Topics = append(tr.Topics, tt)
	req.Transactions = append(req.Transactions, tr)
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	kresp, err := h.Peers.Request(ctx, node, addr, req)
	if err != nil {
		return kerr.CoordinatorNotAvailable.Code
	}
	resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	for _, t := range resp.Transactions {
		for _, rt := range t.Topics {
			for _, rp := range rt.Partitions {
				return rp.ErrorCode
			}
		}
	}
	return kerr.UnknownServerError.Code
}

// remoteUnstable returns the partitions of group whose offsets a transaction coordinated on
// another broker may still replace: it asks each such transaction's coordinator whether it
// is still open (DescribeTransactions) and forgets those that are not. A coordinator that
// cannot be asked counts as open, so a fetch never reads an offset about to change.
func (h *Handlers) remoteUnstable(group string) map[txn.TopicPartition]bool {
	if h.Peers == nil {
		return nil
	}
	out := map[txn.TopicPartition]bool{}
	for id, tps := range h.Txns.RemotePending(group) {
		open := true
		if node, addr, local, ok := h.txnCoordinator(id); ok && !local {
			req := kmsg.NewPtrDescribeTransactionsRequest()
			req.TransactionalIDs = []string{id}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			kresp, err := h.Peers.Request(ctx, node, addr, req)
			cancel()
			if err == nil {
				if st := kresp.(*kmsg.DescribeTransactionsResponse).TransactionStates; len(st) == 1 && st[0].ErrorCode == 0 {
					switch st[0].State {
					case "Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence":
					default:
						open = false
					}
				}
			}
		} else if ok && local {
			open = false // coordinated here now: the local view (PendingOffsets) covers it
		}
		if !open {
			h.Txns.ForgetRemotePending(group, id)
			continue
		}
		for tp := range tps {
			out[tp] = true
		}
	}
	return out
}
