// Package log is one partition's log on disk: a directory of segments named
// by their base offset, each a .log file of record batches exactly as
// appended, with a sparse offset index (.index) and a time index
// (.timeindex), in Kafka's layout. It knows bytes and offsets, never
// leadership, replication or the wire protocol.
//
// Batches reach Append already validated and with their offsets assigned;
// the log reads only their 61-byte headers. Recovery at Open re-validates the
// tail (framing and CRC32C of every batch of the last segment) and truncates
// whatever is torn, so that every batch covered by a successful Sync
// survives a crash.
//
// Lock order: Log.cleaner.mu, then Log.appendMu, then Log.syncMu, then
// Log.mu.
package log

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// Sentinel errors. Every error the package returns matches one of them (or
// is a plain argument error from Open).
var (
	// ErrOffsetOutOfRange: an offset below the start or above the end of the
	// log.
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrClosed: the log was closed or deleted.
	ErrClosed = errors.New("log: closed")
	// ErrStorage wraps an I/O error of the filesystem. After a failed write
	// or sync the log accepts no more appends or syncs: it stays readable
	// and every later Append and Sync returns the same ErrStorage error.
	ErrStorage = errors.New("log: storage error")
	// ErrCorrupt: bytes on disk that are not a valid batch where one must
	// be.
	ErrCorrupt = errors.New("log: corrupt data")
	// ErrInvalidAppend: Append was given bytes that are not whole v2
	// batches, or offsets that do not continue the log. A caller bug.
	ErrInvalidAppend = errors.New("log: invalid append")
)

// Defaults of Options, Kafka's.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentMs          = 7 * 24 * 60 * 60 * 1000
	DefaultIndexIntervalBytes = 4096
	DefaultSegmentIndexBytes  = 10 << 20
)

// Options configure a Log. Zero values select the defaults.
type Options struct {
	FS vfs.FS
	// SegmentBytes is segment.bytes: a non-empty segment rolls when the next
	// append would take it past this size. At most math.MaxInt32.
	SegmentBytes int64
	// SegmentMs is segment.ms: a non-empty segment rolls at the next append
	// (or MaybeRoll) once it is older than this. Age counts from the
	// segment's creation, or from Open for the active segment of a reopened
	// log.
	SegmentMs int64
	// IndexIntervalBytes is index.interval.bytes: an offset-index entry each
	// time this many bytes were appended since the last one.
	IndexIntervalBytes int
	// SegmentIndexBytes is segment.index.bytes: a segment rolls when its
	// offset or time index would exceed this size.
	SegmentIndexBytes int
	// Preallocate reserves SegmentBytes of disk for each new segment file.
	Preallocate bool
	// Now is the clock, for segment.ms.
	Now func() time.Time
	// FileDeleteDelay is file.delete.delay.ms: how long the files of a
	// segment removed by retention stay open (renamed *.deleted) so that
	// readers holding a Slice of it finish. Zero removes them at once.
	FileDeleteDelay time.Duration
	// Logger receives recovery reports.
	Logger *slog.Logger
	// OnRoll, if set, is called with the base offset of each new active
	// segment right after a roll (by Append, MaybeRoll or EnforceRetention),
	// with the log's append lock held: it must not block or call back into
	// the log. The partition layer uses it to snapshot producer state at
	// segment boundaries.
	OnRoll func(newBase int64)
}

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	o.SegmentBytes = min(o.SegmentBytes, math.MaxInt32)
	if o.SegmentMs <= 0 {
		o.SegmentMs = DefaultSegmentMs
	}
	if o.IndexIntervalBytes <= 0 {
		o.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if o.SegmentIndexBytes <= 0 {
		o.SegmentIndexBytes = DefaultSegmentIndexBytes
	}
	// Room for at least one entry in each index.
	o.SegmentIndexBytes = max(o.SegmentIndexBytes, timeEntrySize)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Log is one partition's log: an ordered list of segments of which the last
// is active (appended to).
//
// Concurrency contract: Append, Truncate and MaybeRoll are called by one
// goroutine at a time (the partition serialises them); Read, EndOffset,
// StartOffset, Size, OffsetForTimestamp, MaxTimestamp and Sync may run
// concurrently with them and with each other. Close and Delete may be called
// from any goroutine, once.
//
// Invariants:
//   - segments are sorted by base offset and their offset ranges do not
//     overlap; the last one is active, earlier ones are sealed and never
//     written again except by Truncate;
//   - EndOffset and every segment's size move forward only after the bytes
//     are written, so a Read returns only bytes whose Append has finished;
//   - the files of a segment stay open while it is in the list; a Slice
//     remains readable across rolls. A segment removed by retention or
//     AdvanceStartOffset keeps its files open for Options.FileDeleteDelay
//     more, so Slices taken before stay readable that long. A segment
//     removed by Truncate has its files closed at once: reading an older
//     Slice of it then fails with ErrClosed (never returns other bytes). Reading a Slice of the active segment
//     taken before a Truncate that cut its bytes fails with
//     ErrOffsetOutOfRange, or returns bytes appended after that Truncate;
//     callers read below the high watermark, which Truncate never crosses.
//   - StartOffset is at least the first segment's base and at most
//     EndOffset; it lies inside the first segment after AdvanceStartOffset.
//   - after a write or sync error the log is failed: Append and Sync return
//     that error (wrapping ErrStorage) for good; reads go on.
type Log struct {
	dir    string
	fs     vfs.FS
	opts   Options
	logger *slog.Logger
	// maxIdx and maxTidx bound the entries of a segment's offset and time
	// indexes.
	maxIdx, maxTidx int

	// appendMu serialises Append, Truncate, MaybeRoll, AdvanceStartOffset,
	// EnforceRetention, Reconfigure, Close and Delete; it also guards app,
	// pending and the mutable fields of opts.
	appendMu sync.Mutex
	// pending lists segments unlisted by retention whose files are not yet
	// removed (see retention.go).
	pending []pendingDelete
	// firstDirty is the offset below which compaction has cleaned the log
	// (see compact.go).
	firstDirty int64
	// cleaner serialises compaction passes and keeps their memory.
	cleaner cleanerState
	app     struct {
		batches []appendBatch
		idx     []offsetEntry
		tidx    []timeEntry
		scratch []byte
	}

	// syncMu serialises Sync, and keeps Truncate and Close from closing
	// files under a running fsync.
	syncMu sync.Mutex

	mu struct {
		sync.RWMutex
		segs  []*segment
		start int64
		end   int64
		// unsynced lists the segments written since the last Sync took the
		// list; dirUnsynced is set when files were created or removed in dir.
		unsynced    []*segment
		dirUnsynced bool
		failed      error
		closed      bool
	}
}

// appendBatch is one batch of an Append payload.
type appendBatch struct {
	h   record.Header
	pos int64
}

// Open opens the log in dir, creating dir if missing, and recovers it: see
// the package comment and recover.go.
func Open(dir string, o Options) (*Log, error) {
	o = o.withDefaults()
	l := &Log{
		dir:     dir,
		fs:      o.FS,
		opts:    o,
		logger:  o.Logger.With("dir", dir),
		maxIdx:  o.SegmentIndexBytes / offsetEntrySize,
		maxTidx: o.SegmentIndexBytes / timeEntrySize,
	}
	if err := l.recover(); err != nil {
		for _, s := range l.mu.segs {
			s.closeFiles()
		}
		return nil, err
	}
	return l, nil
}

// Reconfigure applies changed options to an open log: the segment roll
// limits, the index interval, preallocation and the file delete delay take
// effect from the next append; FS, Now, Logger and OnRoll are kept. May be called
// from any goroutine.
func (l *Log) Reconfigure(o Options) {
	o.FS, o.Now, o.Logger, o.OnRoll = l.opts.FS, l.opts.Now, l.opts.Logger, l.opts.OnRoll
	o = o.withDefaults()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.opts = o
	l.maxIdx = o.SegmentIndexBytes / offsetEntrySize
	l.maxTidx = o.SegmentIndexBytes / timeEntrySize
}

// Dir is the directory of the log.
func (l *Log) Dir() string { return l.dir }

// EndOffset is the log end offset: the offset the next appended record gets.
func (l *Log) EndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.end
}

// StartOffset is the first offset held by the log.
func (l *Log) StartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.start
}

// Size is the number of bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.mu.segs {
		n += s.size
	}
	return n
}

// NumSegments is the number of segments, the active one included.
func (l *Log) NumSegments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.mu.segs)
}

// storageError wraps err in ErrStorage.
func storageError(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrStorage, op, err)
}

// failLocked marks the log failed with err (the first failure wins) and
// returns the failure.
func (l *Log) failLocked(err error) error {
	if l.mu.failed == nil {
		l.mu.failed = err
		l.logger.Error("log failed; no more appends", "err", err)
	}
	return l.mu.failed
}

func (l *Log) fail(err error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failLocked(err)
}

// usableLocked returns why the log cannot be written, if it cannot.
func (l *Log) usableLocked() error {
	if l.mu.closed {
		return ErrClosed
	}
	return l.mu.failed
}

// markUnsyncedLocked queues s for the next Sync.
func (l *Log) markUnsyncedLocked(s *segment) {
	if !s.unsynced {
		s.unsynced = true
		l.mu.unsynced = append(l.mu.unsynced, s)
	}
}

// Append writes one or more whole batches whose offsets increase from
// EndOffset on (a gap before a batch is allowed: compaction leaves them, and
// followers copy them), with one write to the active
// segment, rolling first if the active segment is full or old. The batches
// of one Append span at most math.MaxInt32+1 offsets (what one segment
// holds) and end below math.MaxInt64. The bytes are not synced. data is not
// retained.
func (l *Log) Append(data []byte) error { return l.append(data, false) }

// AppendDirect is Append with a direct write (vfs.File.WriteDirectAt): the bytes go to the
// device without a copy into the page cache. It suits data that is written once and seldom
// read soon after, such as a follower's copy of its leader's log: a write through the page
// cache costs the broker more CPU than the rest of the append, where a read that finds
// nothing cached costs one disk read.
func (l *Log) AppendDirect(data []byte) error { return l.append(data, true) }

func (l *Log) append(data []byte, direct bool) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()

	l.mu.RLock()
	if err := l.usableLocked(); err != nil {
		l.mu.RUnlock()
		return err
	}
	end := l.mu.end
	active := l.mu.segs[len(l.mu.segs)-1]
	l.mu.RUnlock()

	batches, err := parseAppend(l.app.batches[:0], data, end)
	l.app.batches = batches[:0]
	if err != nil {
		return err
	}
	last := batches[len(batches)-1].h.LastOffset()

	if l.shouldRoll(active, int64(len(data)), last, len(batches)) {
		if active, err = l.roll(); err != nil {
			return err
		}
	}

	pos := active.size
	ix := l.indexerFor(active)
	ix.newIdx, ix.newTidx = l.app.idx[:0], l.app.tidx[:0]
	for i := range batches {
		ix.add(&batches[i].h, pos+batches[i].pos)
	}
	write := active.log.WriteAt
	if direct {
		write = active.log.WriteDirectAt
		active.padded = true
	}
	if _, err := write(data, pos); err != nil {
		// Best effort: leave no torn batch (recovery would cut it anyway).
		_ = active.log.Truncate(pos)
		return l.fail(storageError("append", err))
	}
	if err := l.writeIndexEntries(active, ix.newIdx, ix.newTidx); err != nil {
		// The append failed as a whole: take its bytes back too.
		_ = active.log.Truncate(pos)
		return l.fail(err)
	}

	l.mu.Lock()
	active.size = pos + int64(len(data))
	active.next = last + 1
	active.idx = append(active.idx, ix.newIdx...)
	active.tidx = append(active.tidx, ix.newTidx...)
	active.idxOnDisk, active.tidxOnDisk = len(active.idx), len(active.tidx)
	active.sinceIndex, active.maxTs, active.maxTsOff = ix.sinceIndex, ix.maxTs, ix.maxTsOff
	l.mu.end = last + 1
	l.markUnsyncedLocked(active)
	l.mu.Unlock()
	l.app.idx, l.app.tidx = ix.newIdx[:0], ix.newTidx[:0]
	return nil
}

// parseAppend reads the batch headers of an Append payload and checks that
// they tile data and continue the log at end.
func parseAppend(dst []appendBatch, data []byte, end int64) ([]appendBatch, error) {
	if len(data) == 0 {
		return dst, fmt.Errorf("%w: empty payload", ErrInvalidAppend)
	}
	next := end
	for pos := 0; pos < len(data); {
		h, err := record.ParseHeader(data[pos:])
		if err != nil {
			return dst, fmt.Errorf("%w: %d trailing bytes", ErrInvalidAppend, len(data)-pos)
		}
		size := h.Size()
		switch {
		case h.Magic != 2:
			return dst, fmt.Errorf("%w: magic %d", ErrInvalidAppend, h.Magic)
		case size < record.HeaderSize || size > len(data)-pos:
			return dst, fmt.Errorf("%w: batch length %d at byte %d of %d", ErrInvalidAppend, h.BatchLength, pos, len(data))
		case h.BaseOffset < next:
			// Gaps are allowed: a follower copies a compacted leader's batches as they are.
			return dst, fmt.Errorf("%w: base offset %d, want at least %d", ErrInvalidAppend, h.BaseOffset, next)
		case h.LastOffsetDelta < 0:
			return dst, fmt.Errorf("%w: last offset delta %d", ErrInvalidAppend, h.LastOffsetDelta)
		case !fitsSegment(end, &h):
			// The whole payload goes to one segment, at base end at the
			// lowest.
			return dst, fmt.Errorf("%w: batch at offset %d with last offset delta %d: the payload spans more offsets than a segment holds, or reaches the largest offset",
				ErrInvalidAppend, h.BaseOffset, h.LastOffsetDelta)
		}
		dst = append(dst, appendBatch{h: h, pos: int64(pos)})
		next = h.LastOffset() + 1
		pos += size
	}
	return dst, nil
}

// shouldRoll reports whether an append of n bytes, ending at offset last
// and holding batches batches, must go to a new segment. An empty segment
// takes anything within its offset range (see fitsSegment); one that
// Truncate left with its base below the end may lack the range, and then
// gives way to a segment based at the end, which has it.
func (l *Log) shouldRoll(s *segment, n, last int64, batches int) bool {
	if s.size == 0 {
		return last-s.base > math.MaxInt32
	}
	return s.size+n > l.opts.SegmentBytes ||
		l.segmentExpired(s) ||
		len(s.idx)+batches > l.maxIdx ||
		len(s.tidx)+batches > l.maxTidx ||
		last-s.base > math.MaxInt32
}

func (l *Log) segmentExpired(s *segment) bool {
	return l.opts.Now().Sub(s.created).Milliseconds() > l.opts.SegmentMs
}

func (l *Log) indexerFor(s *segment) indexer {
	return s.indexer(int64(l.opts.IndexIntervalBytes), l.maxIdx, l.maxTidx)
}

// writeIndexEntries appends entries to the index files of s.
func (l *Log) writeIndexEntries(s *segment, idx []offsetEntry, tidx []timeEntry) error {
	if len(idx) > 0 {
		l.app.scratch = encodeOffsetEntries(l.app.scratch[:0], idx)
		if _, err := s.index.WriteAt(l.app.scratch, int64(s.idxOnDisk)*offsetEntrySize); err != nil {
			return storageError("write offset index", err)
		}
	}
	if len(tidx) > 0 {
		l.app.scratch = encodeTimeEntries(l.app.scratch[:0], tidx)
		if _, err := s.tindex.WriteAt(l.app.scratch, int64(s.tidxOnDisk)*timeEntrySize); err != nil {
			return storageError("write time index", err)
		}
	}
	return nil
}

// MaybeRoll rolls the active segment if it is non-empty and older than
// segment.ms.
func (l *Log) MaybeRoll() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	if err := l.usableLocked(); err != nil {
		l.mu.RUnlock()
		return err
	}
	active := l.mu.segs[len(l.mu.segs)-1]
	l.mu.RUnlock()
	if active.size == 0 || !l.segmentExpired(active) {
		return nil
	}
	_, err := l.roll()
	return err
}

// roll seals the active segment and starts a new one at the end offset.
// Called with appendMu held.
func (l *Log) roll() (*segment, error) {
	l.mu.RLock()
	old := l.mu.segs[len(l.mu.segs)-1]
	base := l.mu.end
	l.mu.RUnlock()

	// A sealed segment's file ends with its last batch: reads and recovery
	// of sealed segments go by the file's size.
	if err := old.trimPadding(); err != nil {
		return nil, l.fail(storageError("trim segment", err))
	}
	// The sealed segment's time index ends with its maximum, so that its
	// largest timestamp is known after a restart without a scan.
	ix := l.indexerFor(old)
	ix.maxTidx++
	ix.maybeTimeEntry()
	if err := l.writeIndexEntries(old, nil, ix.newTidx); err != nil {
		return nil, l.fail(err)
	}
	// Recovery trusts a sealed segment's last time entry to be its maximum:
	// make it durable before the segment is sealed. The index is small.
	if err := old.tindex.Sync(); err != nil {
		return nil, l.fail(storageError("sync time index", err))
	}

	s := newSegmentState(base, l.opts.Now())
	if err := openSegmentFiles(l.fs, l.dir, s, true); err != nil {
		return nil, l.fail(storageError("create segment", err))
	}
	if l.opts.Preallocate {
		if err := s.log.Preallocate(0, l.opts.SegmentBytes); err != nil {
			s.removeFiles(l.fs, l.dir)
			return nil, l.fail(storageError("preallocate segment", err))
		}
	}

	l.mu.Lock()
	old.tidx = append(old.tidx, ix.newTidx...)
	old.tidxOnDisk = len(old.tidx)
	l.markUnsyncedLocked(old)
	l.mu.segs = append(l.mu.segs, s)
	l.mu.dirUnsynced = true
	l.mu.Unlock()
	l.logger.Debug("rolled segment", "base", base)
	if l.opts.OnRoll != nil {
		l.opts.OnRoll(base)
	}
	return s, nil
}

// Sync makes everything appended so far durable: it fsyncs every file
// written since the previous Sync (segments rolled meanwhile included) and
// the directory if segments were created or removed, then returns the end
// offset that is now durable. It does not block Append while it waits for
// the disk; concurrent Syncs run one after the other.
func (l *Log) Sync() (durable int64, err error) {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	return l.syncLocked()
}

// syncLocked is Sync with syncMu held.
func (l *Log) syncLocked() (int64, error) {
	l.mu.Lock()
	if err := l.usableLocked(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	end := l.mu.end
	segs := l.mu.unsynced
	l.mu.unsynced = nil
	for _, s := range segs {
		s.unsynced = false
	}
	active := l.mu.segs[len(l.mu.segs)-1]
	dirty := l.mu.dirUnsynced
	l.mu.dirUnsynced = false
	l.mu.Unlock()

	// Files stay open: only Truncate, Close and Delete close them, and they
	// hold syncMu. The active segment's indexes are not synced: recovery
	// always rebuilds the last segment's indexes from its data, and a roll
	// queues the segment again so its indexes are synced once it is sealed.
	// That saves two fsyncs per partition on every group commit.
	for _, s := range segs {
		files := []vfs.File{s.log, s.index, s.tindex}
		if s == active {
			files = files[:1]
		}
		for _, f := range files {
			if err := f.Sync(); err != nil {
				return 0, l.fail(storageError("sync", err))
			}
		}
	}
	if dirty {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return 0, l.fail(storageError("sync dir", err))
		}
	}
	return end, nil
}

// Close syncs and closes the log. Later calls return ErrClosed.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.RLock()
	closed, failed := l.mu.closed, l.mu.failed
	l.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	var first error
	if failed == nil {
		l.mu.RLock()
		active := l.mu.segs[len(l.mu.segs)-1]
		l.mu.RUnlock()
		if err := active.trimPadding(); err != nil {
			first = l.fail(storageError("trim segment", err))
		} else {
			_, first = l.syncLocked()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.closed = true
	for _, s := range l.mu.segs {
		if err := s.closeFiles(); err != nil && first == nil {
			first = storageError("close", err)
		}
	}
	// Files of deleted segments are removed now rather than left for the
	// next Open: no reader can be served from a closed log.
	for _, pd := range l.pending {
		pd.s.closeFiles()
		for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
			_ = l.fs.Remove(filepath.Join(l.dir, segmentName(pd.s.base, suf)+deletedSuffix))
		}
	}
	l.pending = nil
	return first
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	if l.mu.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.closed = true
	for _, s := range l.mu.segs {
		s.closeFiles()
	}
	for _, pd := range l.pending {
		pd.s.closeFiles()
	}
	l.pending = nil
	l.mu.Unlock()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return storageError("delete", err)
	}
	if err := l.fs.SyncDir(filepath.Dir(l.dir)); err != nil {
		return storageError("delete", err)
	}
	return nil
}

// Slice is a byte range [Pos, Pos+Size) of a segment file holding whole
// batches, as returned by Read. NextOffset is the offset to read next: the
// base offset of the first batch after the slice (with contiguous offsets,
// the last offset in the slice + 1), or the next segment's base offset when
// the slice ends its segment.
//
// File may be used directly (e.g. for sendfile, through *os.File methods so
// the descriptor stays guarded) but not closed.
type Slice struct {
	File       vfs.File
	Pos        int64
	Size       int
	NextOffset int64
}

// ReadInto appends the slice's bytes to dst with one pread. If the bytes
// were removed by a Truncate since Read, it fails with ErrClosed (segment
// removed) or ErrOffsetOutOfRange (segment shortened).
func (s Slice) ReadInto(dst []byte) ([]byte, error) {
	if s.Size == 0 {
		return dst, nil
	}
	n := len(dst)
	dst = append(dst, make([]byte, s.Size)...)
	k, err := s.File.ReadAt(dst[n:], s.Pos)
	if k < s.Size {
		if err == nil || err == io.EOF {
			// Only a Truncate shortens a segment.
			return dst[:n], fmt.Errorf("%w: segment truncated under the slice", ErrOffsetOutOfRange)
		}
		return dst[:n], readError(err)
	}
	return dst, nil
}

// readError classifies an error met while reading a segment.
func readError(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("%w: segment closed while reading", ErrClosed)
	}
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	return storageError("read", err)
}
