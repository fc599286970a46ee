// Package partition is one partition as its leader serves it or a follower replicates it:
// the log plus the state Kafka keeps beside it — leader epochs, high watermark, ISR and
// follower progress, producer state for idempotence and transactions — and the waiting of
// produce acks and fetch long polls on that state.
package partition

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/record"
)

// FlushPolicy is log.flush.policy: when appended data is fsynced, and so when it counts as
// committed (acknowledged, visible to consumers).
type FlushPolicy int8

const (
	// FlushAlways fsyncs every append before it is acknowledged or visible; a flusher
	// goroutine per partition groups all appends that arrive during one fsync (group commit).
	FlushAlways FlushPolicy = iota
	// FlushInterval acknowledges on write and fsyncs every FlushInterval.
	FlushInterval
	// FlushNever leaves writing back to the operating system.
	FlushNever
)

// Errors a caller maps to Kafka codes (internal/api does).
var (
	ErrStorage          = errors.New("storage error")             // KAFKA_STORAGE_ERROR
	ErrClosed           = errors.New("partition closed")          // NOT_LEADER_OR_FOLLOWER
	ErrTooManyBatches   = errors.New("more than one batch")       // INVALID_RECORD
	ErrOutOfOrderSeq    = errors.New("out of order sequence")     // OUT_OF_ORDER_SEQUENCE_NUMBER
	ErrInvalidEpoch     = errors.New("invalid producer epoch")    // INVALID_PRODUCER_EPOCH
	ErrTimeout          = errors.New("timed out")                 // REQUEST_TIMED_OUT
	ErrOffsetOutOfRange = plog.ErrOffsetOutOfRange                // OFFSET_OUT_OF_RANGE
	ErrInvalidTxnState  = errors.New("invalid transaction state") // INVALID_TXN_STATE
	// Replication (replication.go).
	ErrNotLeader          = errors.New("not the leader")                             // NOT_LEADER_OR_FOLLOWER
	ErrFencedLeaderEpoch  = errors.New("fenced leader epoch")                        // FENCED_LEADER_EPOCH
	ErrUnknownLeaderEpoch = errors.New("unknown leader epoch")                       // UNKNOWN_LEADER_EPOCH
	ErrNotEnoughReplicas  = errors.New("not enough in-sync replicas")                // NOT_ENOUGH_REPLICAS
	ErrOffsetMismatch     = errors.New("fetched data does not start at the log end") // the follower's fetcher restarts
)

// Config is a partition's configuration, derived from its topic's effective configs.
type Config struct {
	Log           plog.Options
	Validate      record.ValidateConfig // NowMs is filled per append
	FlushPolicy   FlushPolicy
	FlushInterval time.Duration
	// Recompress, when set, is the topic's compression.type other than "producer": batches in
	// another codec are re-encoded with Codec before they are stored, as Kafka does.
	Recompress bool
	Codec      record.Compression
	// ProducerIDExpiration is producer.id.expiration.ms: a producer with no open transaction
	// whose last append is older is forgotten. Zero means Kafka's default, one day.
	ProducerIDExpiration time.Duration
	// Retention says which old segments the retention cleaner removes (see lifecycle.go).
	Retention Retention
	Logger    *slog.Logger
	// NodeID is this node's id: a partition is opened as the leader of itself alone (ISR =
	// {NodeID}) until BecomeLeader or BecomeFollower says otherwise.
	NodeID int32
	// Replicated is set when the partition belongs to a cluster: it is then opened as a
	// follower of no one (nothing is acknowledged before the metadata makes it leader), and
	// its high watermark starts at the log start offset, since what survived recovery here
	// may never have been committed by the ISR; the replication protocol raises it.
	Replicated bool
	// OnStorageFailure, if set, is called once, on its own goroutine, when an I/O error fails
	// the partition: the host takes the partition's whole log dir offline.
	OnStorageFailure func(err error)
}

// Partition is one hosted partition.
//
// Invariants:
//   - Offsets are assigned and batches appended under mu, in one order; the log's end offset
//     only grows except through TruncateTo and ResetTo (a follower cutting a diverged tail).
//   - hw (the high watermark) is written only under mu; it never exceeds the log end offset,
//     never decreases except through TruncateTo and ResetTo, and lies on a batch boundary. It
//     is at most localEnd, which under FlushAlways is the durable end offset: nothing is
//     acknowledged or visible to consumers before it is on disk. On a leader it is also at
//     most the end offset of every other member of the maximal ISR (replication.go).
//   - A leader appends with Append and AppendMarker only; a follower with AppendAsFollower
//     only. Which one the partition is changes under mu (BecomeLeader, BecomeFollower).
//   - Once failed is set (an I/O error on append or fsync) it stays set; every later append and
//     every waiter gets ErrStorage, the data below hw stays readable.
//   - A producer-state snapshot file at offset N holds exactly the state that folding every
//     batch below N gives, and is durable only after those batches are (snapshot.go).
//
// All methods are safe for concurrent use. Append holds mu for offset assignment and the write
// only; fsync runs on the flusher goroutine without mu, so appends keep flowing during it, and
// mu is taken afterwards only to record the durable end. Lock order: mu, then the log's own
// locks; wmu is a leaf.
//
// Configuration: cfg is fixed at Open (flush policy, producer expiry, logger); dyn holds the
// topic-level settings that Reconfigure may replace at run time (validation, recompression,
// segment rolling, retention), read once per operation.
type Partition struct {
	Topic string
	ID    [16]byte
	Index int32

	cfg Config
	dyn atomic.Pointer[Config]
	log *plog.Log
	lg  *slog.Logger

	mu struct {
		sync.Mutex
		leaderEpoch int32
		epochs      []EpochEntry // leader-epoch checkpoint (leaderepoch.go)
		producers   map[int64]*producerEntry
		// Transactions (txn.go).
		ongoing    map[int64]int64
		completing []completingTxn
		aborted    []AbortedTxn
		// lastExpiry is when idle producers were last looked for (ms).
		lastExpiry int64
		// snapshots are the offsets of the producer-state snapshots on disk, ascending
		// (snapshot.go).
		snapshots []int64
		rep       replication // leader or follower state (replication.go)
	}

	// rolled is the base of a segment rolled but not yet snapshotted, or -1; set by the
	// log's OnRoll hook, consumed under mu (snapshot.go).
	rolled *atomic.Int64
	// scannedAtOpen counts the batch headers Open folded (the work a snapshot saves).
	scannedAtOpen int

	hw     atomic.Int64
	failed atomic.Bool
	// leader mirrors mu.rep.leader for lock-free readers (AwaitCommitted, IsLeader).
	leader atomic.Bool
	// fence is bumped under mu after anything that may replace data below the log end or
	// end this node's leadership (BecomeFollower, TruncateTo, ResetTo): a sync or a wait that
	// started before it describes a log that no longer is.
	fence atomic.Uint64

	wmu      sync.Mutex
	watchers []chan struct{} // signalled and cleared whenever hw moves or the partition fails
	// appendWatchers are signalled and cleared after every append (follower fetches waiting
	// at the leader for new data, which the high watermark does not show yet).
	appendWatchers []chan struct{}
	// local is what the local log has committed: the durable end offset under FlushAlways, the
	// log end offset otherwise. It moves only under hwmu.
	local atomic.Int64
	// hwmu orders the moves of local and hw with the role changes that decide how they may
	// move. It is a leaf, taken under mu, or alone by the flusher's fast path: a leader whose
	// ISR is itself alone (solo) has HW = local, so its fsyncs commit without waiting for mu,
	// which appends hold during their write.
	hwmu sync.Mutex
	// solo and enough are derived from mu.rep under mu and hwmu (refreshRoleLocked): solo, the
	// leader's ISR is itself alone with nothing proposed; enough, the ISR has at least
	// min.insync.replicas members.
	solo, enough atomic.Bool
	// hasLocalWaiters is set while an AwaitLocal waits, so that localEnd moves wake it.
	hasLocalWaiters atomic.Bool

	flushReq chan struct{}
	closing  chan struct{}
	done     chan struct{}
	closeMu  sync.Once
}

// Open opens (recovering) the partition's log in dir and starts its flusher.
func Open(dir, topic string, id [16]byte, index int32, leaderEpoch int32, cfg Config) (*Partition, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	lg := cfg.Logger.With("topic", topic, "partition", index)
	cfg.Log.Logger = lg
	rolled := new(atomic.Int64)
	rolled.Store(-1)
	cfg.Log.OnRoll = func(base int64) { rolled.Store(base) }
	l, err := plog.Open(dir, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	p := &Partition{Topic: topic, ID: id, Index: index, cfg: cfg, log: l, lg: lg, rolled: rolled,
		flushReq: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
	dyn := cfg
	p.dyn.Store(&dyn)
	p.mu.leaderEpoch = leaderEpoch
	p.mu.producers = make(map[int64]*producerEntry)
	p.mu.ongoing = make(map[int64]int64)
	// Everything that survived recovery is on disk: on a single node it is committed.
	p.hw.Store(l.EndOffset())
	if cfg.Replicated {
		p.hw.Store(l.StartOffset())
	}
	p.local.Store(l.EndOffset())
	onDisk := p.loadEpochsLocked()
	if err := p.rebuildStateLocked(); err != nil {
		l.Close()
		return nil, err
	}
	lg.Debug("producer state rebuilt", "batches_scanned", p.scannedAtOpen, "producers", len(p.mu.producers))
	if err := p.finishEpochsLocked(onDisk); err != nil {
		l.Close()
		return nil, fmt.Errorf("%w: write leader-epoch checkpoint: %v", ErrStorage, err)
	}
	if cfg.Replicated {
		p.mu.rep = replication{self: cfg.NodeID, leaderID: -1, epochStart: -1, leaderHW: -1}
		p.refreshRoleLocked()
	} else {
		p.initLeaderLocked(cfg.NodeID)
	}
	go p.flusher()
	return p, nil
}

// AppendResult is the outcome of one append.
type AppendResult struct {
	BaseOffset, LastOffset int64
	LogAppendTime          int64 // -1 unless the topic uses LogAppendTime
	LogStartOffset         int64
	Duplicate              bool // a retried idempotent batch: offsets are the original ones
}

// Append validates a produce payload for this partition, assigns its offsets and appends it.
// The payload is modified in place (base offset, leader epoch, log-append time). The append is
// not yet durable: wait with AwaitCommitted(res.LastOffset+1, …).
func (p *Partition) Append(data []byte) (AppendResult, error) {
	res := AppendResult{LogAppendTime: -1}
	if p.failed.Load() {
		return res, ErrStorage
	}
	var infos [1]record.BatchInfo
	cfg := p.dyn.Load()
	vcfg := cfg.Validate
	now := time.Now()
	if p.cfg.Log.Now != nil {
		now = p.cfg.Log.Now()
	}
	vcfg.NowMs = now.UnixMilli()
	bs, err := record.Validate(infos[:0], data, &vcfg)
	if err != nil {
		return res, err
	}
	if len(bs) != 1 {
		// Kafka accepts exactly one batch per partition from a client (v3+ produce).
		return res, ErrTooManyBatches
	}
	h := &bs[0].Header
	if h.IsTransactional() && h.ProducerID < 0 {
		return res, ErrInvalidTxnState
	}
	if cfg.Recompress && h.Compression() != cfg.Codec {
		if data, err = recompress(cfg, data, *h); err != nil {
			return res, err
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.rep.leader {
		return res, ErrNotLeader
	}
	p.expireProducersLocked(vcfg.NowMs)
	var pe *producerEntry
	if h.ProducerID >= 0 {
		pe = p.mu.producers[h.ProducerID]
		switch chk, dup := pe.check(h); chk {
		case seqDuplicate:
			return AppendResult{BaseOffset: dup.baseOffset, LastOffset: dup.lastOffset,
				LogAppendTime: dup.timestamp, LogStartOffset: p.log.StartOffset(), Duplicate: true}, nil
		case seqOutOfOrder:
			return res, ErrOutOfOrderSeq
		case seqFencedEpoch:
			return res, ErrInvalidEpoch
		}
	}
	base := p.log.EndOffset()
	if err := p.assignEpochLocked(base); err != nil {
		p.fail(err)
		return res, ErrStorage
	}
	record.SetBaseOffset(data, base)
	record.SetPartitionLeaderEpoch(data, p.mu.leaderEpoch)
	if vcfg.TimestampType == record.LogAppendTime {
		res.LogAppendTime = vcfg.NowMs
		record.SetLogAppendTime(data, vcfg.NowMs)
	}
	if err := p.log.Append(data); err != nil {
		p.fail(err)
		return res, ErrStorage
	}
	p.maybeSnapshotLocked() // before folding this batch: the state is the state at a roll's base
	res.BaseOffset = base
	res.LastOffset = base + int64(h.LastOffsetDelta)
	res.LogStartOffset = p.log.StartOffset()
	if h.ProducerID >= 0 {
		if pe == nil {
			pe = newProducerEntry(h.ProducerEpoch)
			p.mu.producers[h.ProducerID] = pe
		}
		pe.record(h, batchMeta{firstSeq: h.BaseSequence, lastSeq: h.BaseSequence + h.LastOffsetDelta,
			baseOffset: res.BaseOffset, lastOffset: res.LastOffset, timestamp: res.LogAppendTime}, vcfg.NowMs)
		if h.IsTransactional() {
			p.openTxnLocked(h.ProducerID, base)
		}
	}
	p.afterAppendLocked(res.LastOffset + 1)
	return res, nil
}

// afterAppendLocked makes an append up to end committed locally: a flush request under
// FlushAlways, an immediate move of localEnd (and so maybe of the high watermark) otherwise.
func (p *Partition) afterAppendLocked(end int64) {
	if p.cfg.FlushPolicy == FlushAlways {
		p.requestFlush()
	} else {
		p.setLocalEndLocked(end)
	}
	p.notifyAppend()
}

// notifyAppend wakes the waiters registered with WatchAppend.
func (p *Partition) notifyAppend() {
	p.wmu.Lock()
	ws := p.appendWatchers
	p.appendWatchers = nil
	p.wmu.Unlock()
	for _, ch := range ws {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// WatchAppend registers ch (buffered) to be signalled once, after the next append; as with
// Watch, callers re-check after registering.
func (p *Partition) WatchAppend(ch chan struct{}) {
	p.wmu.Lock()
	p.appendWatchers = append(p.appendWatchers, ch)
	p.wmu.Unlock()
}

// requestFlush wakes the flusher.
func (p *Partition) requestFlush() {
	select {
	case p.flushReq <- struct{}{}:
	default: // a flush is already pending; it will cover this append
	}
}

// setLocalEndLocked records that the local log has committed everything below end and moves
// the high watermark if that lets it.
func (p *Partition) setLocalEndLocked(end int64) {
	end = min(end, p.log.EndOffset())
	p.hwmu.Lock()
	p.raiseLocalHWLocked(end)
	p.hwmu.Unlock()
	p.updateHWLocked()
}

// raiseLocalHWLocked moves local up to end (hwmu held) and wakes AwaitLocal waiters.
func (p *Partition) raiseLocalHWLocked(end int64) {
	if end > p.local.Load() {
		p.local.Store(end)
		if p.hasLocalWaiters.Load() {
			p.notify()
		}
	}
}

// recompress re-encodes a batch with the topic's codec, keeping every header field the
// producer set (sequence numbers included) and every record as it was.
func recompress(cfg *Config, data []byte, h record.Header) ([]byte, error) {
	recs, err := record.Records(data, cfg.Validate.MaxDecompressedBytes)
	if err != nil {
		return nil, err
	}
	h.Attributes = h.Attributes&^7 | int16(cfg.Codec)
	out, err := record.Build(make([]byte, 0, len(data)), h, recs)
	if err != nil {
		return nil, err
	}
	if cfg.Validate.MaxBatchBytes > 0 && len(out) > cfg.Validate.MaxBatchBytes {
		return nil, record.ErrTooLarge
	}
	return out, nil
}

// fail marks the partition failed after an I/O error and wakes every waiter.
func (p *Partition) fail(err error) {
	if p.failed.CompareAndSwap(false, true) {
		p.lg.Error("partition storage failed; it answers KAFKA_STORAGE_ERROR until restarted", "err", err)
		if f := p.cfg.OnStorageFailure; f != nil {
			go f(err) // it may close this partition, which waits for the flusher that may be here
		}
	}
	p.notify()
}

// flusher fsyncs the log: under FlushAlways whenever appends are pending, grouping every
// append that arrived during the previous fsync into the next one; otherwise on a timer.
func (p *Partition) flusher() {
	defer close(p.done)
	var tick <-chan time.Time
	if p.cfg.FlushPolicy == FlushInterval && p.cfg.FlushInterval > 0 {
		t := time.NewTicker(p.cfg.FlushInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-p.flushReq:
		case <-tick:
		case <-p.closing:
			return
		}
		if p.failed.Load() {
			continue
		}
		if _, err := p.syncLocal(); err != nil {
			p.fail(err)
		}
	}
}

// syncLocal fsyncs the log and, under FlushAlways, records the durable end as committed
// locally. A sync that raced with a truncation (the fence moved) proves nothing about the
// log as it is now: it is not recorded and another flush is asked for.
func (p *Partition) syncLocal() (int64, error) {
	fence := p.fence.Load()
	durable, err := p.log.Sync()
	if err != nil {
		return 0, err
	}
	if p.cfg.FlushPolicy != FlushAlways {
		return durable, nil
	}
	p.hwmu.Lock()
	if p.solo.Load() && p.fence.Load() == fence {
		// HW = local: commit without taking mu.
		p.raiseLocalHWLocked(min(durable, p.log.EndOffset()))
		p.advanceHWLocked(p.local.Load())
		p.hwmu.Unlock()
		return durable, nil
	}
	p.hwmu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fence.Load() != fence {
		p.requestFlush()
		return durable, nil
	}
	p.setLocalEndLocked(durable)
	return durable, nil
}

// advanceHWLocked moves the high watermark forward to off and wakes the waiters.
func (p *Partition) advanceHWLocked(off int64) {
	for {
		cur := p.hw.Load()
		if off <= cur {
			return
		}
		if p.hw.CompareAndSwap(cur, off) {
			break
		}
	}
	p.notify()
}

func (p *Partition) notify() {
	p.wmu.Lock()
	ws := p.watchers
	p.watchers = nil
	p.wmu.Unlock()
	for _, ch := range ws {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Watch registers ch (buffered, capacity ≥ 1) to be signalled once, the next time the high
// watermark moves or the partition fails. Callers re-check their condition after
// registering, then wait, then re-register: no wakeup is lost.
func (p *Partition) Watch(ch chan struct{}) {
	p.wmu.Lock()
	p.watchers = append(p.watchers, ch)
	p.wmu.Unlock()
}

// AwaitCommitted waits until the high watermark reaches off (everything below off is
// committed), the partition fails, or deadline passes. It waits for a leader's own appends:
// on a follower, or once this node stops leading (its uncommitted tail may be replaced by
// another leader's data at the same offsets), it returns ErrNotLeader.
func (p *Partition) AwaitCommitted(off int64, deadline time.Time) error {
	fence := p.fence.Load()
	if !p.leader.Load() {
		return ErrNotLeader
	}
	var ch chan struct{}
	var timer *time.Timer
	for {
		if p.fence.Load() != fence {
			return ErrNotLeader
		}
		if p.hw.Load() >= off {
			return nil
		}
		if p.failed.Load() {
			return ErrStorage
		}
		if ch == nil {
			ch = make(chan struct{}, 1)
			d := time.Until(deadline)
			if d <= 0 {
				return ErrTimeout
			}
			timer = time.NewTimer(d)
			defer timer.Stop()
			p.Watch(ch)
			continue // re-check after registering
		}
		select {
		case <-ch:
			p.Watch(ch)
		case <-timer.C:
			if p.hw.Load() >= off && p.fence.Load() == fence {
				return nil
			}
			return ErrTimeout
		case <-p.closing:
			return ErrClosed
		}
	}
}

// AwaitLocal waits until this replica's own log has committed everything below off — fsynced
// under FlushAlways, written otherwise — without waiting for the followers: what acks=1 means.
// Like AwaitCommitted it fails with ErrNotLeader if leadership is lost meanwhile.
func (p *Partition) AwaitLocal(off int64, deadline time.Time) error {
	fence := p.fence.Load()
	if !p.leader.Load() {
		return ErrNotLeader
	}
	var ch chan struct{}
	var timer *time.Timer
	for {
		switch {
		case p.fence.Load() != fence:
			return ErrNotLeader
		case p.local.Load() >= off:
			return nil
		case p.failed.Load():
			return ErrStorage
		}
		if ch == nil {
			ch = make(chan struct{}, 1)
			d := time.Until(deadline)
			if d <= 0 {
				return ErrTimeout
			}
			timer = time.NewTimer(d)
			defer timer.Stop()
			p.hasLocalWaiters.Store(true)
			p.Watch(ch)
			continue // re-check after registering
		}
		select {
		case <-ch:
			p.Watch(ch)
		case <-timer.C:
			if p.local.Load() >= off && p.fence.Load() == fence {
				return nil
			}
			return ErrTimeout
		case <-p.closing:
			return ErrClosed
		}
	}
}

// HighWatermark returns the offset below which records are committed.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// LogStartOffset returns the first offset still in the log.
func (p *Partition) LogStartOffset() int64 { return p.log.StartOffset() }

// LogEndOffset returns the next offset to be assigned.
func (p *Partition) LogEndOffset() int64 { return p.log.EndOffset() }

// LeaderEpoch returns the partition's current leader epoch.
func (p *Partition) LeaderEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.leaderEpoch
}

// Failed reports whether the partition's storage has failed.
func (p *Partition) Failed() bool { return p.failed.Load() }

// Read returns committed batches from offset: at most maxBytes unless minOne and the first
// batch is larger (Kafka's first-batch exception). An offset between the high watermark and
// the log end offset reads nothing; beyond the log end it is ErrOffsetOutOfRange.
func (p *Partition) Read(offset int64, maxBytes int, minOne bool) (plog.Slice, error) {
	return p.readTo(offset, p.hw.Load(), maxBytes, minOne)
}

// readTo reads batches from offset below limit.
func (p *Partition) readTo(offset, limit int64, maxBytes int, minOne bool) (plog.Slice, error) {
	if p.failed.Load() {
		return plog.Slice{}, ErrStorage
	}
	s, err := p.log.Read(offset, limit, maxBytes, minOne)
	// A read returns one segment's batches. When the offset lies in a gap that runs to the
	// end of its segment (compaction removed those batches), the slice is empty and
	// NextOffset is the next segment's base: go on from there, as Kafka does, or a consumer
	// at that offset would be answered "nothing" forever.
	for err == nil && s.Size == 0 && s.NextOffset > offset && s.NextOffset < limit {
		offset = s.NextOffset
		s, err = p.log.Read(offset, limit, maxBytes, minOne)
	}
	if err != nil && !errors.Is(err, plog.ErrOffsetOutOfRange) {
		p.fail(err)
		return s, ErrStorage
	}
	return s, err
}

// OffsetForTimestamp returns the first committed offset whose record timestamp is ≥ ts, and that
// record's timestamp; ok is false when there is none.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	offset, timestamp, ok, err = p.log.OffsetForTimestamp(ts)
	if err != nil {
		return 0, 0, false, ErrStorage
	}
	if ok && offset >= p.hw.Load() {
		return 0, 0, false, nil
	}
	return offset, timestamp, ok, nil
}

// MaxTimestamp returns the largest timestamp in the log and its record's offset (-1, -1 if none).
func (p *Partition) MaxTimestamp() (ts, offset int64) { return p.log.MaxTimestamp() }

// Close stops the flusher, closes the log (which syncs it) and snapshots the producer state
// at the log end.
func (p *Partition) Close() error {
	var err error
	p.closeMu.Do(func() {
		close(p.closing)
		<-p.done
		err = p.log.Close()
		if err == nil && !p.failed.Load() {
			// A clean shutdown leaves nothing to scan at the next Open.
			p.mu.Lock()
			p.rolled.Store(-1)
			p.writeSnapshotLocked(p.log.EndOffset(), false) // Close synced the log
			p.mu.Unlock()
		}
		p.notify()
	})
	return err
}

// Delete closes the partition and removes its data.
func (p *Partition) Delete() error {
	p.closeMu.Do(func() {
		close(p.closing)
		<-p.done
		p.notify()
	})
	return p.log.Delete()
}
