package api

// Transactional checks of transaction version 2 (KIP-890 part 2) that the handlers of other
// APIs call: Produce v12+ and TxnOffsetCommit v5+ come from producers that never send
// AddPartitionsToTxn or AddOffsetsToTxn, so the partition (or the group's offsets
// partition) joins the transaction here, by asking the transaction coordinator to add it —
// the local one, or another broker's through AddPartitionsToTxn v5 in its adding form.
// Older versions keep the part-1 check: the partition must already be in the transaction.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/txn"
)

// Produce and TxnOffsetCommit versions from which a transactional request is of transaction
// version 2.
const (
	produceTxnV2Version         = 12
	txnOffsetCommitTxnV2Version = 5
)

// While the previous transaction's markers are still being written the coordinator answers
// CONCURRENT_TRANSACTIONS; a producer of version 2 starts its next transaction right after
// EndTxn, so the addition is retried briefly before the produce is refused (as Kafka's
// add.partitions.to.txn.retry.backoff.ms and .max.ms do).
const (
	txnAddRetryBackoff = 20 * time.Millisecond
	txnAddRetryMax     = 100 * time.Millisecond
)

// checkTxnProduce decides whether a transactional batch of a Produce request of the given
// version may be appended: 0, or the partition's error code. From v12 the partition joins
// the producer's transaction; before, it must already be in it.
func (h *Handlers) checkTxnProduce(version int16, id, topic string, partition int32, records []byte) int16 {
	hd, err := record.ParseHeader(records)
	if err != nil {
		return kerr.CorruptMessage.Code
	}
	if !hd.IsTransactional() {
		return kerr.InvalidTxnState.Code
	}
	if h.Txns == nil {
		return produceTxnCode(kerr.CoordinatorNotAvailable.Code)
	}
	if version < produceTxnV2Version {
		return h.verifyTxnProduce(id, hd.ProducerID, hd.ProducerEpoch, topic, partition)
	}
	deadline := time.Now().Add(txnAddRetryMax)
	for {
		code := h.addTxnPartition(id, hd.ProducerID, hd.ProducerEpoch, topic, partition)
		if code != kerr.ConcurrentTransactions.Code || time.Now().After(deadline) {
			return produceTxnCode(code)
		}
		time.Sleep(txnAddRetryBackoff)
	}
}

// verifyTxnProduce asks the coordinator of id whether the partition is in the producer's
// transaction (transaction version 1); its answer maps to the produce error code as
// produceTxnCode's, and a partition or producer id it does not know is INVALID_TXN_STATE.
func (h *Handlers) verifyTxnProduce(id string, pid int64, epoch int16, topic string, partition int32) int16 {
	node, addr, local, ok := h.txnCoordinator(id)
	if !ok {
		return produceTxnCode(kerr.CoordinatorNotAvailable.Code)
	}
	var code int16
	if local {
		code = errCode(awaitResult(func(cb func(error)) {
			h.Txns.Verify(id, pid, epoch, txn.TopicPartition{Topic: topic, Partition: partition}, cb)
		})())
	} else {
		code = h.txnPartitionRemote(node, addr, id, pid, epoch, topic, partition, true)
	}
	if code == kerr.InvalidProducerIDMapping.Code {
		return kerr.InvalidTxnState.Code
	}
	return produceTxnCode(code)
}

// addTxnPartition asks the coordinator of id to add a partition to the producer's
// transaction and returns its error code.
func (h *Handlers) addTxnPartition(id string, pid int64, epoch int16, topic string, partition int32) int16 {
	node, addr, local, ok := h.txnCoordinator(id)
	if !ok {
		return kerr.CoordinatorNotAvailable.Code
	}
	if !local {
		return h.txnPartitionRemote(node, addr, id, pid, epoch, topic, partition, false)
	}
	tp := txn.TopicPartition{Topic: topic, Partition: partition}
	return errCode(awaitResult(func(cb func(error)) {
		h.Txns.AddPartitionsV2(id, pid, epoch, []txn.TopicPartition{tp}, cb)
	})())
}

// produceTxnCode maps the coordinator's answer to an addition or a verification to the
// produce error code, as Kafka does: a fenced producer gets INVALID_PRODUCER_EPOCH, and a
// coordinator that is busy, moving, loading or unreachable becomes NOT_ENOUGH_REPLICAS, which
// every client retries without a metadata refresh.
func produceTxnCode(code int16) int16 {
	switch code {
	case kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code
	case kerr.ConcurrentTransactions.Code, kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code,
		kerr.CoordinatorLoadInProgress.Code, kerr.NetworkException.Code:
		return kerr.NotEnoughReplicas.Code
	}
	return code
}

// commitTxnOffsets hands a TxnOffsetCommit of the given version to the local transaction
// coordinator: from v5 the group's offsets partition joins the transaction (there is no
// AddOffsetsToTxn under transaction version 2); before, the transaction must be open.
func (h *Handlers) commitTxnOffsets(version int16, id string, pid int64, epoch int16, pg txn.PendingGroup, cb func(error)) {
	if version < txnOffsetCommitTxnV2Version {
		h.Txns.CommitOffsets(id, pid, epoch, pg, cb)
		return
	}
	gp, ok := h.Groups.PartitionFor(pg.Group)
	if !ok {
		cb(txn.ErrCoordinatorNotAvailable)
		return
	}
	h.Txns.CommitOffsetsV2(id, pid, epoch, gp, pg, cb)
}

// txnV2Served reports whether every request of transaction version 2 is served, which is
// when ApiVersions may finalize the transaction.version feature at 2.
func txnV2Served() bool {
	return Supports(26, 5) && Supports(24, 5) && Supports(0, produceTxnV2Version) &&
		Supports(28, txnOffsetCommitTxnV2Version)
}
