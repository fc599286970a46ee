package partition

import (
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/record"
)

// Transactions on one partition.
//
// A producer's transaction opens on this partition with its first transactional batch and
// closes with the control batch (marker) the transaction coordinator appends. The partition
// keeps, under mu:
//   - ongoing: producer id → first offset of its open transaction;
//   - completing: transactions whose marker is appended but not yet committed (below hw); they
//     still hold the last stable offset back, so read_committed never sees data before its
//     outcome is durable;
//   - aborted: every aborted transaction still (partly) in the log, ordered by marker offset:
//     the in-memory form of Kafka's .txnindex, rebuilt from the log at open.
//
// The last stable offset (LSO) is min(first offset of every open or completing transaction,
// hw). read_committed fetches stop at it and get the aborted transactions they cover.

// AbortedTxn is one aborted transaction: the producer and the offsets of its first batch here
// and of its ABORT marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

type completingTxn struct {
	first, marker int64
}

// Control record types of a transaction marker.
const (
	markerAbort  int16 = 0
	markerCommit int16 = 1
)

// attrTxnControl are the attributes of a marker batch: transactional and control.
const attrTxnControl int16 = 1<<4 | 1<<5

// buildMarker encodes a control batch closing producer pid's transaction.
func buildMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, now int64) ([]byte, error) {
	typ := markerAbort
	if commit {
		typ = markerCommit
	}
	key := binary.BigEndian.AppendUint16(make([]byte, 0, 4), 0) // key version 0
	key = binary.BigEndian.AppendUint16(key, uint16(typ))
	val := binary.BigEndian.AppendUint16(make([]byte, 0, 6), 0) // value version 0
	val = binary.BigEndian.AppendUint32(val, uint32(coordinatorEpoch))
	h := record.Header{Attributes: attrTxnControl, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1,
		FirstTimestamp: now, MaxTimestamp: now}
	return record.Build(nil, h, []record.Record{{Key: key, Value: val}})
}

// markerType returns whether a control batch commits (true) or aborts, and the coordinator
// epoch its value carries (-1 if it has none).
func markerType(batch []byte) (commit bool, coordinatorEpoch int32, err error) {
	recs, err := record.Records(batch, 1<<20)
	if err != nil {
		return false, -1, err
	}
	if len(recs) == 0 || len(recs[0].Key) < 4 {
		return false, -1, fmt.Errorf("%w: control batch without a marker key", record.ErrCorrupt)
	}
	coordinatorEpoch = -1
	if v := recs[0].Value; len(v) >= 6 {
		coordinatorEpoch = int32(binary.BigEndian.Uint32(v[2:]))
	}
	return int16(binary.BigEndian.Uint16(recs[0].Key[2:])) == markerCommit, coordinatorEpoch, nil
}

// AppendMarker appends a COMMIT or ABORT marker for producer pid at epoch, closing its
// transaction on this partition (a marker for a producer with no open transaction here is
// written all the same, as Kafka does). A marker of an older epoch than the producer's is
// refused with ErrInvalidEpoch. Like Append, the marker is durable once AwaitCommitted
// returns for res.LastOffset+1.
func (p *Partition) AppendMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32) (AppendResult, error) {
	res := AppendResult{LogAppendTime: -1}
	if p.failed.Load() {
		return res, ErrStorage
	}
	now := time.Now()
	if p.cfg.Log.Now != nil {
		now = p.cfg.Log.Now()
	}
	data, err := buildMarker(pid, epoch, commit, coordinatorEpoch, now.UnixMilli())
	if err != nil {
		return res, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.rep.leader {
		return res, ErrNotLeader
	}
	pe := p.mu.producers[pid]
	if pe != nil && epoch < pe.epoch {
		return res, ErrInvalidEpoch
	}
	base := p.log.EndOffset()
	if err := p.assignEpochLocked(base); err != nil {
		p.fail(err)
		return res, ErrStorage
	}
	record.SetBaseOffset(data, base)
	record.SetPartitionLeaderEpoch(data, p.mu.leaderEpoch)
	if err := p.log.Append(data); err != nil {
		p.fail(err)
		return res, ErrStorage
	}
	p.maybeSnapshotLocked()
	res.BaseOffset, res.LastOffset, res.LogStartOffset = base, base, p.log.StartOffset()
	p.closeTxnLocked(pid, epoch, commit, coordinatorEpoch, base, now.UnixMilli())
	p.afterAppendLocked(res.LastOffset + 1)
	return res, nil
}

// closeTxnLocked folds a marker at offset marker into the transaction state.
func (p *Partition) closeTxnLocked(pid int64, epoch int16, commit bool, coordinatorEpoch int32, marker int64, now int64) {
	pe := p.mu.producers[pid]
	if pe == nil {
		pe = newProducerEntry(epoch)
		p.mu.producers[pid] = pe
	}
	pe.coordEpoch = coordinatorEpoch
	if epoch > pe.epoch {
		// A coordinator bumping the epoch (timeout, fencing) resets the producer's sequence.
		pe.epoch = epoch
		pe.batches = pe.batches[:0]
	}
	pe.lastTs = now
	first, ok := p.mu.ongoing[pid]
	if !ok {
		return
	}
	delete(p.mu.ongoing, pid)
	p.mu.completing = append(p.mu.completing, completingTxn{first: first, marker: marker})
	if !commit {
		p.mu.aborted = append(p.mu.aborted, AbortedTxn{ProducerID: pid, FirstOffset: first, LastOffset: marker})
	}
}

// openTxnLocked records that a transactional batch at base opened (or continues) pid's
// transaction.
func (p *Partition) openTxnLocked(pid, base int64) {
	if _, ok := p.mu.ongoing[pid]; !ok {
		p.mu.ongoing[pid] = base
	}
}

// LastStableOffset returns the offset below which every transaction is decided and durable:
// read_committed consumers read up to it.
func (p *Partition) LastStableOffset() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastStableLocked()
}

func (p *Partition) lastStableLocked() int64 {
	hw := p.hw.Load()
	lso := hw
	for _, first := range p.mu.ongoing {
		lso = min(lso, first)
	}
	keep := p.mu.completing[:0]
	for _, c := range p.mu.completing {
		if c.marker >= hw {
			keep = append(keep, c)
			lso = min(lso, c.first)
		}
	}
	clear(p.mu.completing[len(keep):])
	p.mu.completing = keep
	return lso
}

// AbortedTxns returns the aborted transactions that overlap [from, upper): those a
// read_committed consumer reading that range must filter out.
func (p *Partition) AbortedTxns(from, upper int64) []AbortedTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := p.log.StartOffset()
	// Entries whose marker fell below the log start are gone from the log: drop them.
	drop := sort.Search(len(p.mu.aborted), func(i int) bool { return p.mu.aborted[i].LastOffset >= start })
	if drop > 0 {
		p.mu.aborted = append(p.mu.aborted[:0], p.mu.aborted[drop:]...)
	}
	i := sort.Search(len(p.mu.aborted), func(i int) bool { return p.mu.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range p.mu.aborted[i:] {
		if a.FirstOffset < upper {
			out = append(out, a)
		}
	}
	return out
}

// ReadCommitted is Read bounded by the last stable offset instead of the high watermark.
func (p *Partition) ReadCommitted(offset int64, maxBytes int, minOne bool) (plog.Slice, error) {
	return p.readTo(offset, p.LastStableOffset(), maxBytes, minOne)
}

// ReadBelow is Read bounded by limit, a last stable offset the caller obtained (and reports);
// it never reads past the high watermark.
func (p *Partition) ReadBelow(offset, limit int64, maxBytes int, minOne bool) (plog.Slice, error) {
	return p.readTo(offset, min(limit, p.hw.Load()), maxBytes, minOne)
}

// OngoingTxnFirst returns the first offset of pid's open transaction here, or -1.
func (p *Partition) OngoingTxnFirst(pid int64) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.mu.ongoing[pid]; ok {
		return f
	}
	return -1
}

// ProducerState describes one producer known to the partition (DescribeProducers).
type ProducerState struct {
	ProducerID       int64
	ProducerEpoch    int16
	LastSequence     int32
	LastTimestamp    int64
	CoordinatorEpoch int32
	TxnStartOffset   int64 // -1 when no transaction is open
}

// Producers returns the state of every producer the partition remembers.
func (p *Partition) Producers() []ProducerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerState, 0, len(p.mu.producers))
	for id, pe := range p.mu.producers {
		s := ProducerState{ProducerID: id, ProducerEpoch: pe.epoch, LastSequence: -1, LastTimestamp: pe.lastTs,
			CoordinatorEpoch: pe.coordEpoch, TxnStartOffset: -1}
		if n := len(pe.batches); n > 0 {
			s.LastSequence = pe.batches[n-1].lastSeq
		}
		if f, ok := p.mu.ongoing[id]; ok {
			s.TxnStartOffset = f
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}
