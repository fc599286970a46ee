package log

// Retention and the log start offset.
//
// The log start offset may lie inside the first segment (DeleteRecords moves
// it to any offset up to the high watermark), so it is kept in a small
// checkpoint file, log-start-offset, beside the segments. Recovery starts the
// log at max(first segment base, checkpoint) and drops segments that lie
// wholly below the checkpoint.
//
// Whole segments leave the log in three steps: (1) the new start offset is
// checkpointed (durable), (2) the segment is unlisted and its files renamed
// to *.deleted (the directory synced), (3) after file.delete.delay.ms the
// files are closed and removed. A reader that took a Slice before step (2)
// keeps reading the open file until step (3), so fetches in flight (sendfile
// included) do not fail because of retention. Recovery removes every
// *.deleted file: a crash between (2) and (3) loses nothing that is wanted.
// Step (3) unlinks outside every lock of the log: freeing a large file's
// blocks may take a while and must not hold up appends.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	startCheckpointFile = "log-start-offset"
	deletedSuffix       = ".deleted"
	checkpointVersion   = "0"
)

// RetentionPolicy says which old segments EnforceRetention removes.
type RetentionPolicy struct {
	// RetentionMs is retention.ms: a sealed segment whose largest timestamp
	// is older than this goes. Negative means unlimited.
	RetentionMs int64
	// RetentionBytes is retention.bytes: the oldest segments go while the log
	// stays at least this large without them. Negative means unlimited.
	RetentionBytes int64
	// Limit is the offset below which data may be deleted (the high
	// watermark): a segment goes only if every offset in it is below Limit.
	Limit int64
}

// pendingDelete is a segment unlisted by retention whose renamed files are
// removed at due.
type pendingDelete struct {
	s   *segment
	due time.Time
}

// RetentionResult reports what EnforceRetention did.
type RetentionResult struct {
	// Deleted is the number of segments unlisted.
	Deleted int
	// Bytes is their total size.
	Bytes int64
	// Removed is the number of segments whose files were removed from disk
	// (this call's or earlier calls' deletions whose delay had passed).
	Removed int
}

// AdvanceStartOffset moves the log start offset forward to off (DeleteRecords),
// durably, and unlists the sealed segments that end at or below it. An off at
// or below StartOffset does nothing; one past EndOffset is
// ErrOffsetOutOfRange. It returns the start offset in effect afterwards. May
// be called from any goroutine; it serialises with Append.
func (l *Log) AdvanceStartOffset(off int64) (int64, error) {
	l.appendMu.Lock()
	l.mu.RLock()
	err := l.usableLocked()
	start, end := l.mu.start, l.mu.end
	l.mu.RUnlock()
	switch {
	case err != nil:
		l.appendMu.Unlock()
		return start, err
	case off > end:
		l.appendMu.Unlock()
		return start, fmt.Errorf("%w: delete before %d, end %d", ErrOffsetOutOfRange, off, end)
	case off <= start:
		l.appendMu.Unlock()
		return start, nil
	}
	if err := l.writeStartCheckpoint(off); err != nil {
		l.appendMu.Unlock()
		return start, l.fail(err)
	}
	l.mu.Lock()
	l.mu.start = off
	segs := l.mu.segs
	k := 0
	for k+1 < len(segs) && segs[k+1].base <= off {
		k++
	}
	l.mu.Unlock()
	_, err = l.unlistSegments(k)
	reap := l.takeDueLocked()
	l.appendMu.Unlock()
	l.removePending(reap)
	return off, err
}

// EnforceRetention unlists the oldest segments that policy (or the log start
// offset) says must go, rolling the active segment first if it must go too,
// and removes the files of segments unlisted at least file.delete.delay.ms
// ago. May be called from any goroutine; it holds up appends only while it
// renames files.
func (l *Log) EnforceRetention(p RetentionPolicy) (RetentionResult, error) {
	var res RetentionResult
	l.appendMu.Lock()
	l.mu.RLock()
	err := l.usableLocked()
	segs := l.mu.segs
	start, end := l.mu.start, l.mu.end
	var total int64
	for _, s := range segs {
		total += s.size
	}
	l.mu.RUnlock()
	if err != nil {
		l.appendMu.Unlock()
		return res, err
	}

	now := l.opts.Now()
	k := 0
	diff := total - p.RetentionBytes
	for k < len(segs) {
		s := segs[k]
		upper := end // the offset after the segment
		if k+1 < len(segs) {
			upper = segs[k+1].base
		}
		if s.size == 0 || upper > p.Limit {
			break
		}
		byStart := k+1 < len(segs) && upper <= start
		byBytes := p.RetentionBytes >= 0 && diff-s.size >= 0
		byTime := p.RetentionMs >= 0 && now.Sub(l.segmentTime(s)).Milliseconds() > p.RetentionMs
		if !byStart && !byBytes && !byTime {
			break
		}
		diff -= s.size
		k++
	}
	if k == len(segs) {
		// Everything goes, the active segment included: roll so that the
		// log keeps an (empty) active segment at its end.
		if _, err := l.roll(); err != nil {
			l.appendMu.Unlock()
			return res, err
		}
	}
	if k > 0 {
		res.Deleted = k
		for _, s := range segs[:k] {
			res.Bytes += s.size
		}
		if _, err = l.unlistSegments(k); err != nil {
			l.appendMu.Unlock()
			return res, err
		}
	}
	reap := l.takeDueLocked()
	l.appendMu.Unlock()
	res.Removed = len(reap)
	return res, l.removePending(reap)
}

// segmentTime is the age reference of s for retention.ms: its largest
// timestamp, or its creation time if it has none.
func (l *Log) segmentTime(s *segment) time.Time {
	if s.maxTs >= 0 {
		return time.UnixMilli(s.maxTs)
	}
	return s.created
}

// unlistSegments removes the first k segments from the list (never the last
// one), moving the start offset to the new first segment's base if it was
// below, and renames their files to *.deleted. Called with appendMu held.
func (l *Log) unlistSegments(k int) (int64, error) {
	l.mu.Lock()
	k = min(k, len(l.mu.segs)-1)
	if k <= 0 {
		start := l.mu.start
		l.mu.Unlock()
		return start, nil
	}
	removed := slices.Clone(l.mu.segs[:k])
	newBase := l.mu.segs[k].base
	moved := newBase > l.mu.start
	l.mu.Unlock()
	if moved {
		// The checkpoint first: a crash after the renames must not bring
		// back a start offset below data that is gone.
		if err := l.writeStartCheckpoint(newBase); err != nil {
			return 0, l.fail(err)
		}
	}

	l.mu.Lock()
	l.mu.segs = slices.Clone(l.mu.segs[k:])
	l.mu.start = max(l.mu.start, newBase)
	start := l.mu.start
	l.mu.Unlock()

	due := l.opts.Now().Add(l.opts.FileDeleteDelay)
	for _, s := range removed {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			name := filepath.Join(l.dir, segmentName(s.base, suf))
			if err := l.fs.Rename(name, name+deletedSuffix); err != nil {
				return start, l.fail(storageError("rename deleted segment", err))
			}
		}
		l.pending = append(l.pending, pendingDelete{s: s, due: due})
		l.logger.Info("deleting segment", "base", s.base, "size", s.size)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return start, l.fail(storageError("sync dir", err))
	}
	return start, nil
}

// takeDueLocked takes the pending deletions that are due. Called with
// appendMu held.
func (l *Log) takeDueLocked() []*segment {
	now := l.opts.Now()
	var due []*segment
	keep := l.pending[:0]
	for _, pd := range l.pending {
		if !pd.due.After(now) {
			due = append(due, pd.s)
		} else {
			keep = append(keep, pd)
		}
	}
	clear(l.pending[len(keep):])
	l.pending = keep
	return due
}

// removePending closes and removes the renamed files of segs. Called without
// the log's locks: the segments are no longer listed, so only readers that
// took a Slice of them before may still hold their files; their delay is
// over.
func (l *Log) removePending(segs []*segment) error {
	if len(segs) == 0 {
		return nil
	}
	// Sync queues may still list a segment unlisted since the last Sync.
	l.syncMu.Lock()
	l.mu.Lock()
	l.dropUnsyncedLocked(segs)
	l.mu.Unlock()
	for _, s := range segs {
		s.closeFiles()
	}
	l.syncMu.Unlock()
	var first error
	for _, s := range segs {
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			err := l.fs.Remove(filepath.Join(l.dir, segmentName(s.base, suf)+deletedSuffix))
			if err != nil && !os.IsNotExist(err) && first == nil {
				first = storageError("remove deleted segment", err)
			}
		}
	}
	return first
}

// writeStartCheckpoint durably records off as the log start offset: a new
// file is written and synced, then renamed over the old one.
func (l *Log) writeStartCheckpoint(off int64) error {
	name := filepath.Join(l.dir, startCheckpointFile)
	tmp := name + ".tmp"
	f, err := l.fs.Create(tmp)
	if err != nil {
		return storageError("write start offset checkpoint", err)
	}
	_, err = f.Write([]byte(checkpointVersion + "\n" + strconv.FormatInt(off, 10) + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.fs.Rename(tmp, name)
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		return storageError("write start offset checkpoint", err)
	}
	return nil
}

// readStartCheckpoint returns the checkpointed log start offset, or -1 if
// there is none. A damaged checkpoint is reported and ignored: the segments
// alone then give the start.
func (l *Log) readStartCheckpoint() int64 {
	f, err := l.fs.Open(filepath.Join(l.dir, startCheckpointFile))
	if err != nil {
		return -1
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, _ := f.ReadAt(buf, 0)
	lines := strings.Split(strings.TrimSpace(string(buf[:n])), "\n")
	if len(lines) == 2 && lines[0] == checkpointVersion {
		if off, err := strconv.ParseInt(lines[1], 10, 64); err == nil && off >= 0 {
			return off
		}
	}
	l.logger.Warn("ignoring damaged log start offset checkpoint", "content", string(buf[:n]))
	return -1
}

// isRetentionLeftover reports whether name is a file retention leaves behind
// for recovery to remove: a renamed segment file or an unfinished checkpoint.
func isRetentionLeftover(name string) bool {
	return strings.HasSuffix(name, deletedSuffix) || name == startCheckpointFile+".tmp"
}

// applyStartCheckpointLocked sets the start offset at Open from the segments
// and the checkpoint, dropping the segments wholly below the checkpoint that a
// crash left listed. It returns the checkpoint if it lies past the end of the
// recovered log (the caller then empties the log and starts it there), or -1.
// Called by recover only.
func (l *Log) applyStartCheckpointLocked() (int64, error) {
	ckpt := l.readStartCheckpoint()
	k := 0
	for k+1 < len(l.mu.segs) && l.mu.segs[k+1].base <= ckpt {
		k++
	}
	for _, s := range l.mu.segs[:k] {
		l.logger.Info("removing segment below the log start offset", "base", s.base, "start", ckpt)
		if err := s.removeFiles(l.fs, l.dir); err != nil {
			return -1, storageError("remove segment", err)
		}
		l.mu.dirUnsynced = true
	}
	l.mu.segs = l.mu.segs[k:]
	l.mu.start = max(l.mu.segs[0].base, ckpt)
	if end := l.mu.segs[len(l.mu.segs)-1].next; l.mu.start > end {
		return l.mu.start, nil
	}
	return -1, nil
}
