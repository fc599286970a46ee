package log

import (
	"fmt"
	"slices"
	"sort"
)

// Truncate removes every batch at and after endOffset, so that EndOffset
// becomes endOffset; if endOffset falls inside a batch, that whole batch goes
// and EndOffset becomes its base offset. An endOffset at or past EndOffset
// does nothing; one below StartOffset empties the log, which then starts at
// endOffset. The change is synced before Truncate returns, so a crash cannot
// bring the removed batches back.
func (l *Log) Truncate(endOffset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()

	l.mu.RLock()
	err := l.usableLocked()
	start, end := l.mu.start, l.mu.end
	segs := slices.Clone(l.mu.segs)
	l.mu.RUnlock()
	switch {
	case err != nil:
		return err
	case endOffset >= end:
		return nil
	case endOffset < 0:
		return fmt.Errorf("%w: truncate to %d", ErrOffsetOutOfRange, endOffset)
	case endOffset < start:
		return l.truncateFullyLocked(segs, endOffset)
	}

	i := sort.Search(len(segs), func(i int) bool { return segs[i].base > endOffset }) - 1
	s := segs[i]
	cut, newEnd, err := findCut(s, endOffset)
	if err != nil {
		return err
	}
	removed := segs[i+1:]

	// Keep the index entries of whole batches below the cut.
	k := sort.Search(len(s.idx), func(k int) bool { return int64(s.idx[k].pos) >= cut })
	kt := sort.Search(len(s.tidx), func(kt int) bool { return s.base+int64(s.tidx[kt].off) >= newEnd })
	idx, tidx := slices.Clone(s.idx[:k]), slices.Clone(s.tidx[:kt])

	// The time index holds the running maximum up to the last kept offset
	// entry's batch; the batches after it are read again.
	var from int64
	if k > 0 {
		from = int64(idx[k-1].pos)
	}
	maxTs, maxTsOff := int64(-1), int64(-1)
	if kt > 0 {
		maxTs, maxTsOff = tidx[kt-1].ts, s.base+int64(tidx[kt-1].off)
	}
	r := newHeaderReader(s.log, cut, make([]byte, 0, 64<<10))
	for pos := from; pos < cut; {
		h, err := r.header(pos)
		if err != nil {
			return readError(err)
		}
		if h.MaxTimestamp > maxTs {
			maxTs, maxTsOff = h.MaxTimestamp, h.BaseOffset
		}
		pos += int64(h.Size())
	}

	// Publish first, so that no reader starts on bytes about to go.
	l.mu.Lock()
	l.mu.segs = segs[:i+1]
	s.size, s.next = cut, newEnd
	s.idx, s.tidx = idx, tidx
	s.idxOnDisk, s.tidxOnDisk = len(idx), len(tidx)
	s.sinceIndex = cut - from
	s.maxTs, s.maxTsOff = maxTs, maxTsOff
	l.mu.end = newEnd
	l.noteTruncatedLocked(newEnd)
	l.dropUnsyncedLocked(removed)
	l.markUnsyncedLocked(s)
	if len(removed) > 0 {
		l.mu.dirUnsynced = true
	}
	l.mu.Unlock()

	for _, r := range removed {
		if err := r.removeFiles(l.fs, l.dir); err != nil {
			return l.fail(storageError("remove segment", err))
		}
	}
	if err := s.log.Truncate(cut); err != nil {
		return l.fail(storageError("truncate", err))
	}
	s.padded = false // cut with the bytes after the new end
	if err := s.index.Truncate(int64(len(idx)) * offsetEntrySize); err != nil {
		return l.fail(storageError("truncate offset index", err))
	}
	if err := s.tindex.Truncate(int64(len(tidx)) * timeEntrySize); err != nil {
		return l.fail(storageError("truncate time index", err))
	}
	l.logger.Info("truncated log", "end_offset", newEnd, "segments_removed", len(removed))
	_, err = l.syncLocked()
	return err
}

// ResetTo empties the log and makes it start (and end) at start, as a
// follower does when its leader's log starts past its own end. It is
// synced before it returns. Called like Append.
func (l *Log) ResetTo(start int64) error {
	if start < 0 {
		return fmt.Errorf("%w: reset to %d", ErrOffsetOutOfRange, start)
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.RLock()
	err := l.usableLocked()
	segs := slices.Clone(l.mu.segs)
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	return l.truncateFullyLocked(segs, start)
}

// findCut returns the position in s of the batch holding offset and that
// batch's base offset, or the end of s if no batch holds it.
func findCut(s *segment, offset int64) (pos, base int64, err error) {
	r := newHeaderReader(s.log, s.size, make([]byte, 0, 64<<10))
	pos = lookupPos(s.base, s.idx, offset)
	for pos < s.size {
		h, err := r.header(pos)
		if err != nil {
			return 0, 0, readError(err)
		}
		if h.LastOffset() >= offset {
			return pos, h.BaseOffset, nil
		}
		pos += int64(h.Size())
	}
	return s.size, s.next, nil
}

// truncateFullyLocked removes every segment and starts an empty log at
// start. Called with appendMu and syncMu held.
func (l *Log) truncateFullyLocked(segs []*segment, start int64) error {
	s := newSegmentState(start, l.opts.Now())
	l.mu.Lock()
	l.mu.segs = nil
	l.dropUnsyncedLocked(segs)
	l.mu.dirUnsynced = true
	l.mu.Unlock()
	for _, old := range segs {
		if err := old.removeFiles(l.fs, l.dir); err != nil {
			return l.fail(storageError("remove segment", err))
		}
	}
	// The checkpoint may name a start past the new one (a truncation below
	// the start) or behind it (a reset past the end).
	if err := l.writeStartCheckpoint(start); err != nil {
		return l.fail(err)
	}
	if err := openSegmentFiles(l.fs, l.dir, s, true); err != nil {
		return l.fail(storageError("create segment", err))
	}
	l.mu.Lock()
	l.mu.segs = []*segment{s}
	l.mu.start, l.mu.end = start, start
	l.noteTruncatedLocked(start)
	l.markUnsyncedLocked(s)
	l.mu.Unlock()
	l.logger.Info("truncated whole log", "start_offset", start)
	_, err := l.syncLocked()
	if err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return nil
}

// dropUnsyncedLocked forgets removed segments in the sync queue.
func (l *Log) dropUnsyncedLocked(removed []*segment) {
	if len(removed) == 0 {
		return
	}
	l.mu.unsynced = slices.DeleteFunc(l.mu.unsynced, func(s *segment) bool {
		if slices.Contains(removed, s) {
			s.unsynced = false
			return true
		}
		return false
	})
}
