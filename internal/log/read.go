package log

import (
	"fmt"
	"sort"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// segView is what a reader copies from a segment under Log.mu.RLock before
// reading its file without the lock.
type segView struct {
	f        vfs.File
	base     int64
	size     int64
	idx      []offsetEntry
	tidx     []timeEntry
	maxTs    int64
	maxTsOff int64
	// nextBase is the following segment's base offset, or the segment's end
	// offset for the active segment.
	nextBase int64
}

// viewLocked copies segment i.
func (l *Log) viewLocked(i int) segView {
	s := l.mu.segs[i]
	v := segView{f: s.log, base: s.base, size: s.size, idx: s.idx, tidx: s.tidx,
		maxTs: s.maxTs, maxTsOff: s.maxTsOff, nextBase: s.next}
	if i+1 < len(l.mu.segs) {
		v.nextBase = l.mu.segs[i+1].base
	}
	return v
}

// Read returns whole batches starting with the one holding offset, from one
// segment, stopping before any batch whose base offset is >= maxOffset and
// totalling at most maxBytes, except that with minOne a first batch larger
// than maxBytes is returned whole. offset below StartOffset or above
// EndOffset is ErrOffsetOutOfRange; offset == EndOffset or >= maxOffset gives
// an empty Slice with NextOffset = offset, as does a first batch over
// maxBytes without minOne.
func (l *Log) Read(offset, maxOffset int64, maxBytes int, minOne bool) (Slice, error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return Slice{}, ErrClosed
	}
	if offset < l.mu.start || offset > l.mu.end {
		start, end := l.mu.start, l.mu.end
		l.mu.RUnlock()
		return Slice{}, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
	}
	if offset == l.mu.end || offset >= maxOffset {
		l.mu.RUnlock()
		return Slice{NextOffset: offset}, nil
	}
	segs := l.mu.segs
	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > offset }) - 1
	if i < 0 {
		l.mu.RUnlock()
		return Slice{}, fmt.Errorf("%w: %d below the first segment", ErrOffsetOutOfRange, offset)
	}
	v := l.viewLocked(i)
	l.mu.RUnlock()
	return v.read(offset, maxOffset, int64(max(maxBytes, 0)), minOne)
}

func (v *segView) read(offset, maxOffset, maxBytes int64, minOne bool) (Slice, error) {
	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	r := newHeaderReader(v.f, v.size, *bp)

	// Find the batch holding offset.
	start := lookupPos(v.base, v.idx, offset)
	var first int64
	for {
		if start >= v.size {
			// Not in this segment (a gap left by compaction): go on with
			// the next one.
			return Slice{File: v.f, Pos: start, NextOffset: max(v.nextBase, offset)}, nil
		}
		h, err := r.header(start)
		if err != nil {
			return Slice{}, readError(err)
		}
		if h.LastOffset() >= offset {
			first = int64(h.Size())
			break
		}
		start += int64(h.Size())
	}
	limit := start + maxBytes
	if first > maxBytes {
		if !minOne {
			return Slice{File: v.f, Pos: start, NextOffset: offset}, nil
		}
		limit = start + first
	}
	end := start + first

	// Skip to the last indexed batch that certainly fits: every batch before
	// it lies within limit and starts below maxOffset.
	j := sort.Search(len(v.idx), func(j int) bool { return int64(v.idx[j].pos) > limit })
	k := sort.Search(len(v.idx), func(k int) bool { return v.base+int64(v.idx[k].off) >= maxOffset })
	if j = min(j, k) - 1; j >= 0 && int64(v.idx[j].pos) > end {
		end = int64(v.idx[j].pos)
	}

	var next int64
	for {
		if end >= v.size {
			next = v.nextBase
			break
		}
		h, err := r.header(end)
		if err != nil {
			return Slice{}, readError(err)
		}
		if h.BaseOffset >= maxOffset || end+int64(h.Size()) > limit {
			next = h.BaseOffset
			break
		}
		end += int64(h.Size())
	}
	return Slice{File: v.f, Pos: start, Size: int(end - start), NextOffset: next}, nil
}

// OffsetForTimestamp finds the first record whose timestamp is >= ts and
// returns its offset and timestamp; ok is false if there is none. The time
// index narrows the search to a segment and a position, batch headers
// (MaxTimestamp) to a batch, and the batch's records to the record. Every
// record of a LogAppendTime batch has the batch's MaxTimestamp.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool, err error) {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return -1, -1, false, ErrClosed
	}
	var views []segView
	for i, s := range l.mu.segs {
		if s.maxTs >= ts || len(views) > 0 {
			views = append(views, l.viewLocked(i))
		}
	}
	start := l.mu.start
	l.mu.RUnlock()

	bp := readPool.Get().(*[]byte)
	defer readPool.Put(bp)
	for i := range views {
		off, t, ok, err := views[i].offsetForTimestamp(ts, start, *bp)
		if err != nil || ok {
			return off, t, ok, err
		}
	}
	return -1, -1, false, nil
}

func (v *segView) offsetForTimestamp(ts, start int64, window []byte) (int64, int64, bool, error) {
	var pos int64
	// The last time entry below ts: every batch before its offset has
	// smaller timestamps still.
	if j := sort.Search(len(v.tidx), func(j int) bool { return v.tidx[j].ts >= ts }); j > 0 {
		pos = lookupPos(v.base, v.idx, v.base+int64(v.tidx[j-1].off))
	}
	r := newHeaderReader(v.f, v.size, window)
	for pos < v.size {
		h, err := r.header(pos)
		if err != nil {
			return -1, -1, false, readError(err)
		}
		if h.MaxTimestamp >= ts {
			b, err := r.batch(pos, h.Size())
			if err != nil {
				return -1, -1, false, readError(err)
			}
			recs, err := record.Records(b, 0)
			if err != nil {
				return -1, -1, false, fmt.Errorf("%w: batch at offset %d: %w", ErrCorrupt, h.BaseOffset, err)
			}
			for _, rec := range recs {
				t := h.FirstTimestamp + rec.TimestampDelta
				if h.TimestampType() == record.LogAppendTime {
					t = h.MaxTimestamp
				}
				// Records below the start offset (DeleteRecords) are gone.
				if off := h.BaseOffset + int64(rec.OffsetDelta); t >= ts && off >= start {
					return off, t, true, nil
				}
			}
		}
		pos += int64(h.Size())
	}
	return -1, -1, false, nil
}

// MaxTimestamp returns the largest timestamp in the log and the offset of
// the first record carrying it, or (-1, -1) if the log has no timestamps.
func (l *Log) MaxTimestamp() (ts, offset int64) {
	l.mu.RLock()
	ts, offset = -1, -1
	for _, s := range l.mu.segs {
		if s.maxTs > ts {
			ts, offset = s.maxTs, s.maxTsOff
		}
	}
	l.mu.RUnlock()
	if ts < 0 {
		return -1, -1
	}
	// The batch is known; find the record. On a read error the batch's base
	// offset is the best answer left.
	if off, t, ok, err := l.OffsetForTimestamp(ts); err == nil && ok && t == ts {
		offset = off
	}
	return ts, offset
}

// TailStart is where a caller rebuilding state from recent batch headers
// (e.g. idempotent producers' sequences) starts: the base offset of the
// segment before the active one, so that at least one whole segment of
// history is covered, or the log start if there is one segment.
func (l *Log) TailStart() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if n := len(l.mu.segs); n >= 2 {
		return max(l.mu.segs[n-2].base, l.mu.start)
	}
	return l.mu.start
}

// ScanHeaders calls fn, in offset order, with the header of every batch
// whose last offset is >= from, up to the end offset at the time of the
// call. It reads headers only (a windowed pread per few batches). fn must
// not call back into the log's writing methods.
func (l *Log) ScanHeaders(from int64, fn func(record.Header)) error {
	l.mu.RLock()
	if l.mu.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	var views []segView
	for i, s := range l.mu.segs {
		if s.next > from {
			views = append(views, l.viewLocked(i))
		}
	}
	l.mu.RUnlock()

	window := make([]byte, 0, recoverWindow)
	for i := range views {
		v := &views[i]
		r := newHeaderReader(v.f, v.size, window)
		for pos := lookupPos(v.base, v.idx, from); pos < v.size; {
			h, err := r.header(pos)
			if err != nil {
				return readError(err)
			}
			if h.LastOffset() >= from {
				fn(h)
			}
			pos += int64(h.Size())
		}
	}
	return nil
}
