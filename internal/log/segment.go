package log

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// File name suffixes of a segment, Kafka's layout.
const (
	logSuffix       = ".log"
	indexSuffix     = ".index"
	timeIndexSuffix = ".timeindex"
	baseDigits      = 20

	offsetEntrySize = 8  // relative offset int32 + position int32
	timeEntrySize   = 12 // timestamp int64 + relative offset int32
)

// segmentName is the file name of the segment starting at base.
func segmentName(base int64, suffix string) string {
	return fmt.Sprintf("%0*d%s", baseDigits, base, suffix)
}

// parseSegmentName splits a file name of our layout into its base offset and
// suffix; ok is false for any other name.
func parseSegmentName(name string) (base int64, suffix string, ok bool) {
	if len(name) <= baseDigits {
		return 0, "", false
	}
	suffix = name[baseDigits:]
	if suffix != logSuffix && suffix != indexSuffix && suffix != timeIndexSuffix {
		return 0, "", false
	}
	for _, c := range name[:baseDigits] {
		if c < '0' || c > '9' {
			return 0, "", false
		}
	}
	base, err := strconv.ParseInt(name[:baseDigits], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return base, suffix, true
}

// offsetEntry is one sparse offset-index entry: the batch at pos has offsets
// up to base+off (Kafka records the batch's last offset).
type offsetEntry struct {
	off int32
	pos int32
}

// timeEntry is one time-index entry: ts is the largest timestamp of the
// segment up to some batch, first reached by the batch whose base offset is
// base+off. Every batch before that one has a smaller timestamp.
type timeEntry struct {
	ts  int64
	off int32
}

// segment is one .log file with its two sparse indexes.
//
// Invariants (all under Log.mu, written only by the appending goroutine):
//   - the bytes [0, size) of the .log file are whole batches written by a
//     finished Append, with offsets [base, next);
//   - every batch's last offset is at most base+math.MaxInt32, so that the
//     indexes' 32-bit relative offsets hold it (see fitsSegment);
//   - idx and tidx are strictly increasing (offsets and positions; timestamps
//     and offsets); their backing arrays are never changed below their length
//     once published (Truncate replaces them), so a reader may search a copy
//     of the slice header without the lock;
//   - idxOnDisk and tidxOnDisk entries of idx and tidx are in the index files.
type segment struct {
	base               int64
	log, index, tindex vfs.File
	logName            string

	size       int64
	next       int64
	idx        []offsetEntry
	tidx       []timeEntry
	idxOnDisk  int
	tidxOnDisk int
	// sinceIndex counts the bytes appended since the last offset-index entry.
	sinceIndex int64
	// maxTs is the largest batch MaxTimestamp in the segment (-1 if none)
	// and maxTsOff the base offset of the first batch that reached it.
	maxTs    int64
	maxTsOff int64
	// created is when the segment was created or reopened, for segment.ms.
	created time.Time
	// unsynced is set while the segment is listed in Log.mu.unsynced.
	unsynced bool
	// padded is set once a direct write may have left zeros after size
	// (up to the next vfs.DirectBlock); trimPadding cuts them.
	padded bool
}

// trimPadding truncates the .log file to size if direct writes may have
// padded it, so that a sealed or closed segment's file ends with its last
// batch. Called with appendMu held.
func (s *segment) trimPadding() error {
	if !s.padded {
		return nil
	}
	if err := s.log.Truncate(s.size); err != nil {
		return err
	}
	s.padded = false
	return nil
}

func newSegmentState(base int64, now time.Time) *segment {
	return &segment{base: base, next: base, maxTs: -1, maxTsOff: -1, created: now}
}

// openSegmentFiles opens (creating if missing) the three files of s.
func openSegmentFiles(fs vfs.FS, dir string, s *segment, create bool) error {
	open := fs.OpenReadWrite
	if create {
		open = fs.Create
	}
	s.logName = filepath.Join(dir, segmentName(s.base, logSuffix))
	var err error
	if s.log, err = open(s.logName); err != nil {
		return err
	}
	if s.index, err = open(filepath.Join(dir, segmentName(s.base, indexSuffix))); err != nil {
		s.closeFiles()
		return err
	}
	if s.tindex, err = open(filepath.Join(dir, segmentName(s.base, timeIndexSuffix))); err != nil {
		s.closeFiles()
		return err
	}
	return nil
}

// closeFiles closes whichever files are open and returns the first error.
func (s *segment) closeFiles() error {
	var first error
	for _, f := range []*vfs.File{&s.log, &s.index, &s.tindex} {
		if *f != nil {
			if err := (*f).Close(); err != nil && first == nil {
				first = err
			}
			*f = nil
		}
	}
	return first
}

// removeFiles deletes the three files of s (closed first).
func (s *segment) removeFiles(fs vfs.FS, dir string) error {
	s.closeFiles()
	var first error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		err := fs.Remove(filepath.Join(dir, segmentName(s.base, suf)))
		if err != nil && !os.IsNotExist(err) && first == nil {
			first = err
		}
	}
	return first
}

// fitsSegment reports whether every offset of the batch h lies within what
// a segment at base can address: base+math.MaxInt32 at most, the range of
// the indexes' 32-bit relative offsets, and below math.MaxInt64 so that the
// offset after it exists. Past that range a relative offset would wrap and
// break the order of the offset index, and reads would start at the wrong
// batch. h.BaseOffset >= base and h.LastOffsetDelta >= 0 are assumed; the
// test cannot overflow.
func fitsSegment(base int64, h *record.Header) bool {
	d := int64(h.LastOffsetDelta)
	return h.BaseOffset-base <= math.MaxInt32-d && h.BaseOffset < math.MaxInt64-d
}

// lastTimeTs is the timestamp of the last time-index entry, -1 if none.
func (s *segment) lastTimeTs() int64 {
	if len(s.tidx) == 0 {
		return -1
	}
	return s.tidx[len(s.tidx)-1].ts
}

// indexer computes the index entries for batches appended to a segment, the
// same way for Append, recovery and Truncate. It works on copies so that
// nothing is published before the caller takes Log.mu.
type indexer struct {
	base       int64
	interval   int64
	maxIdx     int
	maxTidx    int
	sinceIndex int64
	maxTs      int64
	maxTsOff   int64
	lastTs     int64
	nIdx       int
	nTidx      int
	newIdx     []offsetEntry
	newTidx    []timeEntry
}

func (s *segment) indexer(interval int64, maxIdx, maxTidx int) indexer {
	return indexer{
		base: s.base, interval: interval, maxIdx: maxIdx, maxTidx: maxTidx,
		sinceIndex: s.sinceIndex, maxTs: s.maxTs, maxTsOff: s.maxTsOff, lastTs: s.lastTimeTs(),
		nIdx: len(s.idx), nTidx: len(s.tidx),
	}
}

// add accounts for the batch h written at pos.
func (ix *indexer) add(h *record.Header, pos int64) {
	if h.MaxTimestamp > ix.maxTs {
		ix.maxTs, ix.maxTsOff = h.MaxTimestamp, h.BaseOffset
	}
	// An entry once more than interval bytes went by since the last one, as
	// Kafka does; a full index just grows sparser, and positions beyond int32
	// (a single huge append) go unindexed.
	if ix.sinceIndex > ix.interval && pos <= math.MaxInt32 {
		if ix.nIdx < ix.maxIdx {
			ix.newIdx = append(ix.newIdx, offsetEntry{off: int32(h.LastOffset() - ix.base), pos: int32(pos)})
			ix.nIdx++
		}
		ix.maybeTimeEntry()
		ix.sinceIndex = 0
	}
	ix.sinceIndex += int64(h.Size())
}

// maybeTimeEntry records the running maximum timestamp if it grew.
func (ix *indexer) maybeTimeEntry() {
	if ix.maxTs > ix.lastTs && ix.nTidx < ix.maxTidx {
		ix.newTidx = append(ix.newTidx, timeEntry{ts: ix.maxTs, off: int32(ix.maxTsOff - ix.base)})
		ix.nTidx++
		ix.lastTs = ix.maxTs
	}
}

// encodeOffsetEntries appends the on-disk form of es.
func encodeOffsetEntries(dst []byte, es []offsetEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.off))
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.pos))
	}
	return dst
}

// encodeTimeEntries appends the on-disk form of es.
func encodeTimeEntries(dst []byte, es []timeEntry) []byte {
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
		dst = binary.BigEndian.AppendUint32(dst, uint32(e.off))
	}
	return dst
}

// lookupPos returns the file position from which a scan finds the batch
// holding offset: the position of the last index entry whose offset is at
// most offset, or 0.
func lookupPos(base int64, idx []offsetEntry, offset int64) int64 {
	rel := offset - base
	i := sort.Search(len(idx), func(i int) bool { return int64(idx[i].off) > rel })
	if i == 0 {
		return 0
	}
	return int64(idx[i-1].pos)
}

// headerReader reads batch headers (and whole batches) from [0, limit) of a
// segment file through a window, so that walking many small batches costs
// few preads. Not safe for concurrent use.
type headerReader struct {
	f      io.ReaderAt
	limit  int64
	buf    []byte // window; len is the valid bytes, cap the window size
	bufPos int64  // file position of buf[0]
	big    []byte // for batches larger than the window
}

// readPool recycles the windows of readers on the fetch path.
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func newHeaderReader(f io.ReaderAt, limit int64, window []byte) *headerReader {
	return &headerReader{f: f, limit: limit, buf: window[:0]}
}

// errTorn reports a batch that does not fit in the readable part of a file.
var errTorn = fmt.Errorf("%w: batch runs past the end of the segment", ErrCorrupt)

// fill makes the window start at pos with as many bytes as fit.
func (r *headerReader) fill(pos int64) error {
	n := min(int64(cap(r.buf)), r.limit-pos)
	r.buf = r.buf[:n]
	k, err := r.f.ReadAt(r.buf, pos)
	r.bufPos = pos
	if int64(k) < n {
		r.buf = r.buf[:k]
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}

// window returns [pos, pos+n) if it can be had through the window.
func (r *headerReader) window(pos int64, n int) ([]byte, error) {
	if pos < r.bufPos || pos+int64(n) > r.bufPos+int64(len(r.buf)) {
		if err := r.fill(pos); err != nil {
			return nil, err
		}
	}
	return r.buf[pos-r.bufPos : pos-r.bufPos+int64(n)], nil
}

// header decodes the header of the batch at pos and checks that the batch is
// plausible and lies within the limit.
func (r *headerReader) header(pos int64) (record.Header, error) {
	if pos+record.HeaderSize > r.limit {
		return record.Header{}, errTorn
	}
	b, err := r.window(pos, record.HeaderSize)
	if err != nil {
		return record.Header{}, err
	}
	h, _ := record.ParseHeader(b)
	if h.Magic != 2 {
		return h, fmt.Errorf("%w: magic %d at position %d", ErrCorrupt, h.Magic, pos)
	}
	if h.Size() < record.HeaderSize || h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: batch length %d, last offset delta %d at position %d", ErrCorrupt, h.BatchLength, h.LastOffsetDelta, pos)
	}
	if pos+int64(h.Size()) > r.limit {
		return h, errTorn
	}
	return h, nil
}

// batch returns the size bytes at pos; the slice is valid until the next
// call.
func (r *headerReader) batch(pos int64, size int) ([]byte, error) {
	if size <= cap(r.buf) {
		return r.window(pos, size)
	}
	if cap(r.big) < size {
		r.big = make([]byte, size)
	}
	b := r.big[:size]
	if k, err := r.f.ReadAt(b, pos); k < size {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}
