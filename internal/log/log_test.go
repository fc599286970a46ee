package log

import (
	"bytes"
	"errors"
	"math"
	"math/rand"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

func TestAppendReadRoll(t *testing.T) {
	tests := []struct {
		name string
		opts func(c *clock) Options
		// step runs between appends, e.g. to move the clock.
		step         func(c *clock, l *Log, i int)
		wantSegments int // minimum
	}{
		{
			name:         "one segment",
			opts:         func(*clock) Options { return Options{} },
			wantSegments: 1,
		},
		{
			name:         "roll by size",
			opts:         func(*clock) Options { return Options{SegmentBytes: 2000, IndexIntervalBytes: 300} },
			wantSegments: 5,
		},
		{
			name: "roll by time",
			opts: func(*clock) Options { return Options{SegmentMs: 1000, IndexIntervalBytes: 100} },
			step: func(c *clock, _ *Log, i int) {
				if i%10 == 9 {
					c.advance(1001 * time.Millisecond)
				}
			},
			wantSegments: 5,
		},
		{
			name:         "roll by full index",
			opts:         func(*clock) Options { return Options{SegmentIndexBytes: 40, IndexIntervalBytes: 1} },
			wantSegments: 5,
		},
		{
			name: "roll by MaybeRoll",
			opts: func(*clock) Options { return Options{SegmentMs: 1000} },
			step: func(c *clock, l *Log, i int) {
				if i%10 == 9 {
					c.advance(2 * time.Second)
					if err := l.MaybeRoll(); err != nil {
						panic(err)
					}
				}
			},
			wantSegments: 5,
		},
		{
			name:         "preallocated segments",
			opts:         func(*clock) Options { return Options{SegmentBytes: 3000, Preallocate: true} },
			wantSegments: 3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			c := newClock()
			o := tc.opts(c)
			o.Now = c.Now
			l := openLog(t, fs, o)
			var m model
			rng := rand.New(rand.NewSource(1))
			for i := range 60 {
				appendBatches(t, l, &m, randSpec(rng))
				if tc.step != nil {
					tc.step(c, l, i)
				}
			}
			if n := l.NumSegments(); n < tc.wantSegments {
				t.Fatalf("%d segments, want at least %d", n, tc.wantSegments)
			}
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			if got := readAllLog(t, l, 1); !bytes.Equal(got, m.bytes()) {
				t.Fatal("reading one batch at a time differs")
			}
			if l.Size() != int64(len(m.bytes())) {
				t.Fatalf("Size = %d, want %d", l.Size(), len(m.bytes()))
			}

			// Reopen: sealed segments load their index files.
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Read(0, 1, 1, true); !errors.Is(err, ErrClosed) {
				t.Fatalf("Read after Close: %v", err)
			}
			l = openLog(t, fs, o)
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			appendBatches(t, l, &m, randSpec(rng), randSpec(rng))
			checkLog(t, l, &m)
			// A crash after Sync loses nothing.
			_, err := l.Sync()
			must(t, err)
			l2 := openLog(t, fs.CrashClone(), o)
			checkLog(t, l2, &m)
			must(t, l.Close())
		})
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkEveryOffset reads from every offset and checks that the slice starts
// with the batch holding it.
func checkEveryOffset(t *testing.T, l *Log, m *model) {
	t.Helper()
	for i, b := range m.batches {
		h, _ := record.ParseHeader(b)
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			s, err := l.Read(off, m.end, len(b), false)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			got, err := s.ReadInto(nil)
			must(t, err)
			if !bytes.Equal(got, b) {
				t.Fatalf("Read(%d) returned %d bytes, want batch %d (%d bytes)", off, len(got), i, len(b))
			}
			if s.NextOffset != h.LastOffset()+1 {
				t.Fatalf("Read(%d).NextOffset = %d, want %d", off, s.NextOffset, h.LastOffset()+1)
			}
		}
	}
}

func TestReadLimits(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{SegmentBytes: 1000, IndexIntervalBytes: 1})
	defer l.Close()
	var m model
	// Batches of about 150 bytes: 6 per segment.
	for range 20 {
		appendBatches(t, l, &m, batchSpec{n: 2, ts: 10, value: 40})
	}
	big := makeBatch(t, l.EndOffset(), batchSpec{n: 3, value: 2000})
	must(t, l.Append(big))
	m.add(big)
	size := len(m.batches[0])

	tests := []struct {
		name      string
		off, maxO int64
		maxBytes  int
		minOne    bool
		want      []int // batch indexes returned
		next      int64
		err       error
	}{
		{name: "below start", off: -1, maxO: 100, maxBytes: 1 << 20, err: ErrOffsetOutOfRange},
		{name: "past end", off: m.end + 1, maxO: m.end + 5, maxBytes: 1 << 20, err: ErrOffsetOutOfRange},
		{name: "at end", off: m.end, maxO: m.end + 5, maxBytes: 1 << 20, next: m.end},
		{name: "at maxOffset", off: 4, maxO: 4, maxBytes: 1 << 20, next: 4},
		{name: "maxOffset cut", off: 0, maxO: 5, maxBytes: 1 << 20, want: []int{0, 1, 2}, next: 6},
		{name: "maxOffset inside first batch", off: 2, maxO: 3, maxBytes: 1 << 20, want: []int{1}, next: 4},
		{name: "maxBytes cut", off: 0, maxO: 100, maxBytes: 2*size + size/2, want: []int{0, 1}, next: 4},
		{name: "maxBytes exact", off: 0, maxO: 100, maxBytes: 3 * size, want: []int{0, 1, 2}, next: 6},
		{name: "first batch too big, minOne", off: 0, maxO: 100, maxBytes: 10, minOne: true, want: []int{0}, next: 2},
		{name: "first batch too big, no minOne", off: 0, maxO: 100, maxBytes: 10, next: 0},
		{name: "zero maxBytes, minOne", off: 1, maxO: 100, maxBytes: 0, minOne: true, want: []int{0}, next: 2},
		{name: "segment end gives next base", off: 0, maxO: 100, maxBytes: 1 << 20, want: []int{0, 1, 2, 3, 4, 5}, next: 12},
		{name: "second segment", off: 13, maxO: 100, maxBytes: 1 << 20, want: []int{6, 7, 8, 9, 10, 11}, next: 24},
		{name: "huge last batch with minOne", off: 40, maxO: 100, maxBytes: 100, minOne: true, want: []int{20}, next: 43},
		{name: "huge last batch without minOne", off: 41, maxO: 100, maxBytes: 100, next: 41},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := l.Read(tc.off, tc.maxO, tc.maxBytes, tc.minOne)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			must(t, err)
			var want []byte
			for _, i := range tc.want {
				want = append(want, m.batches[i]...)
			}
			got, err := s.ReadInto(nil)
			must(t, err)
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want batches %v (%d bytes)", len(got), tc.want, len(want))
			}
			if s.NextOffset != tc.next {
				t.Fatalf("NextOffset = %d, want %d", s.NextOffset, tc.next)
			}
		})
	}
}

// TestAppendWithGaps: batches may start past the end offset, as a compacted leader's do
// when a follower copies them; reads skip the gaps.
func TestAppendWithGaps(t *testing.T) {
	l := openLog(t, vfs.NewMem(), Options{})
	defer l.Close()
	must(t, l.Append(append(makeBatch(t, 3, batchSpec{n: 2}), makeBatch(t, 9, batchSpec{n: 1})...)))
	if l.EndOffset() != 10 {
		t.Fatalf("end offset %d, want 10", l.EndOffset())
	}
	if err := l.Append(makeBatch(t, 9, batchSpec{n: 1})); !errors.Is(err, ErrInvalidAppend) {
		t.Fatalf("batch below the end: err = %v, want ErrInvalidAppend", err)
	}
	s, err := l.Read(5, l.EndOffset(), 1<<20, true)
	must(t, err)
	if s.Size == 0 || s.NextOffset != 10 {
		t.Fatalf("read from the gap: %d bytes, next %d", s.Size, s.NextOffset)
	}
}

func TestInvalidAppend(t *testing.T) {
	l := openLog(t, vfs.NewMem(), Options{})
	defer l.Close()
	b0 := makeBatch(t, 0, batchSpec{n: 3})
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", b0[:len(b0)-1]},
		{"trailing bytes", append(slices.Clone(b0), 1, 2, 3)},
		{"overlapping batches", append(slices.Clone(b0), makeBatch(t, 2, batchSpec{})...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := l.Append(tc.data); !errors.Is(err, ErrInvalidAppend) {
				t.Fatalf("err = %v, want ErrInvalidAppend", err)
			}
			if l.EndOffset() != 0 || l.Size() != 0 {
				t.Fatal("a rejected append changed the log")
			}
		})
	}
	// Several contiguous batches in one append are fine.
	multi := append(slices.Clone(b0), makeBatch(t, 3, batchSpec{n: 2})...)
	must(t, l.Append(multi))
	if l.EndOffset() != 5 {
		t.Fatalf("EndOffset = %d", l.EndOffset())
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{SegmentBytes: 1500, IndexIntervalBytes: 200})
	defer l.Close()
	var m model
	rng := rand.New(rand.NewSource(7))
	// type of timestamps per record, for the oracle
	type rec struct{ off, ts int64 }
	var recs []rec
	for i := range 80 {
		sp := batchSpec{n: 1 + rng.Intn(4), ts: int64(1000 + i*10 + rng.Intn(30) - 15), tsInc: rng.Int63n(7) - 3, value: 50}
		switch i % 7 {
		case 3:
			sp.codec = record.Gzip
		case 5:
			sp.codec = record.LZ4
		}
		b := makeBatch(t, l.EndOffset(), sp)
		h, _ := record.ParseHeader(b)
		if i%11 == 4 {
			record.SetLogAppendTime(b, 1000+int64(i)*10)
			h, _ = record.ParseHeader(b)
			for j := range sp.n {
				recs = append(recs, rec{h.BaseOffset + int64(j), h.MaxTimestamp})
			}
		} else {
			for j := range sp.n {
				recs = append(recs, rec{h.BaseOffset + int64(j), sp.ts + int64(j)*sp.tsInc})
			}
		}
		must(t, l.Append(b))
		m.add(b)
	}
	if l.NumSegments() < 3 {
		t.Fatalf("only %d segments", l.NumSegments())
	}
	oracle := func(target int64) (int64, int64, bool) {
		for _, r := range recs {
			if r.ts >= target {
				return r.off, r.ts, true
			}
		}
		return -1, -1, false
	}
	check := func(l *Log) {
		t.Helper()
		for target := int64(900); target <= 2000; target += 3 {
			wo, wt, wok := oracle(target)
			off, ts, ok, err := l.OffsetForTimestamp(target)
			must(t, err)
			if off != wo || ts != wt || ok != wok {
				t.Fatalf("OffsetForTimestamp(%d) = %d %d %v, want %d %d %v", target, off, ts, ok, wo, wt, wok)
			}
		}
		maxR := rec{-1, -1}
		for _, r := range recs {
			if r.ts > maxR.ts {
				maxR = r
			}
		}
		if ts, off := l.MaxTimestamp(); ts != maxR.ts || off != maxR.off {
			t.Fatalf("MaxTimestamp = %d@%d, want %d@%d", ts, off, maxR.ts, maxR.off)
		}
	}
	check(l)
	must(t, l.Close())
	l = openLog(t, fs, Options{SegmentBytes: 1500, IndexIntervalBytes: 200})
	check(l)
}

func TestMaxTimestampEmpty(t *testing.T) {
	l := openLog(t, vfs.NewMem(), Options{})
	defer l.Close()
	if ts, off := l.MaxTimestamp(); ts != -1 || off != -1 {
		t.Fatalf("MaxTimestamp of empty log = %d, %d", ts, off)
	}
	if _, _, ok, err := l.OffsetForTimestamp(0); ok || err != nil {
		t.Fatalf("OffsetForTimestamp on empty log: %v %v", ok, err)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name    string
		to      func(m *model) int64
		wantEnd func(m *model) int64
	}{
		{"to end does nothing", func(m *model) int64 { return m.end }, func(m *model) int64 { return m.end }},
		{"past end does nothing", func(m *model) int64 { return m.end + 10 }, func(m *model) int64 { return m.end }},
		{"last batch", func(m *model) int64 { return m.bases[len(m.bases)-1] }, func(m *model) int64 { return m.bases[len(m.bases)-1] }},
		{"middle of a batch", func(m *model) int64 { return m.bases[30] + 1 }, func(m *model) int64 { return m.bases[30] }},
		{"early segment", func(m *model) int64 { return m.bases[3] }, func(m *model) int64 { return m.bases[3] }},
		{"to zero", func(*model) int64 { return 0 }, func(*model) int64 { return 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			o := Options{SegmentBytes: 1200, IndexIntervalBytes: 100}
			l := openLog(t, fs, o)
			var m model
			rng := rand.New(rand.NewSource(3))
			for range 50 {
				appendBatches(t, l, &m, randSpec(rng))
			}
			_, err := l.Sync()
			must(t, err)
			to, wantEnd := tc.to(&m), tc.wantEnd(&m)
			// A slice of the last segment taken before the truncation.
			old, err := l.Read(m.bases[len(m.bases)-1], m.end, 1<<20, true)
			must(t, err)
			endBefore := m.end
			must(t, l.Truncate(to))
			m.truncate(to)
			if l.EndOffset() != wantEnd {
				t.Fatalf("EndOffset = %d, want %d", l.EndOffset(), wantEnd)
			}
			// A slice of cut bytes fails cleanly: ErrClosed if its segment
			// was removed, ErrOffsetOutOfRange if it was shortened.
			_, err = old.ReadInto(nil)
			switch {
			case to >= endBefore && err != nil:
				t.Fatalf("reading an untouched slice: %v", err)
			case to < endBefore && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrOffsetOutOfRange):
				t.Fatalf("reading a slice of cut bytes: %v", err)
			}
			checkLog(t, l, &m)
			if ts, _ := l.MaxTimestamp(); len(m.batches) == 0 && ts != -1 {
				t.Fatalf("MaxTimestamp after truncating everything = %d", ts)
			}
			checkMaxTimestamp(t, l, &m)
			// Appends continue after the cut; a crash keeps the cut.
			appendBatches(t, l, &m, randSpec(rng), randSpec(rng))
			checkLog(t, l, &m)
			checkEveryOffset(t, l, &m)
			_, err = l.Sync()
			must(t, err)
			l2 := openLog(t, fs.CrashClone(), o)
			checkLog(t, l2, &m)
			checkMaxTimestamp(t, l2, &m)
			must(t, l.Close())
		})
	}
}

func TestResetAndTruncateBelowStart(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{})
	var m model
	appendBatches(t, l, &m, batchSpec{n: 3}, batchSpec{n: 3})
	must(t, l.ResetTo(100))
	if l.StartOffset() != 100 || l.EndOffset() != 100 || l.Size() != 0 {
		t.Fatalf("log is [%d, %d) size %d after ResetTo(100)", l.StartOffset(), l.EndOffset(), l.Size())
	}
	if _, err := l.Read(99, 200, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Read below the new start: %v", err)
	}
	m = model{}
	appendBatches(t, l, &m, batchSpec{n: 2}, batchSpec{n: 2})
	// ResetTo is durable, and the new start survives a crash.
	l2 := openLog(t, fs.CrashClone(), Options{})
	if l2.StartOffset() != 100 || l2.EndOffset() != 100 {
		t.Fatalf("after crash: [%d, %d)", l2.StartOffset(), l2.EndOffset())
	}
	must(t, l.Close())
	l = openLog(t, fs, Options{})
	if l.StartOffset() != 100 || l.EndOffset() != 104 {
		t.Fatalf("after reopen: [%d, %d)", l.StartOffset(), l.EndOffset())
	}
	names, err := fs.List(testDir)
	must(t, err)
	if want := []string{segmentName(100, indexSuffix), segmentName(100, logSuffix), segmentName(100, timeIndexSuffix), startCheckpointFile}; !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	must(t, l.Truncate(50))
	if l.StartOffset() != 50 || l.EndOffset() != 50 {
		t.Fatalf("log is [%d, %d) after truncating below start", l.StartOffset(), l.EndOffset())
	}
	if err := l.Truncate(-1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Truncate(-1): %v", err)
	}
	must(t, l.Close())
}

// checkMaxTimestamp compares MaxTimestamp with the model's batches.
func checkMaxTimestamp(t *testing.T, l *Log, m *model) {
	t.Helper()
	wantTs, wantOff := int64(-1), int64(-1)
	for _, b := range m.batches {
		recs, err := record.Records(b, 0)
		must(t, err)
		h, _ := record.ParseHeader(b)
		for _, r := range recs {
			if ts := h.FirstTimestamp + r.TimestampDelta; ts > wantTs {
				wantTs, wantOff = ts, h.BaseOffset+int64(r.OffsetDelta)
			}
		}
	}
	if ts, off := l.MaxTimestamp(); ts != wantTs || off != wantOff {
		t.Fatalf("MaxTimestamp = %d@%d, want %d@%d", ts, off, wantTs, wantOff)
	}
}

func TestDelete(t *testing.T) {
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{})
	appendBatches(t, l, &model{}, batchSpec{n: 2})
	must(t, l.Delete())
	if _, err := fs.Stat(testDir); err == nil {
		t.Fatal("directory survived Delete")
	}
	if err := l.Append(makeBatch(t, 2, batchSpec{})); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Delete: %v", err)
	}
	if _, err := fs.CrashClone().Stat(testDir); err == nil {
		t.Fatal("Delete was not durable")
	}
}

func TestOpenRealFS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p-0")
	o := Options{FS: vfs.Default, SegmentBytes: 4096, Preallocate: true}
	l, err := Open(dir, o)
	must(t, err)
	var m model
	rng := rand.New(rand.NewSource(5))
	for range 40 {
		appendBatches(t, l, &m, randSpec(rng))
	}
	_, err = l.Sync()
	must(t, err)
	checkLog(t, l, &m)
	s, err := l.Read(0, m.end, 1<<20, true)
	must(t, err)
	if s.File.Fd() == vfs.InvalidFd {
		t.Fatal("segment on the real FS has no descriptor")
	}
	must(t, l.Close())
	l, err = Open(dir, o)
	must(t, err)
	checkLog(t, l, &m)
	must(t, l.Delete())
}

func TestScanHeaders(t *testing.T) {
	l := openLog(t, vfs.NewMem(), Options{SegmentBytes: 1000, IndexIntervalBytes: 100})
	defer l.Close()
	var m model
	rng := rand.New(rand.NewSource(2))
	for range 40 {
		appendBatches(t, l, &m, randSpec(rng))
	}
	if l.NumSegments() < 3 {
		t.Fatalf("only %d segments", l.NumSegments())
	}
	if ts := l.TailStart(); !slices.Contains(m.bases, ts) || ts == 0 || ts >= m.bases[len(m.bases)-1] {
		t.Fatalf("TailStart = %d, want the base of the segment before the active one", ts)
	}
	for _, from := range []int64{0, 1, m.bases[17] + 1, m.bases[39], m.end} {
		var got []int64
		must(t, l.ScanHeaders(from, func(h record.Header) { got = append(got, h.BaseOffset) }))
		var want []int64
		for i, b := range m.batches {
			h, _ := record.ParseHeader(b)
			if h.LastOffset() >= from {
				want = append(want, m.bases[i])
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ScanHeaders(%d) = %v, want %v", from, got, want)
		}
	}
}

// TestAppendOffsetRange checks that Append keeps every segment's offsets
// within its 32-bit relative range, which recovery enforces: a payload
// spanning more than that range, or reaching the largest offset, is
// rejected, and an empty segment that Truncate left below the end gives
// way to a new segment instead of taking batches it cannot index.
func TestAppendOffsetRange(t *testing.T) {
	tests := []struct {
		name  string
		start int64 // ResetTo before appending, if non-zero
		data  func(end int64) []byte
		ok    bool
	}{
		{"one segment's worth", 0, func(end int64) []byte {
			return append(sparseBatch(t, end, math.MaxInt32-1), sparseBatch(t, end+math.MaxInt32, 0)...)
		}, true},
		{"one offset more than a segment holds", 0, func(end int64) []byte {
			return append(sparseBatch(t, end, math.MaxInt32-1), sparseBatch(t, end+math.MaxInt32, 1)...)
		}, false},
		{"ending just below the largest offset", math.MaxInt64 - 3, func(end int64) []byte {
			return makeBatch(t, end, batchSpec{n: 3})
		}, true},
		{"ending at the largest offset", math.MaxInt64 - 3, func(end int64) []byte {
			return makeBatch(t, end, batchSpec{n: 4})
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			l := openLog(t, fs, Options{})
			defer l.Close()
			if tc.start != 0 {
				must(t, l.ResetTo(tc.start))
			}
			data := tc.data(tc.start)
			err := l.Append(data)
			if !tc.ok {
				if !errors.Is(err, ErrInvalidAppend) {
					t.Fatalf("err = %v, want ErrInvalidAppend", err)
				}
				if l.EndOffset() != tc.start || l.Size() != 0 {
					t.Fatal("a rejected append changed the log")
				}
				return
			}
			must(t, err)
			if got := readAllLog(t, l, 1<<20); !bytes.Equal(got, data) {
				t.Fatalf("log holds %d bytes, want %d", len(got), len(data))
			}
			_, err = l.Sync()
			must(t, err)
			l2 := openLog(t, fs.CrashClone(), Options{})
			defer l2.Close()
			if got := readAllLog(t, l2, 1<<20); !bytes.Equal(got, data) || l2.EndOffset() != l.EndOffset() {
				t.Fatalf("reopened log holds %d bytes up to %d, want %d up to %d", len(got), l2.EndOffset(), len(data), l.EndOffset())
			}
		})
	}

	t.Run("empty segment below the end rolls", func(t *testing.T) {
		// Segment 0 whose first batch starts at 1000; truncating to 1000
		// empties it but leaves its base at 0.
		fs := vfs.NewMem()
		must(t, fs.MkdirAll(testDir, 0o755))
		f, err := fs.Create(segFile(0, logSuffix))
		must(t, err)
		_, err = f.Write(makeBatch(t, 1000, batchSpec{n: 2}))
		must(t, err)
		must(t, f.Close())
		o := Options{IndexIntervalBytes: 1}
		l := openLog(t, fs, o)
		must(t, l.Truncate(1000))
		if l.EndOffset() != 1000 || l.Size() != 0 {
			t.Fatalf("after Truncate: end %d, size %d", l.EndOffset(), l.Size())
		}
		last := int64(1000 + math.MaxInt32 - 999)
		b := append(sparseBatch(t, 1000, math.MaxInt32-1000), makeBatch(t, last, batchSpec{n: 2})...)
		must(t, l.Append(b))
		if l.NumSegments() != 2 {
			t.Fatalf("%d segments, want a new one at 1000", l.NumSegments())
		}
		if _, err := fs.Stat(segFile(1000, logSuffix)); err != nil {
			t.Fatal(err)
		}
		// Reopened, recovery finds every segment within its range and keeps
		// it all.
		for reopen := range 2 {
			if reopen == 1 {
				must(t, l.Close())
				l = openLog(t, fs, o)
			}
			if got := readAllLog(t, l, 1<<20); !bytes.Equal(got, b) || l.EndOffset() != last+2 {
				t.Fatalf("log holds %d bytes up to %d, want %d up to %d", len(got), l.EndOffset(), len(b), last+2)
			}
			if s, err := l.Read(last, l.EndOffset(), 1<<20, true); err != nil || s.Size == 0 {
				t.Fatalf("Read of the last batch: %+v %v", s, err)
			}
		}
		must(t, l.Close())
	})
}
