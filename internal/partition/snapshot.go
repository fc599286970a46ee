package partition

// Producer-state snapshots.
//
// At every segment roll the partition writes `<base offset of the new segment, 20 digits>.snapshot`
// beside the segments: the state that folding every batch below that offset gives — producers'
// epochs and last five batches, open transactions, the aborted-transaction index and the
// leader-epoch entries — and another at the log end on a clean Close. Open loads the newest
// readable snapshot whose offset lies in [log start, log end] and folds only the batch
// headers from there, instead of the whole log. The aborted index lives in the snapshot
// (it is small: one entry per aborted transaction still in the log), not in per-segment
// .txnindex files.
//
// Rolls are noticed through log.Options.OnRoll, which only records the new base (it runs
// under the log's append lock); the snapshot is taken under mu by whoever takes mu next —
// the Append or AppendMarker that caused the roll, right after writing its batch and before
// folding it, or EnforceRetention after a roll of its own. Nothing else is folded in between,
// so the state is exactly the state at the new base.
//
// Crash safety: the log is synced first (one fsync per roll), then the snapshot is written
// to a temporary file, fsynced, renamed and the directory fsynced. A snapshot past the recovered log end (its batches were lost) or below the log start
// (its successors were removed) is deleted at Open, durably, before the log can grow past it
// again; a torn or unreadable one is deleted and the next older one, or a full scan, is used.
// At most two snapshots are kept.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// SnapshotSuffix ends a producer-state snapshot's file name.
const SnapshotSuffix = ".snapshot"

// maxSnapshots is how many snapshot files a partition keeps.
const maxSnapshots = 2

// ErrBadSnapshot: a producer-state snapshot that is torn or does not parse.
var ErrBadSnapshot = errors.New("damaged producer-state snapshot")

// SnapshotName is the file name of the snapshot at offset.
func SnapshotName(offset int64) string {
	return fmt.Sprintf("%020d%s", offset, SnapshotSuffix)
}

// parseSnapshotName returns the offset of a snapshot file name.
func parseSnapshotName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, SnapshotSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	off, err := strconv.ParseInt(digits, 10, 64)
	return off, err == nil && off >= 0
}

// producerSnapshot is the state at Offset: what folding every batch below it gives.
type producerSnapshot struct {
	Offset    int64
	Producers []snapProducer // by producer id
	Ongoing   []snapTxn      // open transactions, by producer id
	Aborted   []AbortedTxn   // by marker offset
	Epochs    []EpochEntry
}

type snapProducer struct {
	ID         int64
	Epoch      int16
	CoordEpoch int32
	LastTs     int64
	Batches    []batchMeta
}

type snapTxn struct {
	ID, First int64
}

// Encoding, big-endian: version int16 (1), CRC32C (Castagnoli) uint32 of everything after it,
// offset int64, then four counted arrays (count uint32):
//   - producers: id int64, epoch int16, coordinator epoch int32, last timestamp int64,
//     batch count uint8 (≤ 5), batches (first seq int32, last seq int32, base offset int64,
//     last offset int64, timestamp int64);
//   - open transactions: producer id int64, first offset int64;
//   - aborted transactions: producer id int64, first offset int64, marker offset int64;
//   - leader epochs: epoch int32, start offset int64.
const (
	snapshotVersion    = 1
	snapshotHeaderSize = 2 + 4
	snapBatchSize      = 4 + 4 + 8 + 8 + 8
	snapProducerSize   = 8 + 2 + 4 + 8 + 1
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeSnapshot appends the encoding of s to dst.
func encodeSnapshot(dst []byte, s *producerSnapshot) []byte {
	start := len(dst)
	dst = binary.BigEndian.AppendUint16(dst, snapshotVersion)
	dst = binary.BigEndian.AppendUint32(dst, 0) // CRC, filled below
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.Offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Producers)))
	for _, pr := range s.Producers {
		dst = binary.BigEndian.AppendUint64(dst, uint64(pr.ID))
		dst = binary.BigEndian.AppendUint16(dst, uint16(pr.Epoch))
		dst = binary.BigEndian.AppendUint32(dst, uint32(pr.CoordEpoch))
		dst = binary.BigEndian.AppendUint64(dst, uint64(pr.LastTs))
		dst = append(dst, byte(len(pr.Batches)))
		for _, b := range pr.Batches {
			dst = binary.BigEndian.AppendUint32(dst, uint32(b.firstSeq))
			dst = binary.BigEndian.AppendUint32(dst, uint32(b.lastSeq))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.baseOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.lastOffset))
			dst = binary.BigEndian.AppendUint64(dst, uint64(b.timestamp))
		}
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Ongoing)))
	for _, t := range s.Ongoing {
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.ID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(t.First))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Aborted)))
	for _, a := range s.Aborted {
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.ProducerID))
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.FirstOffset))
		dst = binary.BigEndian.AppendUint64(dst, uint64(a.LastOffset))
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Epochs)))
	for _, e := range s.Epochs {
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.Epoch))
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.StartOffset))
	}
	crc := crc32.Checksum(dst[start+snapshotHeaderSize:], castagnoli)
	binary.BigEndian.PutUint32(dst[start+2:], crc)
	return dst
}

// snapReader decodes big-endian fields, remembering the first overrun.
type snapReader struct {
	b   []byte
	bad bool
}

func (r *snapReader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}
func (r *snapReader) u8() uint8   { return r.take(1)[0] }
func (r *snapReader) u16() uint16 { return binary.BigEndian.Uint16(r.take(2)) }
func (r *snapReader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *snapReader) i64() int64  { return int64(binary.BigEndian.Uint64(r.take(8))) }

// count reads an array length and checks that the rest of the input can hold it.
func (r *snapReader) count(minElem int) int {
	n := r.u32()
	if r.bad || uint64(n)*uint64(minElem) > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

// decodeSnapshot parses a snapshot, checking its version, checksum, lengths and orderings.
func decodeSnapshot(b []byte) (*producerSnapshot, error) {
	if len(b) < snapshotHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSnapshot, len(b))
	}
	if v := binary.BigEndian.Uint16(b); v != snapshotVersion {
		return nil, fmt.Errorf("%w: version %d", ErrBadSnapshot, v)
	}
	if crc := crc32.Checksum(b[snapshotHeaderSize:], castagnoli); crc != binary.BigEndian.Uint32(b[2:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	r := &snapReader{b: b[snapshotHeaderSize:]}
	s := &producerSnapshot{Offset: r.i64()}
	n := r.count(snapProducerSize)
	s.Producers = make([]snapProducer, 0, n)
	for range n {
		pr := snapProducer{ID: r.i64(), Epoch: int16(r.u16()), CoordEpoch: int32(r.u32()), LastTs: r.i64()}
		nb := int(r.u8())
		if nb > maxBatchesPerProducer {
			return nil, fmt.Errorf("%w: %d batches for producer %d", ErrBadSnapshot, nb, pr.ID)
		}
		pr.Batches = make([]batchMeta, nb)
		for i := range pr.Batches {
			pr.Batches[i] = batchMeta{firstSeq: int32(r.u32()), lastSeq: int32(r.u32()),
				baseOffset: r.i64(), lastOffset: r.i64(), timestamp: r.i64()}
		}
		s.Producers = append(s.Producers, pr)
	}
	n = r.count(16)
	s.Ongoing = make([]snapTxn, n)
	for i := range s.Ongoing {
		s.Ongoing[i] = snapTxn{ID: r.i64(), First: r.i64()}
	}
	n = r.count(24)
	s.Aborted = make([]AbortedTxn, n)
	for i := range s.Aborted {
		s.Aborted[i] = AbortedTxn{ProducerID: r.i64(), FirstOffset: r.i64(), LastOffset: r.i64()}
	}
	n = r.count(12)
	s.Epochs = make([]EpochEntry, n)
	for i := range s.Epochs {
		s.Epochs[i] = EpochEntry{Epoch: int32(r.u32()), StartOffset: r.i64()}
	}
	switch {
	case r.bad:
		return nil, fmt.Errorf("%w: truncated", ErrBadSnapshot)
	case len(r.b) != 0:
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadSnapshot, len(r.b))
	case s.Offset < 0:
		return nil, fmt.Errorf("%w: offset %d", ErrBadSnapshot, s.Offset)
	}
	for i := 1; i < len(s.Aborted); i++ {
		if s.Aborted[i].LastOffset <= s.Aborted[i-1].LastOffset {
			return nil, fmt.Errorf("%w: aborted transactions out of order", ErrBadSnapshot)
		}
	}
	for i := 1; i < len(s.Epochs); i++ {
		if s.Epochs[i].Epoch <= s.Epochs[i-1].Epoch || s.Epochs[i].StartOffset <= s.Epochs[i-1].StartOffset {
			return nil, fmt.Errorf("%w: leader epochs out of order", ErrBadSnapshot)
		}
	}
	for _, t := range s.Ongoing {
		if t.First >= s.Offset {
			return nil, fmt.Errorf("%w: transaction of producer %d opens at %d, past the snapshot", ErrBadSnapshot, t.ID, t.First)
		}
	}
	return s, nil
}

// captureLocked returns the partition's state as a snapshot at offset. Aborted transactions
// whose marker is below the log start are left out.
func (p *Partition) captureLocked(offset int64) *producerSnapshot {
	s := &producerSnapshot{Offset: offset, Epochs: slices.Clone(p.mu.epochs)}
	s.Producers = make([]snapProducer, 0, len(p.mu.producers))
	for id, pe := range p.mu.producers {
		s.Producers = append(s.Producers, snapProducer{ID: id, Epoch: pe.epoch, CoordEpoch: pe.coordEpoch,
			LastTs: pe.lastTs, Batches: pe.batches})
	}
	slices.SortFunc(s.Producers, func(a, b snapProducer) int { return cmpInt64(a.ID, b.ID) })
	for id, first := range p.mu.ongoing {
		s.Ongoing = append(s.Ongoing, snapTxn{ID: id, First: first})
	}
	slices.SortFunc(s.Ongoing, func(a, b snapTxn) int { return cmpInt64(a.ID, b.ID) })
	start := p.log.StartOffset()
	i := sort.Search(len(p.mu.aborted), func(i int) bool { return p.mu.aborted[i].LastOffset >= start })
	s.Aborted = p.mu.aborted[i:]
	return s
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// restoreLocked replaces the producer and transaction state with s's. Leader epochs: s's
// entries (all below s.Offset) are complete for that part of the log; the checkpoint's
// entries at or past s.Offset are kept after them.
func (p *Partition) restoreLocked(s *producerSnapshot) {
	clear(p.mu.producers)
	for _, pr := range s.Producers {
		p.mu.producers[pr.ID] = &producerEntry{epoch: pr.Epoch, coordEpoch: pr.CoordEpoch, lastTs: pr.LastTs,
			batches: slices.Clone(pr.Batches)}
	}
	clear(p.mu.ongoing)
	for _, t := range s.Ongoing {
		p.mu.ongoing[t.ID] = t.First
	}
	p.mu.aborted = slices.Clone(s.Aborted)
	epochs := slices.Clone(s.Epochs)
	for _, e := range p.mu.epochs {
		if e.StartOffset >= s.Offset && (len(epochs) == 0 || e.Epoch > epochs[len(epochs)-1].Epoch) {
			epochs = append(epochs, e)
		}
	}
	p.mu.epochs = epochs
}

// maybeSnapshotLocked writes the snapshot of a roll not yet snapshotted (see the top of this
// file). A failed write is logged and costs only a longer scan at the next Open.
func (p *Partition) maybeSnapshotLocked() {
	off := p.rolled.Swap(-1)
	if off < 0 {
		return
	}
	p.writeSnapshotLocked(off, true)
}

// writeSnapshotLocked writes the snapshot of the current state at offset and trims the
// snapshots kept to the newest maxSnapshots. With syncLog the log is synced first: a snapshot
// must never be durable while batches below its offset are not, or a crash could leave it
// describing batches that recovery then lacks (the log tolerates gaps between segments, so
// its end offset alone does not tell).
func (p *Partition) writeSnapshotLocked(offset int64, syncLog bool) {
	if syncLog {
		durable, err := p.log.Sync()
		if err != nil {
			p.fail(err)
			return
		}
		if p.cfg.FlushPolicy == FlushAlways {
			p.setLocalEndLocked(durable)
		}
	}
	data := encodeSnapshot(nil, p.captureLocked(offset))
	if err := writeFileAtomic(p.fsys(), p.log.Dir(), SnapshotName(offset), data); err != nil {
		p.lg.Warn("writing producer-state snapshot failed; the next open scans more of the log",
			"offset", offset, "err", err)
		return
	}
	snaps := p.mu.snapshots
	if k := len(snaps); k == 0 || snaps[k-1] < offset {
		snaps = append(snaps, offset)
	}
	if k := len(snaps); k > maxSnapshots {
		p.removeSnapshots(snaps[:k-maxSnapshots])
		snaps = append(snaps[:0], snaps[k-maxSnapshots:]...)
	}
	p.mu.snapshots = snaps
}

// dropSnapshotsBelowLocked deletes the snapshots below the log start: the batches between
// them and the start are gone, so they can no longer be completed by a scan. If none is left,
// the current state is snapshotted at the log end, so that producers and open transactions
// whose batches all lie below the new start survive a restart as they survive here.
func (p *Partition) dropSnapshotsBelowLocked(start int64) {
	k := 0
	for k < len(p.mu.snapshots) && p.mu.snapshots[k] < start {
		k++
	}
	if k == 0 {
		return
	}
	p.removeSnapshots(p.mu.snapshots[:k])
	p.mu.snapshots = append(p.mu.snapshots[:0], p.mu.snapshots[k:]...)
	if len(p.mu.snapshots) == 0 {
		p.writeSnapshotLocked(p.log.EndOffset(), true)
	}
}

// removeSnapshots deletes snapshot files, best effort: an old snapshot that survives is
// never preferred to a newer one, and one below the log start is discarded at Open.
func (p *Partition) removeSnapshots(offs []int64) {
	for _, off := range offs {
		if err := p.fsys().Remove(filepath.Join(p.log.Dir(), SnapshotName(off))); err != nil {
			p.lg.Warn("removing producer-state snapshot", "offset", off, "err", err)
		}
	}
}

// loadSnapshotLocked picks the snapshot Open starts from: the newest readable one with an
// offset in [start, end]. It deletes the ones that can never be used (past end, below start,
// damaged) and leftover temporary files, durably, and returns nil if none is usable.
func (p *Partition) loadSnapshotLocked(start, end int64) (*producerSnapshot, error) {
	fs, dir := p.fsys(), p.log.Dir()
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	var offs []int64
	removed := false
	remove := func(name, why string, err error) error {
		p.lg.Warn("removing producer-state snapshot", "file", name, "reason", why, "err", err)
		removed = true
		return fs.Remove(filepath.Join(dir, name))
	}
	for _, name := range names {
		if strings.HasSuffix(name, SnapshotSuffix+".tmp") {
			if err := remove(name, "unfinished", nil); err != nil {
				return nil, err
			}
		} else if off, ok := parseSnapshotName(name); ok {
			offs = append(offs, off)
		}
	}
	slices.Sort(offs)
	var use *producerSnapshot
	keep := offs[:0]
	for i := len(offs) - 1; i >= 0; i-- {
		off := offs[i]
		name := SnapshotName(off)
		if off > end || off < start {
			if err := remove(name, "outside the log", nil); err != nil {
				return nil, err
			}
			continue
		}
		if use == nil {
			s, err := readSnapshot(fs, filepath.Join(dir, name))
			if err == nil && s.Offset != off {
				err = fmt.Errorf("%w: holds offset %d", ErrBadSnapshot, s.Offset)
			}
			if err != nil {
				if err := remove(name, "unreadable", err); err != nil {
					return nil, err
				}
				continue
			}
			use = s
		}
		keep = append(keep, off)
	}
	slices.Reverse(keep)
	p.mu.snapshots = keep
	if removed {
		// A snapshot past the end must not come back after the log grows past it again.
		if err := fs.SyncDir(dir); err != nil {
			return nil, err
		}
	}
	return use, nil
}

func readSnapshot(fs vfs.FS, name string) (*producerSnapshot, error) {
	f, err := fs.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	if n, err := f.ReadAt(buf, 0); n < len(buf) {
		return nil, fmt.Errorf("%w: short read: %v", ErrBadSnapshot, err)
	}
	return decodeSnapshot(buf)
}

// writeFileAtomic replaces dir/name with data: temporary file, fsync, rename, directory
// fsync, so that a crash leaves the old file or the new one, never a torn one.
func writeFileAtomic(fs vfs.FS, dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = fs.SyncDir(dir)
	}
	if err != nil {
		_ = fs.Remove(tmp)
	}
	return err
}

// rebuildStateLocked restores producer state, transactions, the aborted index and leader
// epochs at Open: from the newest usable snapshot plus the batch headers after it, or from
// every batch header of the log when there is none. It runs before the partition is shared.
func (p *Partition) rebuildStateLocked() error {
	start, end := p.log.StartOffset(), p.log.EndOffset()
	from := start
	snap, err := p.loadSnapshotLocked(start, end)
	if err != nil {
		return fmt.Errorf("%w: loading producer-state snapshots: %v", ErrStorage, err)
	}
	if snap != nil {
		p.restoreLocked(snap)
		from = snap.Offset
	}
	var buf []byte
	var ferr error
	err = p.log.ScanHeaders(from, func(h record.Header) {
		if ferr != nil {
			return
		}
		p.scannedAtOpen++
		p.observeEpochLocked(&h)
		buf, ferr = p.replayLocked(&h, buf, end)
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("%w: rebuilding producer state: %v", ErrStorage, err)
	}
	return nil
}

// replayLocked folds one batch header met at Open into the producer and transaction state,
// as its append did. Markers' bodies are read (with buf) for their type and coordinator epoch.
func (p *Partition) replayLocked(h *record.Header, buf []byte, end int64) ([]byte, error) {
	if h.ProducerID < 0 || h.IsControl() && !h.IsTransactional() {
		return buf, nil
	}
	if h.IsControl() {
		s, err := p.log.Read(h.BaseOffset, end, h.Size(), true)
		if err != nil {
			return buf, fmt.Errorf("reading marker at %d: %w", h.BaseOffset, err)
		}
		if buf, err = s.ReadInto(buf[:0]); err != nil {
			return buf, fmt.Errorf("reading marker at %d: %w", h.BaseOffset, err)
		}
		return buf, p.foldLocked(h, buf[:min(len(buf), h.Size())])
	}
	return buf, p.foldLocked(h, nil)
}

// foldLocked folds one stored batch into the producer and transaction state, as its append
// did: recovery and a follower's AppendAsFollower share it. batch is the whole batch for a
// transaction marker (its body says commit or abort), unused otherwise.
func (p *Partition) foldLocked(h *record.Header, batch []byte) error {
	if h.ProducerID < 0 || h.IsControl() && !h.IsTransactional() {
		return nil
	}
	if h.IsControl() {
		commit, coordEpoch, err := markerType(batch)
		if err != nil {
			return fmt.Errorf("marker at %d: %w", h.BaseOffset, err)
		}
		p.closeTxnLocked(h.ProducerID, h.ProducerEpoch, commit, coordEpoch, h.BaseOffset, h.MaxTimestamp)
		return nil
	}
	pe := p.mu.producers[h.ProducerID]
	if pe == nil {
		pe = newProducerEntry(h.ProducerEpoch)
		p.mu.producers[h.ProducerID] = pe
	}
	ts := int64(-1)
	if h.TimestampType() == record.LogAppendTime {
		ts = h.MaxTimestamp
	}
	pe.record(h, batchMeta{firstSeq: h.BaseSequence, lastSeq: h.BaseSequence + h.LastOffsetDelta,
		baseOffset: h.BaseOffset, lastOffset: h.LastOffset(), timestamp: ts}, h.MaxTimestamp)
	if h.IsTransactional() {
		p.openTxnLocked(h.ProducerID, h.BaseOffset)
	}
	return nil
}
