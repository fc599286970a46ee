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
			t = &txnMeta{id: k.TransactionalID}
			s.txns[t.id] = t
		}
		t.pid, t.epoch, t.state = v.ProducerID, v.ProducerEpoch, v.State
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
		s.deps.lg.Info("aborting timed out transaction", "transactional.id", t.id, "producer.id", pid, "epoch", epoch)
		// The epoch bump fences the producer that left the transaction hanging.
		if t.epoch < math.MaxInt16 {
			t.epoch++
		}
		return s.prepare(t, false, now, nil)
	})
}

// prepare moves t to PrepareCommit or PrepareAbort; once durable, cb (if any) is answered and
// the markers are written.
func (s *Shard) prepare(t *txnMeta, commit bool, now time.Time, cb func(error)) coord.Result {
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
		t = &txnMeta{id: req.TransactionalID, pid: newPID, epoch: 0, timeout: timeout, state: kmsg.TransactionStateEmpty,
			parts: map[TopicPartition]bool{}, groups: map[string]bool{}, lastUpdate: now}
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
	if t.completing || t.preparing() {
		return fail(ErrConcurrentTransactions)
	}
	if t.state == kmsg.TransactionStateOngoing {
		// A new instance of the producer: fence the old one and abort what it left open.
		if t.epoch < math.MaxInt16 {
			t.epoch++
		}
		res := s.prepare(t, false, now, nil)
		cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: ErrConcurrentTransactions})
		return res
	}
	if t.epoch >= math.MaxInt16-1 {
		t.pid, t.epoch = newPID, 0
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
	case epoch != t.epoch:
		return nil, ErrProducerFenced
	}
	return t, nil
}

// AddPartitions serves AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is the
// group's __consumer_offsets partition).
func (s *Shard) AddPartitions(now time.Time, id string, pid int64, epoch int16, tps []TopicPartition, group string, cb func(error)) coord.Result {
	t, err := s.check(id, pid, epoch)
	if err == nil && (t.completing || t.preparing()) {
		err = ErrConcurrentTransactions
	}
	if err != nil {
		cb(err)
		return coord.Result{}
	}
	if group != "" {
		t.groups[group] = true
	}
	added := false
	for _, tp := range tps {
		if !t.parts[tp] {
			t.parts[tp] = true
			added = true
		}
	}
	if !added && t.state == kmsg.TransactionStateOngoing {
		cb(nil)
		return coord.Result{}
	}
	if t.state != kmsg.TransactionStateOngoing {
		t.state, t.start = kmsg.TransactionStateOngoing, now
		s.scheduleTimeout(t)
	}
	t.lastUpdate = now
	return coord.Result{Records: []coord.Record{metaRecord(t)}, Done: cb}
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
		return s.prepare(t, commit, now, cb)
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
	if t == nil {
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
		l := Listing{TransactionalID: t.id, ProducerID: t.pid, State: t.state, StartTimestamp: -1}
		if !t.start.IsZero() {
			l.StartTimestamp = t.start.UnixMilli()
		}
		out = append(out, l)
	}
	return out
}
