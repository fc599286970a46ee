package log

// Compaction (cleanup.policy=compact).
//
// The log has a clean head and a dirty tail, as in Kafka: offsets below
// cleaner.firstDirty were cleaned by an earlier pass, the rest were not. A
// pass covers the cleanable sealed segments: those wholly below the policy's
// Limit (the high watermark or last stable offset) whose newest record is
// older than min.compaction.lag.ms. It
//
//  1. scans the batch headers of the whole log for each producer's last batch
//     and the outcome (commit, abort, open) of every transaction;
//  2. builds the offset map key → latest offset over the dirty cleanable
//     segments (records of aborted or open transactions and control batches
//     excluded), bounded by CompactionPolicy.MaxKeys;
//  3. rewrites the cleanable segments in groups (consecutive segments whose
//     sizes add up to at most segment.bytes become one), keeping a record
//     only if no later offset holds its key, and dropping tombstones and
//     transaction markers whose delete horizon passed.
//
// Offsets never change: a batch that loses records is re-encoded with its
// codec, its base offset and last offset delta (record.Build), so offsets
// have gaps and NextOffset arithmetic still holds. A batch that keeps every
// record is copied byte for byte. The last batch of each group is always kept
// (empty if need be) so that a cleaned segment ends where the segments it
// replaces ended: segments keep tiling the offsets and recovery's checks of
// segment boundaries still hold. The last batch of each producer is kept
// (empty if need be) so that idempotence survives.
//
// Delete horizon (KIP-534): a retained batch holding a tombstone, or a
// marker whose transaction has no data left, gets the delete-horizon
// attribute with FirstTimestamp = now + delete.retention.ms (record
// timestamp deltas are shifted so every record keeps its timestamp). A later
// pass after the horizon drops those tombstones and markers.
//
// Crash safety: a group is written to <base>.log.cleaned (+ .index.cleaned,
// .timeindex.cleaned) and synced; renaming the log file to <base>.log.swap
// (directory synced) commits the group. Then the replaced segments' files
// are renamed *.deleted (directory synced) and the new files take their
// final names (directory synced). Recovery deletes every *.cleaned file and
// completes every *.swap: the segment files whose base lies in the swap's
// offset range go, the swap becomes <base>.log and its indexes are rebuilt.
// A crash therefore leaves either the old segments or the new one, never a
// mix. Readers holding a Slice of a replaced segment keep reading it for
// file.delete.delay.ms, as with retention.

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
	// attrDeleteHorizon is the batch attribute bit saying that
	// FirstTimestamp holds the batch's delete horizon (KIP-534).
	attrDeleteHorizon int16 = 1 << 6
	// DefaultCompactionMaxKeys bounds the offset map of one pass.
	DefaultCompactionMaxKeys = 4 << 20
	// cleanFlushBytes is how much cleaned output is buffered per write.
	cleanFlushBytes = 1 << 20
)

// CompactionPolicy is a compacted topic's configuration for one pass.
type CompactionPolicy struct {
	// Limit is the first offset that may not be cleaned (the smaller of the
	// high watermark and the last stable offset): only segments wholly below
	// it are cleaned.
	Limit int64
	// DeleteRetentionMs is delete.retention.ms: how long tombstones and
	// transaction markers with no data left stay after their first clean.
	DeleteRetentionMs int64
	// MinCompactionLagMs is min.compaction.lag.ms: a segment whose newest
	// record is younger is not cleaned.
	MinCompactionLagMs int64
	// MaxCompactionLagMs is max.compaction.lag.ms: dirty data older than
	// this is cleaned whatever the dirty ratio. Zero or negative disables it.
	MaxCompactionLagMs int64
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: a pass runs once
	// dirty bytes / cleanable bytes reaches it.
	MinCleanableDirtyRatio float64
	// MaxKeys bounds the offset map (zero selects
	// DefaultCompactionMaxKeys); a larger dirty section is cleaned over
	// several passes.
	MaxKeys int
	// Throttle, if not nil, bounds the bytes the pass reads and writes per
	// second (log.cleaner.io.max.bytes.per.second).
	Throttle *Throttle
}

// CompactionResult reports what one Compact call did.
type CompactionResult struct {
	// Cleaned is set when a pass ran.
	Cleaned bool
	// Segments is the number of segments replaced by cleaned ones.
	Segments int
	// BytesRead is the size of the segments the pass went through;
	// BytesWritten the size of the cleaned segments that replaced some.
	BytesRead, BytesWritten int64
	// RecordsRemoved counts the records (and markers) dropped.
	RecordsRemoved int64
	// Removed is the number of replaced segments whose files were removed
	// from disk (this or earlier passes', once file.delete.delay.ms passed).
	Removed int
}

// cleanerState is the cleaner's memory of past passes, under
// cleanerState.mu, which serialises Compact. Lock order: cleanerState.mu
// before Log.appendMu.
type cleanerState struct {
	mu struct {
		sync.Mutex
		// nextHorizon is the earliest delete horizon (ms) of a batch kept
		// by the last pass, math.MaxInt64 if none; 0 before the first pass,
		// which is due anyway: after Open the whole log counts as dirty.
		nextHorizon int64
	}
}

// Compact runs one compaction pass if the policy says one is due (see the
// comment at the top of compact.go). It reads and writes segment files
// without holding up appends, and takes the append lock only to swap cleaned
// segments in. May be called from any goroutine; calls are serialised. An
// error before a group is committed leaves the log unchanged and usable; one
// after fails the log (recovery completes the swap at the next Open).
func (l *Log) Compact(p CompactionPolicy) (CompactionResult, error) {
	var res CompactionResult
	l.cleaner.mu.Lock()
	defer l.cleaner.mu.Unlock()

	l.appendMu.Lock()
	opts := l.opts
	maxIdx, maxTidx := l.maxIdx, l.maxTidx
	firstDirty := l.firstDirty
	l.mu.RLock()
	err := l.usableLocked()
	segs := slices.Clone(l.mu.segs)
	sizes := make([]int64, len(segs))
	for i, s := range segs {
		sizes[i] = s.size
	}
	l.mu.RUnlock()
	l.appendMu.Unlock()
	if err != nil {
		return res, err
	}
	now := opts.Now().UnixMilli()

	// The cleanable segments: sealed, below the limit, old enough.
	n := 0
	for n < len(segs)-1 {
		s := segs[n]
		if segs[n+1].base > p.Limit {
			break
		}
		if p.MinCompactionLagMs > 0 && s.maxTs > now-p.MinCompactionLagMs {
			break
		}
		n++
	}
	if n == 0 {
		return res, nil
	}
	d := 0
	for d < n && segs[d].base < firstDirty {
		d++
	}
	var dirtyBytes, totalBytes int64
	for i := range n {
		totalBytes += sizes[i]
		if i >= d {
			dirtyBytes += sizes[i]
		}
	}
	due := l.cleaner.mu.nextHorizon > 0 && l.cleaner.mu.nextHorizon <= now
	if dirtyBytes > 0 {
		ratio := float64(dirtyBytes) / float64(totalBytes)
		due = due || ratio >= p.MinCleanableDirtyRatio
		if !due && p.MaxCompactionLagMs > 0 {
			if ts, ok := firstTimestamp(segs[d], sizes[d]); ok && ts <= now-p.MaxCompactionLagMs {
				due = true
			}
		}
	}
	if !due {
		return res, nil
	}

	c := &cleaner{l: l, opts: opts, maxIdx: maxIdx, maxTidx: maxTidx, now: now, p: p,
		window: make([]byte, 0, recoverWindow), nextHorizon: math.MaxInt64,
		retainedTxn: map[txnKey]bool{}}
	if err := c.scanProducers(segs, sizes); err != nil {
		return res, err
	}
	maxKeys := p.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultCompactionMaxKeys
	}
	c.keys = make(map[string]int64)
	for i := d; i < n; i++ {
		if err := c.mapSegment(segs[i], sizes[i]); err != nil {
			return res, err
		}
		if len(c.keys) >= maxKeys && i+1 < n {
			n = i + 1
			break
		}
	}
	res.Cleaned = true

	for i := 0; i < n; {
		j := i + 1
		total := sizes[i]
		for j < n && total+sizes[j] <= opts.SegmentBytes && segs[j].next-1-segs[i].base <= math.MaxInt32 {
			total += sizes[j]
			j++
		}
		g, err := c.cleanGroup(segs[i:j], sizes[i:j])
		res.BytesRead += total
		res.RecordsRemoved += g.removed
		if err != nil {
			c.discard(segs[i].base)
			return res, err
		}
		if g.changed || j-i > 1 {
			ok, err := l.swapIn(segs[i:j], sizes[i:j], g.seg)
			if err != nil {
				return res, err
			}
			if !ok {
				// The log changed under the pass (Truncate, retention):
				// what remains is cleaned by a later pass.
				c.discard(segs[i].base)
				l.cleaner.mu.nextHorizon = now
				return res, nil
			}
			res.Segments += j - i
			res.BytesWritten += g.seg.size
		} else {
			c.discard(segs[i].base)
		}
		i = j
	}
	l.cleaner.mu.nextHorizon = c.nextHorizon

	l.appendMu.Lock()
	if l.firstDirty == firstDirty {
		l.firstDirty = segs[n].base
	} else {
		// A Truncate moved the mark meanwhile.
		l.firstDirty = min(l.firstDirty, segs[n].base)
	}
	reap := l.takeDueLocked()
	l.appendMu.Unlock()
	res.Removed = len(reap)
	return res, l.removePending(reap)
}

// noteTruncatedLocked keeps the cleaner's dirty mark at or below a new end
// offset: offsets appended again after a Truncate are dirty. Called with
// appendMu held.
func (l *Log) noteTruncatedLocked(end int64) {
	l.firstDirty = min(l.firstDirty, end)
}

// firstTimestamp is the timestamp of the first batch of s.
func firstTimestamp(s *segment, size int64) (int64, bool) {
	if size < record.HeaderSize {
		return 0, false
	}
	b := make([]byte, record.HeaderSize)
	if n, _ := s.log.ReadAt(b, 0); n < len(b) {
		return 0, false
	}
	h, _ := record.ParseHeader(b)
	ts := h.FirstTimestamp
	if h.TimestampType() == record.LogAppendTime || h.Attributes&attrDeleteHorizon != 0 {
		ts = h.MaxTimestamp
	}
	return ts, true
}

// txnKey names one transaction: its producer and the offset of its first
// batch.
type txnKey struct{ pid, first int64 }

// txnRange is one transaction closed by a marker.
type txnRange struct {
	first, marker int64
	aborted       bool
}

// cleaner is the state of one pass. Used by one goroutine.
type cleaner struct {
	l              *Log
	opts           Options
	maxIdx         int
	maxTidx        int
	now            int64
	p              CompactionPolicy
	window         []byte
	keys           map[string]int64
	lastBatch      map[int64]int64      // producer → base offset of its last batch
	txns           map[int64][]txnRange // producer → closed transactions, by offset
	retainedTxn    map[txnKey]bool      // transactions with a batch kept by this pass
	nextHorizon    int64
	out            []byte
	scratch        []record.Record
	createdCleaned bool
}

// eachBatch calls fn with every batch of s (whole bytes, valid until the
// next call) and its position.
func (c *cleaner) eachBatch(s *segment, size int64, withBody func(h *record.Header) bool, fn func(h *record.Header, b []byte, pos int64) error) error {
	r := newHeaderReader(s.log, size, c.window)
	for pos := int64(0); pos < size; {
		h, err := r.header(pos)
		if err != nil {
			return readError(err)
		}
		var b []byte
		if withBody(&h) {
			if b, err = r.batch(pos, h.Size()); err != nil {
				return readError(err)
			}
		}
		if err := fn(&h, b, pos); err != nil {
			return err
		}
		pos += int64(h.Size())
		if b != nil {
			c.p.Throttle.Wait(h.Size())
		}
	}
	c.window = r.buf[:0]
	return nil
}

// scanProducers finds every producer's last batch and the outcome of every
// transaction, over the whole log.
func (c *cleaner) scanProducers(segs []*segment, sizes []int64) error {
	c.lastBatch = map[int64]int64{}
	c.txns = map[int64][]txnRange{}
	open := map[int64]int64{}
	isMarker := func(h *record.Header) bool { return h.IsControl() }
	for i, s := range segs {
		err := c.eachBatch(s, sizes[i], isMarker, func(h *record.Header, b []byte, _ int64) error {
			if h.ProducerID < 0 {
				return nil
			}
			c.lastBatch[h.ProducerID] = h.BaseOffset
			if !h.IsTransactional() {
				return nil
			}
			if !h.IsControl() {
				if _, ok := open[h.ProducerID]; !ok {
					open[h.ProducerID] = h.BaseOffset
				}
				return nil
			}
			abort, err := markerIsAbort(b)
			if err != nil {
				return fmt.Errorf("%w: marker at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
			}
			first, ok := open[h.ProducerID]
			if !ok {
				first = h.BaseOffset // a marker with no data here
			}
			delete(open, h.ProducerID)
			c.txns[h.ProducerID] = append(c.txns[h.ProducerID], txnRange{first: first, marker: h.BaseOffset, aborted: abort})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// markerIsAbort reads the type of a transaction marker batch.
func markerIsAbort(b []byte) (bool, error) {
	recs, err := record.Records(b, 0)
	if err != nil {
		return false, err
	}
	if len(recs) != 1 || len(recs[0].Key) < 4 {
		return false, fmt.Errorf("not a transaction marker")
	}
	return binary.BigEndian.Uint16(recs[0].Key[2:]) == 0, nil
}

// txnOf returns the closed transaction of producer pid holding offset off.
func (c *cleaner) txnOf(pid, off int64) (txnRange, bool) {
	ts := c.txns[pid]
	i, _ := slices.BinarySearchFunc(ts, off, func(t txnRange, off int64) int {
		switch {
		case t.marker < off:
			return -1
		case t.first > off:
			return 1
		}
		return 0
	})
	if i < len(ts) && ts[i].first <= off && off <= ts[i].marker {
		return ts[i], true
	}
	return txnRange{}, false
}

// dataFate says what happens to the records of a data batch as a whole.
type dataFate int

const (
	fateFilter dataFate = iota // keep the records that win by key
	fateDrop                   // an aborted transaction: drop every record
	fateKeep                   // an open transaction: keep the batch as is
)

func (c *cleaner) fate(h *record.Header) dataFate {
	if !h.IsTransactional() || h.ProducerID < 0 {
		return fateFilter
	}
	t, ok := c.txnOf(h.ProducerID, h.BaseOffset)
	switch {
	case !ok:
		return fateKeep
	case t.aborted:
		return fateDrop
	}
	return fateFilter
}

// mapSegment adds the keys of s to the offset map.
func (c *cleaner) mapSegment(s *segment, size int64) error {
	all := func(h *record.Header) bool { return !h.IsControl() && c.fate(h) == fateFilter }
	return c.eachBatch(s, size, all, func(h *record.Header, b []byte, _ int64) error {
		if b == nil {
			return nil
		}
		recs, err := record.Records(b, 0)
		if err != nil {
			return fmt.Errorf("%w: batch at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
		}
		for i := range recs {
			if recs[i].Key != nil {
				c.keys[string(recs[i].Key)] = h.BaseOffset + int64(recs[i].OffsetDelta)
			}
		}
		return nil
	})
}

// groupResult is one cleaned group.
type groupResult struct {
	seg     *segment
	changed bool
	removed int64
}

func (c *cleaner) cleanedName(base int64, suffix string) string {
	return filepath.Join(c.l.dir, segmentName(base, suffix)+cleanedSuffix)
}

// discard removes the cleaned files of the group at base, if any.
func (c *cleaner) discard(base int64) {
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		_ = c.l.fs.Remove(c.cleanedName(base, suf))
	}
}

// cleanGroup writes the cleaned form of segs to <base>.*.cleaned files, synced,
// and returns the new segment (files open, not yet renamed).
func (c *cleaner) cleanGroup(segs []*segment, sizes []int64) (g groupResult, err error) {
	base := segs[0].base
	ns := newSegmentState(base, segs[len(segs)-1].created)
	fs := c.l.fs
	if ns.log, err = fs.Create(c.cleanedName(base, logSuffix)); err != nil {
		return g, storageError("create cleaned segment", err)
	}
	defer func() {
		if err != nil {
			ns.closeFiles()
		}
	}()
	if ns.index, err = fs.Create(c.cleanedName(base, indexSuffix)); err != nil {
		return g, storageError("create cleaned segment", err)
	}
	if ns.tindex, err = fs.Create(c.cleanedName(base, timeIndexSuffix)); err != nil {
		return g, storageError("create cleaned segment", err)
	}
	g.seg = ns
	ix := ns.indexer(int64(c.opts.IndexIntervalBytes), c.maxIdx, c.maxTidx)
	c.out = c.out[:0]
	var written int64
	flush := func() error {
		if len(c.out) == 0 {
			return nil
		}
		if _, err := ns.log.WriteAt(c.out, written); err != nil {
			return storageError("write cleaned segment", err)
		}
		written += int64(len(c.out))
		c.p.Throttle.Wait(len(c.out))
		c.out = c.out[:0]
		return nil
	}
	everything := func(*record.Header) bool { return true }
	for k, s := range segs {
		lastSeg := k == len(segs)-1
		err := c.eachBatch(s, sizes[k], everything, func(h *record.Header, b []byte, pos int64) error {
			last := lastSeg && pos+int64(h.Size()) == sizes[k]
			before := len(c.out)
			removed, changed, err := c.cleanBatch(h, b, last)
			if err != nil {
				return err
			}
			g.removed += removed
			g.changed = g.changed || changed
			if len(c.out) > before {
				oh, _ := record.ParseHeader(c.out[before:])
				ix.add(&oh, written+int64(before))
				ns.next = oh.LastOffset() + 1
			}
			if len(c.out) >= cleanFlushBytes {
				return flush()
			}
			return nil
		})
		if err != nil {
			return g, err
		}
	}
	if err := flush(); err != nil {
		return g, err
	}
	ix.maxTidx++
	ix.maybeTimeEntry()
	ns.size = written
	ns.idx, ns.tidx = ix.newIdx, ix.newTidx
	ns.sinceIndex, ns.maxTs, ns.maxTsOff = ix.sinceIndex, ix.maxTs, ix.maxTsOff
	if err := c.l.rewriteIndexes(ns); err != nil {
		return g, err
	}
	if !g.changed && len(segs) == 1 {
		ns.closeFiles()
		return g, nil
	}
	for _, f := range []vfs.File{ns.log, ns.index, ns.tindex} {
		if err := f.Sync(); err != nil {
			return g, storageError("sync cleaned segment", err)
		}
	}
	return g, nil
}

// cleanBatch appends the cleaned form of the batch b (if anything of it
// stays) to c.out. last marks the last batch of a group, which always stays.
func (c *cleaner) cleanBatch(h *record.Header, b []byte, last bool) (removed int64, changed bool, err error) {
	keepEmpty := last || (h.ProducerID >= 0 && c.lastBatch[h.ProducerID] == h.BaseOffset)
	hasHorizon := h.Attributes&attrDeleteHorizon != 0
	horizonPassed := hasHorizon && h.FirstTimestamp <= c.now
	if h.IsControl() {
		t, ok := c.txnOf(h.ProducerID, h.BaseOffset)
		discardable := !ok || !c.retainedTxn[txnKey{h.ProducerID, t.first}]
		switch {
		case discardable && horizonPassed && !keepEmpty:
			return int64(h.NumRecords), true, nil
		case discardable && !hasHorizon:
			return c.rebuild(h, b, nil, true)
		}
		c.keepHorizon(h)
		c.out = append(c.out, b...)
		return 0, false, nil
	}

	fate := c.fate(h)
	if fate == fateKeep {
		c.out = append(c.out, b...)
		c.markRetained(h)
		return 0, false, nil
	}
	var recs []record.Record
	if fate == fateFilter {
		if recs, err = record.Records(b, 0); err != nil {
			return 0, false, fmt.Errorf("%w: batch at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
		}
	}
	kept := c.scratch[:0]
	tombstones := false
	for _, r := range recs {
		off := h.BaseOffset + int64(r.OffsetDelta)
		if r.Key == nil {
			continue
		}
		if latest, ok := c.keys[string(r.Key)]; ok && latest > off {
			continue
		}
		if r.Value == nil {
			if horizonPassed {
				continue
			}
			tombstones = true
		}
		kept = append(kept, r)
	}
	c.scratch = kept[:0]
	removed = int64(h.NumRecords) - int64(len(kept))
	if len(kept) == 0 && !keepEmpty {
		return removed, true, nil
	}
	c.markRetained(h)
	if removed == 0 && (!tombstones || hasHorizon) {
		if hasHorizon {
			c.keepHorizon(h)
		}
		c.out = append(c.out, b...)
		return 0, false, nil
	}
	_, _, err = c.rebuild(h, b, kept, tombstones && !hasHorizon)
	return removed, true, err
}

// markRetained notes that a batch of a transaction stays, so its marker
// must stay too.
func (c *cleaner) markRetained(h *record.Header) {
	if h.IsTransactional() && h.ProducerID >= 0 {
		if t, ok := c.txnOf(h.ProducerID, h.BaseOffset); ok {
			c.retainedTxn[txnKey{h.ProducerID, t.first}] = true
		}
	}
}

// keepHorizon accounts for a kept batch whose delete horizon is set.
func (c *cleaner) keepHorizon(h *record.Header) {
	// A horizon already passed is not waited for: its batch stays for
	// another reason (a marker whose transaction still has data).
	if h.Attributes&attrDeleteHorizon != 0 && h.FirstTimestamp > c.now {
		c.nextHorizon = min(c.nextHorizon, h.FirstTimestamp)
	}
}

// rebuild appends batch h re-encoded with recs (all of b's records if recs
// is nil and b is a control batch), setting the delete horizon if
// setHorizon.
func (c *cleaner) rebuild(h *record.Header, b []byte, recs []record.Record, setHorizon bool) (int64, bool, error) {
	if recs == nil && h.IsControl() {
		var err error
		if recs, err = record.Records(b, 0); err != nil {
			return 0, false, fmt.Errorf("%w: batch at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
		}
	}
	nh := *h
	if setHorizon {
		horizon := c.now + max(c.p.DeleteRetentionMs, 0)
		shift := horizon - h.FirstTimestamp
		for i := range recs {
			recs[i].TimestampDelta -= shift
		}
		nh.FirstTimestamp = horizon
		nh.Attributes |= attrDeleteHorizon
		// Waited for even when it is now (delete.retention.ms=0): the
		// next pass drops what it covers.
		c.nextHorizon = min(c.nextHorizon, horizon)
	} else {
		c.keepHorizon(&nh)
	}
	if len(recs) == 0 {
		// An emptied batch (kept for its offsets and its producer) carries no records, so it
		// is written uncompressed, as Kafka writes empty batches: a codec's framing around
		// nothing is refused by some clients (franz-go's snappy reader), which then never
		// advance past it.
		nh.Attributes &^= 7
	}
	before := len(c.out)
	out, err := record.Build(c.out, nh, recs)
	if err != nil {
		return 0, false, fmt.Errorf("%w: re-encoding batch at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
	}
	if oh, _ := record.ParseHeader(out[before:]); oh.LastOffset() != h.LastOffset() {
		return 0, false, fmt.Errorf("%w: re-encoded batch at offset %d changed its offsets", ErrCorrupt, h.BaseOffset)
	}
	c.out = out
	return 0, true, nil
}

// swapIn replaces old (still the segments of the log, with the sizes they
// had when the pass began) by the cleaned segment ns. It reports false, and
// changes nothing, if the log changed meanwhile.
func (l *Log) swapIn(old []*segment, sizes []int64, ns *segment) (bool, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	err := l.usableLocked()
	i := slices.Index(l.mu.segs, old[0])
	ok := i >= 0 && i+len(old) < len(l.mu.segs)
	for k := 0; ok && k < len(old); k++ {
		ok = l.mu.segs[i+k] == old[k] && old[k].size == sizes[k]
	}
	l.mu.RUnlock()
	if err != nil || !ok {
		ns.closeFiles()
		return false, err
	}

	base := ns.base
	name := func(b int64, suf string) string { return filepath.Join(l.dir, segmentName(b, suf)) }
	steps := func() error {
		if err := l.fs.Rename(name(base, logSuffix)+cleanedSuffix, name(base, logSuffix)+swapSuffix); err != nil {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
		for _, s := range old {
			for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				if err := l.fs.Rename(name(s.base, suf), name(s.base, suf)+deletedSuffix); err != nil {
					return err
				}
			}
		}
		// The old files must be gone for good before the new one takes
		// their place, or a crash could leave both.
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if err := l.fs.Rename(name(base, suf)+cleanedSuffix, name(base, suf)); err != nil {
				return err
			}
		}
		if err := l.fs.Rename(name(base, logSuffix)+swapSuffix, name(base, logSuffix)); err != nil {
			return err
		}
		return l.fs.SyncDir(l.dir)
	}
	if err := steps(); err != nil {
		ns.closeFiles()
		return false, l.fail(storageError("swap cleaned segment", err))
	}
	ns.logName = name(base, logSuffix)

	due := l.opts.Now().Add(l.opts.FileDeleteDelay)
	l.mu.Lock()
	segs := make([]*segment, 0, len(l.mu.segs)-len(old)+1)
	segs = append(segs, l.mu.segs[:i]...)
	segs = append(segs, ns)
	segs = append(segs, l.mu.segs[i+len(old):]...)
	l.mu.segs = segs
	l.mu.Unlock()
	for _, s := range old {
		l.pending = append(l.pending, pendingDelete{s: s, due: due})
	}
	l.logger.Info("compacted segments", "base", base, "segments", len(old), "size", ns.size)
	return true, nil
}

// completeCleaning repairs what a crash left of a compaction pass, before
// the segments are loaded: *.cleaned files go; each <base>.log.swap replaces
// the segments whose base lies in its offset range.
func (l *Log) completeCleaning() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return storageError("list", err)
	}
	var swaps []int64
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, cleanedSuffix):
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return storageError("remove", err)
			}
			l.mu.dirUnsynced = true
		case strings.HasSuffix(name, logSuffix+swapSuffix):
			if base, suf, ok := parseSegmentName(strings.TrimSuffix(name, swapSuffix)); ok && suf == logSuffix {
				swaps = append(swaps, base)
			}
		}
	}
	if len(swaps) == 0 {
		return nil
	}
	for _, base := range swaps {
		swap := filepath.Join(l.dir, segmentName(base, logSuffix)+swapSuffix)
		next, err := l.swapEnd(swap, base)
		if err != nil {
			return err
		}
		for _, name := range names {
			b, _, ok := parseSegmentName(name)
			if !ok || b < base || b >= next {
				continue
			}
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !os.IsNotExist(err) {
				return storageError("remove replaced segment", err)
			}
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return storageError("sync dir", err)
		}
		if err := l.fs.Rename(swap, filepath.Join(l.dir, segmentName(base, logSuffix))); err != nil {
			return storageError("complete segment swap", err)
		}
		l.logger.Info("completed an interrupted compaction swap", "base", base, "end", next)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return storageError("sync dir", err)
	}
	return nil
}

// swapEnd returns the offset after the last batch of the swap file at name.
// The file was synced before it got its name, so it is whole.
func (l *Log) swapEnd(name string, base int64) (int64, error) {
	f, err := l.fs.Open(name)
	if err != nil {
		return 0, storageError("open swap", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, storageError("stat swap", err)
	}
	r := newHeaderReader(f, fi.Size(), make([]byte, 0, recoverWindow))
	next := base
	for pos := int64(0); pos < fi.Size(); {
		h, err := scanBatch(r, base, pos, next)
		if err != nil {
			if isDataError(err) {
				return 0, fmt.Errorf("%w: swap file %s: %w", ErrCorrupt, name, err)
			}
			return 0, storageError("read swap", err)
		}
		next = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	return next, nil
}
