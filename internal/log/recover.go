package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/poste-io/poste/internal/record"
)

// recoverWindow is the read window of recovery scans.
const recoverWindow = 1 << 20

// recover loads the segments of l.dir, repairing what a crash left:
//
//   - the last segment is re-read batch by batch (framing, magic, CRC32C,
//     offsets that never go back and stay within the segment's 32-bit
//     relative range) and truncated at the first bad batch; its indexes are
//     rebuilt from what is left;
//   - an earlier (sealed) segment keeps its index files if they are sane
//     (whole entries, strictly increasing, inside the segment); its batches
//     after the last offset-index entry are re-read the same way. Otherwise,
//     or if that tail is bad, the segment is re-read whole and truncated at
//     the first bad batch, and every later segment is removed: what follows
//     a hole cannot be kept;
//   - a segment whose offsets run into the next one's also ends the log
//     there;
//   - files with names not of our layout are logged and left alone; index
//     files without a .log are removed.
//
// Every change is synced before Open returns.
// partitionFiles are files the partition layer keeps in a log's directory.
var partitionFiles = map[string]bool{"partition.metadata": true, "leader-epoch-checkpoint": true}

// isPartitionSnapshot reports whether name is a producer-state snapshot the
// partition layer keeps beside the segments ("<20 digits>.snapshot", and its
// temporary form while being written).
func isPartitionSnapshot(name string) bool {
	name = strings.TrimSuffix(name, ".tmp")
	return len(name) == baseDigits+len(".snapshot") && strings.HasSuffix(name, ".snapshot")
}

func (l *Log) recover() error {
	if _, err := l.fs.Stat(l.dir); err != nil {
		if !os.IsNotExist(err) {
			return storageError("stat", err)
		}
		if err := l.createDir(); err != nil {
			return err
		}
	}
	if err := l.completeCleaning(); err != nil {
		return err
	}
	names, err := l.fs.List(l.dir)
	if err != nil {
		return storageError("list", err)
	}
	logs := map[int64]bool{}
	var bases []int64
	var orphans []string
	for _, name := range names {
		base, suffix, ok := parseSegmentName(name)
		switch {
		case !ok && (partitionFiles[name] || isPartitionSnapshot(name)):
			// Kept beside the segments by the partition layer.
		case !ok && name == startCheckpointFile:
			// Read below.
		case !ok && isRetentionLeftover(name):
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return storageError("remove", err)
			}
			l.mu.dirUnsynced = true
		case !ok:
			l.logger.Warn("ignoring unknown file in log directory", "file", name)
		case suffix == logSuffix:
			logs[base] = true
			bases = append(bases, base)
		default:
			orphans = append(orphans, name)
		}
	}
	slices.Sort(bases)
	for _, name := range orphans {
		if base, _, _ := parseSegmentName(name); !logs[base] {
			l.logger.Warn("removing index file without a segment", "file", name)
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return storageError("remove", err)
			}
			l.mu.dirUnsynced = true
		}
	}

	now := l.opts.Now()
	if len(bases) == 0 {
		s := newSegmentState(0, now)
		if err := openSegmentFiles(l.fs, l.dir, s, true); err != nil {
			return storageError("create segment", err)
		}
		l.mu.segs = []*segment{s}
		l.mu.dirUnsynced = true
	}
	for i, base := range bases {
		s := newSegmentState(base, now)
		if err := openSegmentFiles(l.fs, l.dir, s, false); err != nil {
			return storageError("open segment", err)
		}
		l.mu.segs = append(l.mu.segs, s)
		last := i == len(bases)-1
		cut, err := l.recoverSegment(s, last)
		if err != nil {
			return err
		}
		if last {
			break
		}
		next := bases[i+1]
		if i+2 == len(bases) && s.next != next && l.emptySegment(next) {
			// An empty last segment starting past a gap was rolled before
			// a crash took data of this one: its base is not the end.
			cut = true
		}
		if !cut && s.next <= next {
			if s.next < next {
				l.logger.Warn("offset gap between segments", "segment", s.logName, "end", s.next, "next_base", next)
			}
			continue
		}
		reason := "torn segment before them, or an empty segment after a gap"
		if !cut {
			reason = fmt.Sprintf("segment ends at offset %d, past their base %d", s.next, next)
		}
		for _, b := range bases[i+1:] {
			l.logger.Warn("removing segment after a damaged one", "base", b, "reason", reason)
			dead := newSegmentState(b, now)
			if err := dead.removeFiles(l.fs, l.dir); err != nil {
				return storageError("remove segment", err)
			}
		}
		l.mu.dirUnsynced = true
		break
	}

	active := l.mu.segs[len(l.mu.segs)-1]
	l.mu.end = active.next
	past, err := l.applyStartCheckpointLocked()
	if err != nil {
		return err
	}
	if past >= 0 {
		// The log was emptied past its recovered end (its tail was not
		// durable): start an empty log at the checkpoint.
		l.logger.Warn("log start offset past the recovered end; emptying the log", "start", past, "end", l.mu.end)
		return l.truncateFullyLocked(slices.Clone(l.mu.segs), past)
	}
	for _, s := range l.mu.segs {
		l.markUnsyncedLocked(s)
	}
	_, err = l.syncLocked()
	return err
}

// emptySegment reports whether the .log of base exists and is empty.
func (l *Log) emptySegment(base int64) bool {
	fi, err := l.fs.Stat(filepath.Join(l.dir, segmentName(base, logSuffix)))
	return err == nil && fi.Size() == 0
}

// createDir creates l.dir and makes it durable: every directory created is
// synced into its parent.
func (l *Log) createDir() error {
	var missing []string
	for d := l.dir; ; d = filepath.Dir(d) {
		if _, err := l.fs.Stat(d); err == nil {
			break
		} else if !os.IsNotExist(err) {
			return storageError("stat", err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := l.fs.MkdirAll(l.dir, 0o755); err != nil {
		return storageError("mkdir", err)
	}
	for _, d := range missing {
		if err := l.fs.SyncDir(filepath.Dir(d)); err != nil {
			return storageError("sync dir", err)
		}
	}
	return nil
}

// recoverSegment loads s, re-reading it as described at recover; cut reports
// that bytes were cut off its end.
func (l *Log) recoverSegment(s *segment, last bool) (cut bool, err error) {
	fi, err := s.log.Stat()
	if err != nil {
		return false, storageError("stat", err)
	}
	size := fi.Size()
	if !last {
		if why := l.loadSealed(s, size); why == "" {
			return false, nil
		} else {
			l.logger.Info("re-reading sealed segment", "segment", s.logName, "reason", why)
		}
	}
	return l.rebuildSegment(s, size, !last)
}

// scanBatch checks the batch at pos of the segment at base: header, framing,
// CRC, that its base offset is at least next and that its offsets fit the
// segment. The CRC does not cover the base offset, so a flipped bit there
// shows only as offsets going back or leaving the segment's range; Append
// never writes either.
func scanBatch(r *headerReader, base, pos, next int64) (record.Header, error) {
	h, err := r.header(pos)
	if err != nil {
		return h, err
	}
	b, err := r.batch(pos, h.Size())
	if err != nil {
		return h, err
	}
	if err := record.VerifyCRC(b); err != nil {
		return h, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if h.BaseOffset < next {
		return h, fmt.Errorf("%w: base offset %d below %d", ErrCorrupt, h.BaseOffset, next)
	}
	if !fitsSegment(base, &h) {
		return h, fmt.Errorf("%w: base offset %d with last offset delta %d out of reach of segment base %d",
			ErrCorrupt, h.BaseOffset, h.LastOffsetDelta, base)
	}
	return h, nil
}

// rebuildSegment re-reads s from its start, truncates it at the first bad
// batch and rewrites its indexes. A sealed segment's time index gets its
// closing maximum entry, as at a roll.
func (l *Log) rebuildSegment(s *segment, size int64, sealed bool) (cut bool, err error) {
	r := newHeaderReader(s.log, size, make([]byte, 0, recoverWindow))
	*s = segment{base: s.base, log: s.log, index: s.index, tindex: s.tindex, logName: s.logName,
		next: s.base, maxTs: -1, maxTsOff: -1, created: s.created}
	ix := l.indexerFor(s)
	var pos int64
	for pos < size {
		h, err := scanBatch(r, s.base, pos, s.next)
		if err != nil {
			if !isDataError(err) {
				return false, storageError("read", err)
			}
			l.logger.Warn("truncating torn or corrupt segment tail",
				"segment", s.logName, "position", pos, "bytes_cut", size-pos, "err", err)
			break
		}
		ix.add(&h, pos)
		pos += int64(h.Size())
		s.next = h.LastOffset() + 1
	}
	if pos < size {
		if err := s.log.Truncate(pos); err != nil {
			return false, storageError("truncate", err)
		}
		cut = true
	}
	if sealed && !cut {
		ix.maxTidx++
		ix.maybeTimeEntry()
	}
	s.size = pos
	s.idx, s.tidx = ix.newIdx, ix.newTidx
	s.sinceIndex, s.maxTs, s.maxTsOff = ix.sinceIndex, ix.maxTs, ix.maxTsOff
	if err := l.rewriteIndexes(s); err != nil {
		return false, err
	}
	return cut, nil
}

// isDataError tells bad bytes (cut them) from a failing disk (give up).
func isDataError(err error) bool {
	return errors.Is(err, ErrCorrupt) || errors.Is(err, io.ErrUnexpectedEOF)
}

// rewriteIndexes replaces the index files of s by its in-memory indexes.
func (l *Log) rewriteIndexes(s *segment) error {
	b := encodeOffsetEntries(nil, s.idx)
	if err := rewrite(s.index, b); err != nil {
		return storageError("write offset index", err)
	}
	b = encodeTimeEntries(b[:0], s.tidx)
	if err := rewrite(s.tindex, b); err != nil {
		return storageError("write time index", err)
	}
	s.idxOnDisk, s.tidxOnDisk = len(s.idx), len(s.tidx)
	return nil
}

func rewrite(f interface {
	Truncate(int64) error
	WriteAt([]byte, int64) (int, error)
}, b []byte) error {
	if err := f.Truncate(int64(len(b))); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// loadSealed loads the index files of a sealed segment and re-reads its
// batches from the last offset-index entry on. It returns why the segment
// must be re-read whole, or "" if it was loaded.
func (l *Log) loadSealed(s *segment, size int64) string {
	idx, why := readOffsetIndex(s, size)
	if why != "" {
		return why
	}
	tidx, why := readTimeIndex(s)
	if why != "" {
		return why
	}
	if len(tidx) == 0 && size > 0 {
		// A roll leaves the segment's maximum timestamp as the last time
		// entry; without one it is unknown (or there are no timestamps).
		return "time index empty"
	}
	s.idx, s.tidx = idx, tidx
	s.idxOnDisk, s.tidxOnDisk = len(idx), len(tidx)
	s.maxTs, s.maxTsOff = -1, -1
	if len(tidx) > 0 {
		e := tidx[len(tidx)-1]
		s.maxTs, s.maxTsOff = e.ts, s.base+int64(e.off)
	}

	var pos int64
	next := s.base
	if len(idx) > 0 {
		e := idx[len(idx)-1]
		pos, next = int64(e.pos), s.base // the batch at pos must end at base+e.off
	}
	r := newHeaderReader(s.log, size, make([]byte, 0, recoverWindow))
	first := true
	for pos < size {
		h, err := scanBatch(r, s.base, pos, next)
		if err != nil {
			return err.Error()
		}
		if first && len(idx) > 0 && h.LastOffset() != s.base+int64(idx[len(idx)-1].off) {
			return "offset index disagrees with the segment"
		}
		first = false
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOff = h.MaxTimestamp, h.BaseOffset
		}
		pos += int64(h.Size())
		next = h.LastOffset() + 1
	}
	s.size = pos
	s.next = next
	if len(tidx) > 0 && s.base+int64(tidx[len(tidx)-1].off) >= s.next {
		return "time index points past the segment"
	}
	return ""
}

// readOffsetIndex reads and checks the offset index of s.
func readOffsetIndex(s *segment, logSize int64) ([]offsetEntry, string) {
	b, err := readAll(s.index)
	if err != nil {
		return nil, "offset index unreadable: " + err.Error()
	}
	if len(b)%offsetEntrySize != 0 {
		return nil, "offset index has a partial entry"
	}
	es := make([]offsetEntry, len(b)/offsetEntrySize)
	for i := range es {
		e := offsetEntry{
			off: int32(binary.BigEndian.Uint32(b[i*offsetEntrySize:])),
			pos: int32(binary.BigEndian.Uint32(b[i*offsetEntrySize+4:])),
		}
		if e.off < 0 || e.pos < 0 || int64(e.pos) >= logSize ||
			(i > 0 && (e.off <= es[i-1].off || e.pos <= es[i-1].pos)) {
			return nil, fmt.Sprintf("offset index entry %d out of order or past the segment", i)
		}
		es[i] = e
	}
	return es, ""
}

// readTimeIndex reads and checks the time index of s.
func readTimeIndex(s *segment) ([]timeEntry, string) {
	b, err := readAll(s.tindex)
	if err != nil {
		return nil, "time index unreadable: " + err.Error()
	}
	if len(b)%timeEntrySize != 0 {
		return nil, "time index has a partial entry"
	}
	es := make([]timeEntry, len(b)/timeEntrySize)
	for i := range es {
		e := timeEntry{
			ts:  int64(binary.BigEndian.Uint64(b[i*timeEntrySize:])),
			off: int32(binary.BigEndian.Uint32(b[i*timeEntrySize+8:])),
		}
		if e.off < 0 || (i > 0 && (e.ts <= es[i-1].ts || e.off < es[i-1].off)) {
			return nil, fmt.Sprintf("time index entry %d out of order", i)
		}
		es[i] = e
	}
	return es, ""
}

func readAll(f interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
}) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, fi.Size())
	if n, err := f.ReadAt(b, 0); n < len(b) {
		return nil, err
	}
	return b, nil
}
