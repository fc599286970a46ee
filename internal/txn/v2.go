package txn

// Transaction version 2 (KIP-890 part 2).
//
// A producer of version 2 never sends AddPartitionsToTxn or AddOffsetsToTxn: the leader of a
// partition adds it to the transaction when the first transactional batch arrives (Produce
// v12+), and TxnOffsetCommit v5+ adds the group's offsets partition itself. Every EndTxn
// (v5+) bumps the producer epoch: the markers carry the bumped epoch and the answer returns
// it, so a batch of the previous transaction that arrives late is refused by the partition
// (its epoch is older than the marker's) and by the coordinator (its epoch is not the
// current one), instead of opening a transaction nobody will close. When the bump exhausts
// the epoch, the transaction completes under a fresh producer id at epoch 0 — the id the
// EndTxn answer returned.
//
// EndTxn of version 2 (Kafka's rules), for the request's epoch e and the stored epoch E:
//
//	state                          abort                      commit
//	Ongoing (e = E)                bump, PrepareAbort         bump, PrepareCommit
//	Empty (e = E)                  bump, empty abort          INVALID_TXN_STATE
//	CompleteAbort, e = E-1 (retry) answered again             INVALID_TXN_STATE
//	CompleteAbort, e = E           bump, empty abort          INVALID_TXN_STATE
//	CompleteCommit, e = E-1        INVALID_TXN_STATE          answered again
//	CompleteCommit, e = E          bump, empty abort          INVALID_TXN_STATE
//	Prepare*, e = E-1 (retry)      CONCURRENT_TRANSACTIONS for the same outcome, else INVALID_TXN_STATE
//	Prepare*, e = E                CONCURRENT_TRANSACTIONS (the next end waits for the markers)
//	any other epoch                PRODUCER_FENCED
//
// A retry after a rotation is recognised by the previous producer id and the last epoch
// (32766). An empty abort writes no marker: it only moves the epoch on, which is what a
// producer unsure whether its last transaction started needs.

import (
	"context"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// EndResult is the answer to EndTxn of transaction version 2: the producer id and epoch the
// producer uses from now on.
type EndResult struct {
	ProducerID    int64
	ProducerEpoch int16
	Err           error
}

// EndTxnV2 serves EndTxn v5+ (transaction version 2): the transaction ends with its epoch
// bumped; cb gets the producer id and epoch to use next.
func (c *Coordinator) EndTxnV2(id string, pid int64, epoch int16, commit bool, cb func(EndResult)) {
	fail := func(err error) { cb(EndResult{ProducerID: -1, ProducerEpoch: -1, Err: err}) }
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.EndTxnV2(now, id, pid, epoch, commit, -1, cb)
	}, fail)
}

// AddPartitionsV2 adds partitions to a transaction of version 2: the partition leader's
// implicit addition on a transactional produce (Produce v12+), or AddPartitionsToTxn v4+ in
// its adding form from a broker. A transaction is opened if none is.
func (c *Coordinator) AddPartitionsV2(id string, pid int64, epoch int16, tps []TopicPartition, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.addPartitions(now, id, pid, epoch, tps, "", true, cb)
	}, cb)
}

// CommitOffsetsV2 serves TxnOffsetCommit v5+ (transaction version 2): the group's
// __consumer_offsets partition (groupPartition) joins the transaction, which is opened if
// none is, and the offsets are kept with it as CommitOffsets does.
func (c *Coordinator) CommitOffsetsV2(id string, pid int64, epoch int16, groupPartition int32, pg PendingGroup, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.CommitOffsetsV2(now, id, pid, epoch, groupPartition, pg, cb)
	}, cb)
}

// withFreshPID reserves a producer id off the shard goroutines (the reservation may wait
// for the metadata quorum), then runs fn on the shard of partition index with it, or with
// the reservation's error. If the shard is gone (or loading again) by then, fn does not run
// and lost, if set, gets the reason.
func (c *Coordinator) withFreshPID(index int32, fn func(m *Shard, now time.Time, pid int64, err error) coord.Result, lost func(error)) {
	if lost == nil {
		lost = func(error) {}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-c.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		pid, err := int64(-1), ErrCoordinatorNotAvailable
		if c.pids != nil {
			pid, err = c.pids.Next(ctx)
		}
		if err != nil {
			pid, err = -1, ErrCoordinatorNotAvailable
		}
		sh, serr := c.rt.Shard(index)
		if serr != nil {
			lost(serr)
			return
		}
		sh.Submit(func(m *Shard, now time.Time) coord.Result { return fn(m, now, pid, err) }, lost)
	}()
}

// EndTxnV2 ends the producer's transaction with an epoch bump (see the table above). fresh
// is a producer id reserved for a rotation, or -1: when one is needed and missing, it is
// reserved and the request runs again.
func (s *Shard) EndTxnV2(now time.Time, id string, pid int64, epoch int16, commit bool, fresh int64, cb func(EndResult)) coord.Result {
	fail := func(err error) coord.Result {
		cb(EndResult{ProducerID: -1, ProducerEpoch: -1, Err: err})
		return coord.Result{}
	}
	t := s.txns[id]
	if t == nil {
		return fail(ErrInvalidProducerIDMapping)
	}
	// A retry of an EndTxn that succeeded: the stored epoch is the request's plus one, or
	// the id rotated right after the request's epoch, the last usable one.
	retryBump := t.pid == pid && int(t.epoch) == int(epoch)+1
	retryRotation := t.prevPid == pid && t.pid != pid && epoch == math.MaxInt16-1 && t.epoch == 0
	if t.pid != pid && !retryRotation {
		return fail(ErrInvalidProducerIDMapping)
	}
	var valid bool
	switch t.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		valid = retryBump || t.pid == pid && epoch == t.epoch
	case kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		valid = retryBump || retryRotation || epoch == t.epoch
	default:
		valid = t.pid == pid && epoch == t.epoch
	}
	if !valid {
		return fail(ErrProducerFenced)
	}
	retry := retryBump || retryRotation
	current := func() coord.Result {
		cb(EndResult{ProducerID: t.pid, ProducerEpoch: t.epoch})
		return coord.Result{}
	}
	if t.preparing() {
		// Only a retry asking for the other outcome is wrong; a retry of this one, or the
		// producer ending its next transaction at the new epoch, waits for the markers.
		if retry && commit != (t.state == kmsg.TransactionStatePrepareCommit) {
			return fail(ErrInvalidTxnState)
		}
		return fail(ErrConcurrentTransactions)
	}
	if t.completing || t.expiring {
		return fail(ErrConcurrentTransactions)
	}
	switch t.state {
	case kmsg.TransactionStateOngoing:
		return s.endV2(t, commit, now, fresh, cb)
	case kmsg.TransactionStateCompleteCommit:
		switch {
		case commit && retry:
			return current()
		case !commit && !retry:
			return s.endV2(t, false, now, fresh, cb)
		}
	case kmsg.TransactionStateCompleteAbort:
		switch {
		case !commit && retry:
			return current()
		case !commit:
			return s.endV2(t, false, now, fresh, cb)
		}
	case kmsg.TransactionStateEmpty:
		if !commit {
			return s.endV2(t, false, now, fresh, cb)
		}
	}
	return fail(ErrInvalidTxnState)
}

// endV2 decides t (an empty abort when no transaction is open) with the epoch bumped, and
// answers cb with the id and epoch to use next once the decision is durable.
func (s *Shard) endV2(t *txnMeta, commit bool, now time.Time, fresh int64, cb func(EndResult)) coord.Result {
	exhausted := t.epoch >= math.MaxInt16-1
	if exhausted && fresh < 0 {
		id, pid, epoch := t.id, t.pid, t.epoch
		s.deps.withFreshPID(s.index, func(m *Shard, now time.Time, fresh int64, err error) coord.Result {
			if err != nil {
				cb(EndResult{ProducerID: -1, ProducerEpoch: -1, Err: err})
				return coord.Result{}
			}
			return m.EndTxnV2(now, id, pid, epoch, commit, fresh, cb)
		}, func(err error) { cb(EndResult{ProducerID: -1, ProducerEpoch: -1, Err: err}) })
		return coord.Result{}
	}
	saved := *t
	if t.state != kmsg.TransactionStateOngoing {
		// An empty abort: nothing to mark, but the epoch moves on all the same.
		t.parts, t.groups, t.offsets, t.start = map[TopicPartition]bool{}, map[string]bool{}, nil, now
	}
	t.tv2 = true
	if exhausted {
		t.nextPid = fresh
	}
	if t.epoch < math.MaxInt16 {
		t.epoch++
	}
	undo := func() {
		t.epoch, t.nextPid, t.tv2 = saved.epoch, saved.nextPid, saved.tv2
		t.parts, t.groups, t.offsets, t.start = saved.parts, saved.groups, saved.offsets, saved.start
	}
	return s.prepare(t, commit, now, undo, func(err error) {
		switch {
		case err != nil:
			cb(EndResult{ProducerID: -1, ProducerEpoch: -1, Err: err})
		case t.nextPid >= 0:
			cb(EndResult{ProducerID: t.nextPid, ProducerEpoch: 0})
		default:
			cb(EndResult{ProducerID: t.pid, ProducerEpoch: t.epoch})
		}
	})
}

// CommitOffsetsV2 serves TxnOffsetCommit v5+: the group's offsets partition joins the
// transaction (opening it if none is) and the offsets are kept with it.
func (s *Shard) CommitOffsetsV2(now time.Time, id string, pid int64, epoch int16, groupPartition int32, pg PendingGroup, cb func(error)) coord.Result {
	t, err := s.check(id, pid, epoch)
	if err == nil && (t.completing || t.preparing()) {
		err = ErrConcurrentTransactions
	}
	if err != nil {
		cb(err)
		return coord.Result{}
	}
	var recs []coord.Record
	if s.join(t, []TopicPartition{{OffsetsTopic, groupPartition}}, pg.Group, true, now) {
		recs = append(recs, metaRecord(t))
	}
	res := s.CommitOffsets(now, id, pid, epoch, pg, cb)
	res.Records = append(recs, res.Records...)
	return res
}
