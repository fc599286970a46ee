package txn

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// txnMeta is one transactional id's state.
type txnMeta struct {
	id         string
	pid        int64
	epoch      int16
	timeout    time.Duration
	state      kmsg.TransactionState
	parts      map[TopicPartition]bool
	groups     map[string]bool          // groups added with AddOffsetsToTxn
	offsets    map[string]*PendingGroup // TxnOffsetCommit offsets awaiting the outcome
	start      time.Time                // when the transaction began (zero when none)
	lastUpdate time.Time
	completing bool // markers are being written
	// prevPid is the producer id before the last rotation (-1: none), so a retried EndTxn of
	// the producer's last epoch under that id is recognised (transaction version 2).
	prevPid int64
	// nextPid is, while a transaction of version 2 is being decided, the producer id it
	// rotates to once complete because its epoch is exhausted (-1: no rotation).
	nextPid int64
	// tv2 records that the producer runs transaction version 2 (KIP-890 part 2): its last
	// EndTxn or partition addition used it, so every end of its transactions bumps the epoch.
	tv2 bool
	// expiring: the id's tombstone is being written (transactional.id.expiration.ms); it is
	// no longer listed and accepts no transition.
	expiring bool
}

func newTxnMeta(id string) *txnMeta {
	return &txnMeta{id: id, prevPid: -1, nextPid: -1, parts: map[TopicPartition]bool{}, groups: map[string]bool{}}
}

func (t *txnMeta) preparing() bool {
	return t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort
}

// Shard is the transaction state of one __transaction_state partition: a coord.Machine.
//
// Invariants:
//   - All methods run on the shard goroutine of the coordinator runtime; nothing is locked.
//   - A transaction in PrepareCommit or PrepareAbort has its markers being written
//     (completing) from the moment its record is durable until Complete* is written; no
//     other transition is accepted meanwhile (CONCURRENT_TRANSACTIONS).
//   - An Ongoing transaction has a timeout timer; when it fires the transaction is aborted
//     with its epoch bumped, fencing the producer that left it hanging.
//   - Under transaction version 2 every decision bumps the epoch, and markers carry the
//     bumped one; nextPid is set only between a decision that exhausts the epoch and its
//     completion, which switches to it (v2.go).
//   - An id whose tombstone is being written (expiring) is neither described, listed nor
//     changed; once the tombstone is durable it is deleted (expire.go). An expiry scan is
//     always scheduled once the shard is loaded.
type Shard struct {
	index  int32
	cfg    Config
	deps   *Coordinator
	timers coord.Timers
	txns   map[string]*txnMeta
}

func newShard(index int32, c *Coordinator) *Shard {
	return &Shard{index: index, cfg: c.cfg, deps: c, txns: map[string]*txnMeta{}}
}

// Replay implements coord.Machine.
func (s *Shard) Replay(_ int64, key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("short key")
	}
	r := kbin.Reader{Src: key}
	switch version := r.Int16(); version {
	case 0, 1:
		var k kmsg.TxnMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return err
		}
		if value == nil {
			delete(s.txns, k.TransactionalID)
			return nil
		}
		var v kmsg.TxnMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return err
		}
		t := s.txns[k.TransactionalID]
		if t == nil {
			t = newTxnMeta(k.TransactionalID)
			s.txns[t.id] = t
		}
		t.pid, t.epoch, t.state = v.ProducerID, v.ProducerEpoch, v.State
		// Value version 0 has no tagged fields: kmsg leaves their defaults (-1, 0).
		t.prevPid, t.nextPid, t.tv2 = v.PreviousProducerID, v.NextProducerID, v.ClientTransactionVersion >= 2
		t.timeout = time.Duration(v.TimeoutMillis) * time.Millisecond
		t.lastUpdate = time.UnixMilli(v.LastUpdateTimestamp)
		t.start = time.Time{}
		if v.StartTimestamp >= 0 && (v.State == kmsg.TransactionStateOngoing || t.preparing()) {
			t.start = time.UnixMilli(v.StartTimestamp)
		}
		t.parts = map[TopicPartition]bool{}
		t.groups = map[string]bool{}
		for _, vt := range v.Topics {
			for _, p := range vt.Partitions {
				t.parts[TopicPartition{vt.Topic, p}] = true
			}
		}
		return nil
	case offsetsKeyVersion:
		id := r.String()
		if err := r.Complete(); err != nil {
			return err
		}
		t := s.txns[id]
		if value == nil {
			if t != nil {
				t.offsets = nil
			}
			return nil
		}
		pid, epoch, offs, err := decodeOffsets(value)
		if err != nil {
			return err
		}
		if t != nil && t.pid == pid && t.epoch == epoch {
			t.offsets = offs
			for g := range offs {
				t.groups[g] = true
			}
		}
		return nil
	default:
		return nil // a newer record type: not ours to interpret
	}
}

// Loaded implements coord.Machine: decided transactions finish writing their markers, open
// ones get their timeout back.
func (s *Shard) Loaded(t coord.Timers, now time.Time) {
	s.timers = t
	s.scheduleExpiry(now)
	ids := make([]string, 0, len(s.txns))
	for id := range s.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		m := s.txns[id]
		s.publishPending(m)
		switch {
		case m.preparing():
			s.completeAsync(m)
		case m.state == kmsg.TransactionStateOngoing:
			s.scheduleTimeout(m)
		}
	}
}

// Unloaded implements coord.Machine. Nothing is parked: marker writers still running find
// the shard gone and stop; the next leader replays the decision and finishes it. Its
// pending offsets leave the view: the next leader publishes them.
func (s *Shard) Unloaded() { s.deps.pending.dropShard(s) }

func timeoutKey(id string) string { return "timeout/" + id }

func (s *Shard) scheduleTimeout(t *txnMeta) {
	pid, epoch := t.pid, t.epoch
	s.timers.Schedule(timeoutKey(t.id), t.start.Add(t.timeout), func(now time.Time) coord.Result {
		if t != s.txns[t.id] || t.state != kmsg.TransactionStateOngoing || t.pid != pid || t.epoch != epoch {
			return coord.Result{}
		}
		if t.tv2 && t.epoch >= math.MaxInt16-1 {
			// The bump exhausts the epoch: the producer rotates to a fresh id, reserved off
			// the shard goroutine first.
			s.deps.withFreshPID(s.index, func(m *Shard, now time.Time, fresh int64, err error) coord.Result {
				if t != m.txns[t.id] || t.state != kmsg.TransactionStateOngoing || t.pid != pid || t.epoch != epoch || t.completing {
					return coord.Result{}
				}
				if err != nil {
					m.deps.lg.Warn("reserving a producer id for a timed out transaction failed; retrying", "transactional.id", t.id, "err", err)
					m.timers.Schedule(timeoutKey(t.id), now.Add(m.cfg.RetryBackoff), func(time.Time) coord.Result {
						m.scheduleTimeout(t) // already due: fires at once and reserves again
						return coord.Result{}
					})
					return coord.Result{}
				}
				return m.abortTimedOut(t, now, fresh)
			}, nil) // a shard gone meanwhile: its next leader schedules the timeout again
			return coord.Result{}
		}
		return s.abortTimedOut(t, now, -1)
	})
}

// abortTimedOut aborts t, whose timeout fired, with its epoch bumped: the bump fences the
// producer that left the transaction hanging. fresh is the id a transaction of version 2
// with an exhausted epoch rotates to; without one the timeout is tried again later.
func (s *Shard) abortTimedOut(t *txnMeta, now time.Time, fresh int64) coord.Result {
	if t != s.txns[t.id] || t.state != kmsg.TransactionStateOngoing || t.completing {
		return coord.Result{}
	}
	if t.tv2 && t.epoch >= math.MaxInt16-1 {
		if fresh < 0 {
			s.scheduleTimeout(t)
			return coord.Result{}
		}
		t.nextPid = fresh
	}
	s.deps.lg.Info("aborting timed out transaction", "transactional.id", t.id, "producer.id", t.pid, "epoch", t.epoch)
	if t.epoch < math.MaxInt16 {
		t.epoch++
	}
	return s.prepare(t, false, now, nil, nil)
}

// prepare moves t to PrepareCommit or PrepareAbort; once durable, cb (if any) is answered and
// the markers are written. If the record fails, undo (if any) reverts what the caller
// changed in t before the state is restored.
func (s *Shard) prepare(t *txnMeta, commit bool, now time.Time, undo func(), cb func(error)) coord.Result {
	prev := t.state
	t.state = kmsg.TransactionStatePrepareAbort
	if commit {
		t.state = kmsg.TransactionStatePrepareCommit
	}
	t.lastUpdate = now
	t.completing = true
	s.timers.Cancel(timeoutKey(t.id))
	return coord.Result{Records: []coord.Record{metaRecord(t)}, Done: func(err error) {
		if err != nil {
			if undo != nil {
				undo()
			}
			t.state, t.completing = prev, false
			if prev == kmsg.TransactionStateOngoing && s.txns[t.id] == t {
				s.scheduleTimeout(t)
			}
			if cb != nil {
				cb(err)
			}
			return
		}
		// A durable abort settles the offsets: they will never reach the group.
		s.publishPending(t)
		if cb != nil {
			cb(nil)
		}
		s.completeAsync(t)
	}}
}

// completeAsync writes t's markers (and, on commit, its offsets) off the shard goroutine,
// then records the transaction complete.
func (s *Shard) completeAsync(t *txnMeta) {
	t.completing = true
	commit := t.state == kmsg.TransactionStatePrepareCommit
	job := markerJob{id: t.id, pid: t.pid, epoch: t.epoch, commit: commit}
	for tp := range t.parts {
		if tp.Topic != OffsetsTopic {
			job.parts = append(job.parts, tp)
		}
	}
	sort.Slice(job.parts, func(i, j int) bool {
		a, b := job.parts[i], job.parts[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	if commit {
		for _, pg := range t.offsets {
			job.offsets = append(job.offsets, *pg)
		}
	}
	s.deps.runMarkers(s.index, job)
}

// complete records that a transaction's markers are all written.
func (s *Shard) complete(job markerJob, now time.Time) coord.Result {
	t := s.txns[job.id]
	if t == nil || t.pid != job.pid || t.epoch != job.epoch || !t.preparing() {
		return coord.Result{}
	}
	t.state = kmsg.TransactionStateCompleteAbort
	if job.commit {
		t.state = kmsg.TransactionStateCompleteCommit
	}
	rotated := t.nextPid >= 0
	if rotated {
		// The epoch was exhausted: the producer continues under the id its EndTxn returned.
		t.prevPid, t.pid, t.epoch, t.nextPid = t.pid, t.nextPid, 0, -1
	}
	hadOffsets := len(t.offsets) > 0
	t.parts, t.groups, t.offsets = map[TopicPartition]bool{}, map[string]bool{}, nil
	t.start, t.lastUpdate = time.Time{}, now
	// The marker job committed the offsets to the group before asking for completion.
	s.publishPending(t)
	recs := []coord.Record{metaRecord(t)}
	if hadOffsets {
		recs = append(recs, offsetsRecord(t))
	}
	return coord.Result{Records: recs, Done: func(err error) {
		t.completing = false
		if err != nil {
			// Not durable: the decision stands, finish it again.
			t.state = kmsg.TransactionStatePrepareAbort
			if job.commit {
				t.state = kmsg.TransactionStatePrepareCommit
			}
			if rotated {
				t.nextPid, t.pid, t.epoch, t.prevPid = t.pid, job.pid, job.epoch, -1
			}
			s.deps.lg.Warn("recording a completed transaction failed", "transactional.id", t.id, "err", err)
		}
	}}
}

// InitProducerID serves InitProducerId for a transactional id. newPID is a fresh producer id
// the caller reserved, used when the id is new or its epoch is exhausted.
func (s *Shard) InitProducerID(now time.Time, req InitRequest, newPID int64, cb func(InitResult)) coord.Result {
	fail := func(err error) coord.Result {
		cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: err})
		return coord.Result{}
	}
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if req.TimeoutMs <= 0 || timeout > s.cfg.MaxTimeout {
		return fail(ErrInvalidTimeout)
	}
	t := s.txns[req.TransactionalID]
	if t == nil {
		t = newTxnMeta(req.TransactionalID)
		t.pid, t.timeout, t.state, t.lastUpdate = newPID, timeout, kmsg.TransactionStateEmpty, now
		s.txns[t.id] = t
		return coord.Result{Records: []coord.Record{metaRecord(t)}, Done: func(err error) {
			if err != nil {
				if s.txns[t.id] == t {
					delete(s.txns, t.id)
				}
				cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: err})
				return
			}
			cb(InitResult{ProducerID: t.pid, ProducerEpoch: t.epoch})
		}}
	}
	if req.ProducerID >= 0 && (req.ProducerID != t.pid || req.ProducerEpoch != t.epoch) {
		// KIP-360: only the current producer may bump its own epoch.
		return fail(ErrProducerFenced)
	}
	if t.completing || t.preparing() || t.expiring {
		return fail(ErrConcurrentTransactions)
	}
	if t.state == kmsg.TransactionStateOngoing {
		// A new instance of the producer: fence the old one and abort what it left open.
		// Under transaction version 2 an exhausted epoch rotates to the reserved id, so the
		// old instance retrying its abort is answered with an id it can still use.
		if t.tv2 && t.epoch >= math.MaxInt16-1 {
			t.nextPid = newPID
		}
		if t.epoch < math.MaxInt16 {
			t.epoch++
		}
		res := s.prepare(t, false, now, nil, nil)
		cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: ErrConcurrentTransactions})
		return res
	}
	if t.epoch >= math.MaxInt16-1 {
		t.prevPid, t.pid, t.epoch = t.pid, newPID, 0
	} else {
		t.epoch++
	}
	t.timeout, t.state, t.lastUpdate = timeout, kmsg.TransactionStateEmpty, now
	t.parts, t.groups, t.offsets, t.start = map[TopicPartition]bool{}, map[string]bool{}, nil, time.Time{}
	s.publishPending(t)
	return coord.Result{Records: []coord.Record{metaRecord(t)}, Done: func(err error) {
		if err != nil {
			cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: err})
			return
		}
		cb(InitResult{ProducerID: t.pid, ProducerEpoch: t.epoch})
	}}
}

// check validates a request's producer id and epoch against the transaction.
func (s *Shard) check(id string, pid int64, epoch int16) (*txnMeta, error) {
	t := s.txns[id]
	switch {
	case t == nil || t.pid != pid:
		return nil, ErrInvalidProducerIDMapping
	case t.expiring:
		return nil, ErrConcurrentTransactions
	case epoch != t.epoch:
		return nil, ErrProducerFenced
	}
	return t, nil
}

// AddPartitions serves AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the
// group's __consumer_offsets partition).
func (s *Shard) AddPartitions(now time.Time, id string, pid int64, epoch int16, tps []TopicPartition, group string, cb func(error)) coord.Result {
	return s.addPartitions(now, id, pid, epoch, tps, group, false, cb)
}

// addPartitions adds tps (and group) to the producer's transaction, starting one if none
// is open; tv2 records the transaction version of the request.
func (s *Shard) addPartitions(now time.Time, id string, pid int64, epoch int16, tps []TopicPartition, group string, tv2 bool, cb func(error)) coord.Result {
	t, err := s.check(id, pid, epoch)
	if err == nil && (t.completing || t.preparing() || t.expiring) {
		err = ErrConcurrentTransactions
	}
	if err != nil {
		cb(err)
		return coord.Result{}
	}
	if !s.join(t, tps, group, tv2, now) {
		cb(nil)
		return coord.Result{}
	}
	return coord.Result{Records: []coord.Record{metaRecord(t)}, Done: cb}
}

// join adds tps and group to t's transaction, opening it if none is, and reports whether
// the metadata changed (and must be written).
func (s *Shard) join(t *txnMeta, tps []TopicPartition, group string, tv2 bool, now time.Time) bool {
	if group != "" {
		t.groups[group] = true
	}
	changed := t.tv2 != tv2
	t.tv2 = tv2
	for _, tp := range tps {
		if !t.parts[tp] {
			t.parts[tp] = true
			changed = true
		}
	}
	if !changed && t.state == kmsg.TransactionStateOngoing {
		return false
	}
	if t.state != kmsg.TransactionStateOngoing {
		t.state, t.start = kmsg.TransactionStateOngoing, now
		s.scheduleTimeout(t)
	}
	t.lastUpdate = now
	return true
}

// Verify answers whether tp is part of the producer's ongoing transaction (KIP-890).
func (s *Shard) Verify(id string, pid int64, epoch int16, tp TopicPartition) error {
	t, err := s.check(id, pid, epoch)
	if err != nil {
		return err
	}
	if t.state != kmsg.TransactionStateOngoing || !t.parts[tp] {
		return ErrInvalidTxnState
	}
	return nil
}

// CommitOffsets serves TxnOffsetCommit: the offsets are kept with the transaction and reach
// the group only if it commits.
func (s *Shard) CommitOffsets(now time.Time, id string, pid int64, epoch int16, pg PendingGroup, cb func(error)) coord.Result {
	t, err := s.check(id, pid, epoch)
	if err == nil && (t.completing || t.state != kmsg.TransactionStateOngoing) {
		err = ErrInvalidTxnState
	}
	if err != nil {
		cb(err)
		return coord.Result{}
	}
	if t.offsets == nil {
		t.offsets = map[string]*PendingGroup{}
	}
	cur := t.offsets[pg.Group]
	if cur == nil {
		cur = &PendingGroup{Group: pg.Group, Offsets: map[TopicPartition]Offset{}}
		t.offsets[pg.Group] = cur
	}
	cur.MemberID, cur.Generation, cur.InstanceID = pg.MemberID, pg.Generation, pg.InstanceID
	for tp, o := range pg.Offsets {
		cur.Offsets[tp] = o
	}
	t.groups[pg.Group] = true
	t.lastUpdate = now
	// Published before the record is durable: answering UNSTABLE_OFFSET_COMMIT early is
	// safe, answering an offset the transaction is about to replace is not.
	s.publishPending(t)
	return coord.Result{Records: []coord.Record{offsetsRecord(t)}, Done: cb}
}

// EndTxn serves EndTxn.
func (s *Shard) EndTxn(now time.Time, id string, pid int64, epoch int16, commit bool, cb func(error)) coord.Result {
	t, err := s.check(id, pid, epoch)
	if err != nil {
		cb(err)
		return coord.Result{}
	}
	switch t.state {
	case kmsg.TransactionStateOngoing:
		if t.completing {
			cb(ErrConcurrentTransactions)
			return coord.Result{}
		}
		return s.prepare(t, commit, now, nil, cb)
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStateCompleteCommit:
		err = nil
		if !commit {
			err = ErrInvalidTxnState
		}
	case kmsg.TransactionStatePrepareAbort, kmsg.TransactionStateCompleteAbort:
		err = nil
		if commit {
			err = ErrInvalidTxnState
		}
	default:
		err = ErrInvalidTxnState
	}
	cb(err)
	return coord.Result{}
}

// Describe returns a transaction's state.
func (s *Shard) Describe(id string) Description {
	t := s.txns[id]
	if t == nil || t.expiring {
		return Description{TransactionalID: id, Err: ErrTransactionalIDNotFound}
	}
	d := Description{TransactionalID: id, State: t.state, ProducerID: t.pid, ProducerEpoch: t.epoch,
		TimeoutMs: int32(t.timeout.Milliseconds()), StartTimestamp: -1}
	if !t.start.IsZero() {
		d.StartTimestamp = t.start.UnixMilli()
	}
	for tp := range t.parts {
		d.Partitions = append(d.Partitions, tp)
	}
	sort.Slice(d.Partitions, func(i, j int) bool {
		a, b := d.Partitions[i], d.Partitions[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	return d
}

// List returns every transaction of the shard.
func (s *Shard) List() []Listing {
	out := make([]Listing, 0, len(s.txns))
	for _, t := range s.txns {
		if t.expiring {
			continue
		}
		l := Listing{TransactionalID: t.id, ProducerID: t.pid, State: t.state, StartTimestamp: -1}
		if !t.start.IsZero() {
			l.StartTimestamp = t.start.UnixMilli()
		}
		out = append(out, l)
	}
	return out
}
