package log

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"testing"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// segFile is the path of a file of the segment at base.
func segFile(base int64, suffix string) string {
	return filepath.Join(testDir, segmentName(base, suffix))
}

// editFile applies fn to the current content of name and writes the result.
func editFile(t *testing.T, fs vfs.FS, name string, fn func([]byte) []byte) {
	t.Helper()
	f, err := fs.OpenReadWrite(name)
	must(t, err)
	fi, err := f.Stat()
	must(t, err)
	b := make([]byte, fi.Size())
	_, _ = f.ReadAt(b, 0)
	b = fn(b)
	must(t, f.Truncate(0))
	_, err = f.WriteAt(b, 0)
	must(t, err)
	must(t, f.Close())
}

func TestRecoverTail(t *testing.T) {
	next := makeBatch(t, 10, batchSpec{n: 2, value: 30})
	tests := []struct {
		name string
		edit func(b []byte, last []byte) []byte
		keep int // batches of the model kept
	}{
		{"clean", func(b, _ []byte) []byte { return b }, 5},
		{"half a batch", func(b, _ []byte) []byte { return append(b, next[:len(next)/2]...) }, 5},
		{"a header only", func(b, _ []byte) []byte { return append(b, next[:record.HeaderSize]...) }, 5},
		{"a few bytes", func(b, _ []byte) []byte { return append(b, 0, 0, 0) }, 5},
		{"zeros", func(b, _ []byte) []byte { return append(b, make([]byte, 4096)...) }, 5},
		{"garbage", func(b, _ []byte) []byte {
			g := make([]byte, 500)
			rand.New(rand.NewSource(1)).Read(g)
			return append(b, g...)
		}, 5},
		{"flipped byte in last batch", func(b, last []byte) []byte {
			b[len(b)-len(last)+record.HeaderSize+3] ^= 0xff
			return b
		}, 4},
		{"flipped byte in first batch", func(b, _ []byte) []byte {
			b[record.HeaderSize+1] ^= 0x01
			return b
		}, 0},
		{"bad magic in last batch", func(b, last []byte) []byte {
			b[len(b)-len(last)+16] = 1
			return b
		}, 4},
		{"offsets going back", func(b, _ []byte) []byte {
			return append(b, makeBatch(t, 3, batchSpec{n: 1})...)
		}, 5},
		{"huge batch length", func(b, _ []byte) []byte {
			x := slices.Clone(next)
			binary.BigEndian.PutUint32(x[8:], 1<<30)
			return append(b, x...)
		}, 5},
		{"negative batch length", func(b, _ []byte) []byte {
			x := slices.Clone(next)
			binary.BigEndian.PutUint32(x[8:], 0xfffffff0)
			return append(b, x...)
		}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			l := openLog(t, fs, Options{IndexIntervalBytes: 50})
			var m model
			for range 5 {
				appendBatches(t, l, &m, batchSpec{n: 2, ts: 5, value: 30})
			}
			must(t, l.Close())
			last := m.batches[len(m.batches)-1]
			editFile(t, fs, segFile(0, logSuffix), func(b []byte) []byte { return tc.edit(b, last) })

			l = openLog(t, fs, Options{IndexIntervalBytes: 50})
			m.batches, m.bases = m.batches[:tc.keep], m.bases[:tc.keep]
			m.end = 2 * int64(tc.keep)
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			fi, err := fs.Stat(segFile(0, logSuffix))
			must(t, err)
			if fi.Size() != int64(len(m.bytes())) {
				t.Fatalf("segment file has %d bytes, want the cut at %d", fi.Size(), len(m.bytes()))
			}
			appendBatches(t, l, &m, batchSpec{n: 3, value: 10})
			checkLog(t, l, &m)
			// The repair is durable.
			l2 := openLog(t, fs.CrashClone(), Options{})
			m2 := m
			m2.batches, m2.end = m2.batches[:tc.keep], 2*int64(tc.keep)
			checkLog(t, l2, &m2)
			must(t, l.Close())
		})
	}
}

// multiSegmentLog builds a log of several segments, closes it and returns
// its model and the segment bases.
func multiSegmentLog(t *testing.T, fs vfs.FS, o Options) (model, []int64) {
	t.Helper()
	l := openLog(t, fs, o)
	var m model
	rng := rand.New(rand.NewSource(11))
	for range 60 {
		appendBatches(t, l, &m, randSpec(rng))
	}
	must(t, l.Close())
	names, err := fs.List(testDir)
	must(t, err)
	var bases []int64
	for _, n := range names {
		if b, suf, ok := parseSegmentName(n); ok && suf == logSuffix {
			bases = append(bases, b)
		}
	}
	if len(bases) < 3 {
		t.Fatalf("only %d segments", len(bases))
	}
	return m, bases
}

func TestRecoverSealedIndexes(t *testing.T) {
	o := Options{SegmentBytes: 2000, IndexIntervalBytes: 150}
	be := binary.BigEndian
	tests := []struct {
		name   string
		suffix string
		edit   func(b []byte) []byte
		remove bool
	}{
		{name: "offset index missing", suffix: indexSuffix, remove: true},
		{name: "time index missing", suffix: timeIndexSuffix, remove: true},
		{name: "offset index partial entry", suffix: indexSuffix, edit: func(b []byte) []byte {
			if len(b) == 0 {
				return []byte{1, 2, 3}
			}
			return b[:len(b)-3]
		}},
		{name: "time index partial entry", suffix: timeIndexSuffix, edit: func(b []byte) []byte { return append(b, 1) }},
		{name: "offset index not monotonic", suffix: indexSuffix, edit: func(b []byte) []byte {
			if len(b) < 16 {
				return be.AppendUint64(be.AppendUint64(b, 1<<32|1), 0)
			}
			be.PutUint32(b[8:], 0)
			return b
		}},
		{name: "offset index past the segment", suffix: indexSuffix, edit: func(b []byte) []byte {
			return be.AppendUint32(be.AppendUint32(b, 1000), 1<<20)
		}},
		{name: "offset index pointing inside a batch", suffix: indexSuffix, edit: func(b []byte) []byte {
			if len(b) == 0 {
				return be.AppendUint64(b, 1)
			}
			be.PutUint32(b[len(b)-4:], be.Uint32(b[len(b)-4:])+1)
			return b
		}},
		{name: "time index not monotonic", suffix: timeIndexSuffix, edit: func(b []byte) []byte {
			return append(b, b[:12]...) // every sealed segment has a time entry
		}},
		{name: "time index past the segment", suffix: timeIndexSuffix, edit: func(b []byte) []byte {
			return be.AppendUint32(be.AppendUint64(b, 1<<40), 5000)
		}},
		{name: "indexes emptied", suffix: indexSuffix, edit: func([]byte) []byte { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			m, bases := multiSegmentLog(t, fs, o)
			ref := openLog(t, fs.CrashClone(), o)
			for _, base := range bases[:len(bases)-1] {
				name := segFile(base, tc.suffix)
				if tc.remove {
					must(t, fs.Remove(name))
				} else {
					editFile(t, fs, name, tc.edit)
				}
			}
			l := openLog(t, fs, o)
			defer l.Close()
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			for target := int64(900); target < 2100; target += 7 {
				o1, t1, ok1, err1 := ref.OffsetForTimestamp(target)
				o2, t2, ok2, err2 := l.OffsetForTimestamp(target)
				if o1 != o2 || t1 != t2 || ok1 != ok2 || err1 != nil || err2 != nil {
					t.Fatalf("OffsetForTimestamp(%d) = %d %d %v %v, want %d %d %v", target, o2, t2, ok2, err2, o1, t1, ok1)
				}
			}
			checkMaxTimestamp(t, l, &m)
		})
	}
}

func TestRecoverDamagedSealedSegment(t *testing.T) {
	o := Options{SegmentBytes: 2000, IndexIntervalBytes: 150}
	fs := vfs.NewMem()
	m, bases := multiSegmentLog(t, fs, o)
	// Cut the middle of the second segment's last batch: everything from
	// that batch on is gone, later segments included.
	editFile(t, fs, segFile(bases[1], logSuffix), func(b []byte) []byte { return b[:len(b)-7] })
	l := openLog(t, fs, o)
	defer l.Close()
	m.truncate(bases[2] - 1)
	checkLog(t, l, &m)
	if l.NumSegments() != 2 {
		t.Fatalf("%d segments, want 2", l.NumSegments())
	}
	for _, b := range bases[2:] {
		if _, err := fs.Stat(segFile(b, logSuffix)); err == nil {
			t.Fatalf("segment %d after the damaged one survived", b)
		}
	}
	appendBatches(t, l, &m, batchSpec{n: 2})
	checkLog(t, l, &m)
}

func TestRecoverDirectoryContents(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{})
	var m model
	appendBatches(t, l, &m, batchSpec{n: 2}, batchSpec{n: 2})
	must(t, l.Close())
	write := func(name string, b []byte) {
		f, err := fs.Create(filepath.Join(testDir, name))
		must(t, err)
		_, err = f.Write(b)
		must(t, err)
		must(t, f.Close())
	}
	write("notes.txt", []byte("hello"))
	write("leader-epoch-checkpoint", []byte("0\n"))
	write(segmentName(999, indexSuffix), make([]byte, 16))     // orphan
	write(segmentName(999, timeIndexSuffix), make([]byte, 12)) // orphan
	write(segmentName(4, logSuffix), nil)                      // empty trailing segment at the end offset

	l = openLog(t, fs, Options{})
	checkLog(t, l, &m)
	if l.NumSegments() != 2 {
		t.Fatalf("%d segments, want the empty trailing one kept", l.NumSegments())
	}
	appendBatches(t, l, &m, batchSpec{n: 1})
	checkLog(t, l, &m)
	must(t, l.Close())
	names, err := fs.List(testDir)
	must(t, err)
	for _, want := range []string{"notes.txt", "leader-epoch-checkpoint", segmentName(4, indexSuffix)} {
		if !slices.Contains(names, want) {
			t.Errorf("%s missing: %v", want, names)
		}
	}
	if slices.Contains(names, segmentName(999, indexSuffix)) {
		t.Error("orphan index file kept")
	}

	// An empty last segment past a gap is dropped: the log ends where the
	// data ends.
	write(segmentName(50, logSuffix), nil)
	l = openLog(t, fs, Options{})
	defer l.Close()
	checkLog(t, l, &m)
	if _, err := fs.Stat(segFile(50, logSuffix)); err == nil {
		t.Error("empty segment past the end kept")
	}
}

// TestRecoverBatchOutOfSegmentRange covers batches whose offsets a segment
// cannot address. The CRC does not cover a batch's base offset, so a flipped
// high bit there passes every other check. Recovery used to keep such a
// batch, so EndOffset jumped to its bogus offsets, and gave it an
// offset-index entry whose 32-bit relative offset could wrap negative: Read
// from the segment's first offset then started at that entry and silently
// skipped every batch before it (the file itself was intact). Near the top
// of int64 the batch's last offset wrapped too and the end offset went
// negative. Append never writes such a batch, so recovery now cuts the
// segment there.
func TestRecoverBatchOutOfSegmentRange(t *testing.T) {
	o := Options{IndexIntervalBytes: 50}
	tests := []struct {
		name    string
		setBase func(int64) int64
	}{
		{"bit 31 flipped: relative offset wraps negative", func(b int64) int64 { return b | 1<<31 }},
		{"bit 40 flipped: relative offset wraps to a plausible one", func(b int64) int64 { return b | 1<<40 }},
		{"last offset past the top of int64", func(int64) int64 { return math.MaxInt64 - 1 }},
	}
	for _, tc := range tests {
		t.Run("active segment/"+tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			l := openLog(t, fs, o)
			var m model
			for range 5 {
				appendBatches(t, l, &m, batchSpec{n: 2, ts: 5, value: 30})
			}
			must(t, l.Close())
			editFile(t, fs, segFile(0, logSuffix), func(b []byte) []byte {
				pos := batchPositions(t, b)[2]
				h, _ := record.ParseHeader(b[pos:])
				record.SetBaseOffset(b[pos:], tc.setBase(h.BaseOffset))
				return b
			})
			l = openLog(t, fs, o)
			defer l.Close()
			m.truncate(m.bases[2])
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			fi, err := fs.Stat(segFile(0, logSuffix))
			must(t, err)
			if fi.Size() != int64(len(m.bytes())) {
				t.Fatalf("segment file has %d bytes, want the cut at %d", fi.Size(), len(m.bytes()))
			}
			appendBatches(t, l, &m, batchSpec{n: 3})
			checkLog(t, l, &m)
		})
		t.Run("sealed segment/"+tc.name, func(t *testing.T) {
			o := Options{SegmentBytes: 2000, IndexIntervalBytes: 150}
			fs := vfs.NewMem()
			m, bases := multiSegmentLog(t, fs, o)
			var cutAt int64
			editFile(t, fs, segFile(bases[1], logSuffix), func(b []byte) []byte {
				ps := batchPositions(t, b)
				pos := ps[len(ps)-1]
				h, _ := record.ParseHeader(b[pos:])
				cutAt = h.BaseOffset
				record.SetBaseOffset(b[pos:], tc.setBase(h.BaseOffset))
				return b
			})
			l := openLog(t, fs, o)
			defer l.Close()
			m.truncate(cutAt)
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			if l.NumSegments() != 2 {
				t.Fatalf("%d segments, want 2", l.NumSegments())
			}
		})
	}
}

// validPrefix is what recovery must keep of a segment at base holding b:
// the longest run of whole batches with magic 2, a valid CRC, offsets that
// never go back and that the segment can address. It returns the run's
// length and end offset.
func validPrefix(b []byte, base int64) (int, int64) {
	pos, next := 0, base
	for {
		h, err := record.ParseHeader(b[pos:])
		if err != nil || h.Magic != 2 || h.LastOffsetDelta < 0 || record.VerifyCRC(b[pos:]) != nil ||
			h.BaseOffset < next || h.BaseOffset-base > math.MaxInt32-int64(h.LastOffsetDelta) ||
			h.BaseOffset >= math.MaxInt64-int64(h.LastOffsetDelta) {
			return pos, next
		}
		pos += h.Size()
		next = h.LastOffset() + 1
	}
}

// FuzzRecover opens a log whose only segment holds arbitrary bytes: Open
// must not panic and must leave exactly the valid prefix of the segment,
// served back byte for byte, in a log that accepts appends and reopens to
// the same content.
func FuzzRecover(f *testing.F) {
	seed := makeBatch(f, 0, batchSpec{n: 3, value: 10})
	seed = append(seed, makeBatch(f, 3, batchSpec{n: 1, value: 0, codec: record.Snappy})...)
	f.Add(seed)
	f.Add(seed[:len(seed)-5])
	f.Add(append(slices.Clone(seed), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte{})
	f.Add(make([]byte, 200))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		must(t, fs.MkdirAll(testDir, 0o755))
		fl, err := fs.Create(segFile(0, logSuffix))
		must(t, err)
		_, err = fl.Write(data)
		must(t, err)
		must(t, fl.Close())

		l, err := Open(testDir, Options{FS: fs, IndexIntervalBytes: 64})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		got := readAllLog(t, l, 1<<20)
		if err := verifyBatches(got); err != nil {
			t.Fatal(err)
		}
		n, wantEnd := validPrefix(data, 0)
		if end := l.EndOffset(); !bytes.Equal(got, data[:n]) || end != wantEnd {
			t.Fatalf("log serves %d bytes (a prefix of the segment: %v) up to offset %d, want the %d-byte valid prefix up to %d",
				len(got), bytes.HasPrefix(data, got), end, n, wantEnd)
		}
		end := l.EndOffset()
		b := makeBatch(t, end, batchSpec{n: 2})
		must(t, l.Append(b))
		want := append(slices.Clone(got), b...)
		must(t, l.Close())
		l, err = Open(testDir, Options{FS: fs, IndexIntervalBytes: 64})
		must(t, err)
		if again := readAllLog(t, l, 1<<20); !bytes.Equal(again, want) {
			t.Fatalf("reopen gives %d bytes, want %d", len(again), len(want))
		}
		must(t, l.Close())
	})
}
