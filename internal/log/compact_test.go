package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// kv is one keyed record of a test stream; a nil value is a tombstone.
type kv struct {
	off        int64
	key, value []byte
}

// keyedModel is what was appended to a compacted log: every record by
// offset, and the latest value per key.
type keyedModel struct {
	byOff  map[int64]kv
	latest map[string][]byte // tombstoned keys absent
	end    int64
}

func newKeyedModel() *keyedModel {
	return &keyedModel{byOff: map[int64]kv{}, latest: map[string][]byte{}}
}

// appendKeyed appends one batch of n random records over nkeys keys.
func appendKeyed(t testing.TB, l *Log, m *keyedModel, rng *rand.Rand, n, nkeys int, codec record.Compression, ts int64) {
	t.Helper()
	base := l.EndOffset()
	recs := make([]record.Record, n)
	for i := range recs {
		key := fmt.Appendf(nil, "key-%d", rng.Intn(nkeys))
		var val []byte
		if rng.Intn(5) > 0 {
			val = fmt.Appendf(nil, "v%d-%s", base+int64(i), bytes.Repeat([]byte("x"), rng.Intn(40)))
		}
		recs[i] = record.Record{OffsetDelta: int32(i), Key: key, Value: val}
	}
	h := record.Header{BaseOffset: base, FirstTimestamp: ts, MaxTimestamp: ts,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, Attributes: int16(codec)}
	b, err := record.Build(nil, h, recs)
	must(t, err)
	must(t, l.Append(b))
	for i, r := range recs {
		off := base + int64(i)
		m.byOff[off] = kv{off: off, key: r.Key, value: r.Value}
		if r.Value == nil {
			delete(m.latest, string(r.Key))
		} else {
			m.latest[string(r.Key)] = r.Value
		}
	}
	m.end = base + int64(n)
}

// readKeyed reads every record of the log from off through Read.
func readKeyed(t testing.TB, l *Log, off int64) []kv {
	t.Helper()
	var out []kv
	end := l.EndOffset()
	for off < end {
		s, err := l.Read(off, end, 1<<16, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		b, err := s.ReadInto(nil)
		if err != nil {
			t.Fatalf("ReadInto: %v", err)
		}
		out = append(out, decodeKeyed(t, b, off)...)
		if s.NextOffset <= off {
			t.Fatalf("Read(%d) made no progress", off)
		}
		off = s.NextOffset
	}
	return out
}

// decodeKeyed decodes the records at or after from in the batches b.
func decodeKeyed(t testing.TB, b []byte, from int64) []kv {
	t.Helper()
	if err := verifyBatches(b); err != nil {
		t.Fatal(err)
	}
	var out []kv
	for pos := 0; pos < len(b); {
		h, _ := record.ParseHeader(b[pos:])
		recs, err := record.Records(b[pos:], 0)
		if err != nil {
			t.Fatalf("batch at offset %d: %v", h.BaseOffset, err)
		}
		// Regression: emptied batches were re-encoded with their codec, and franz-go could
		// not read a snappy frame around nothing, so consumers stopped at such a batch.
		if h.NumRecords == 0 && h.Compression() != record.None {
			t.Fatalf("empty batch at offset %d is compressed (%v)", h.BaseOffset, h.Compression())
		}
		for _, r := range recs {
			if off := h.BaseOffset + int64(r.OffsetDelta); off >= from && !h.IsControl() {
				out = append(out, kv{off: off, key: r.Key, value: r.Value})
			}
		}
		pos += h.Size()
	}
	return out
}

// checkKeyed checks records read from a compacted log against the model:
// offsets increase, every record is the one appended at its offset, and
// folding them gives the latest value of every key.
func checkKeyed(t testing.TB, got []kv, m *keyedModel, what string) {
	t.Helper()
	fold := map[string][]byte{}
	prev := int64(-1)
	for _, r := range got {
		if r.off <= prev {
			t.Fatalf("%s: offset %d after %d", what, r.off, prev)
		}
		prev = r.off
		want, ok := m.byOff[r.off]
		if !ok || !bytes.Equal(want.key, r.key) || !bytes.Equal(want.value, r.value) || (want.value == nil) != (r.value == nil) {
			t.Fatalf("%s: offset %d holds %q=%q, appended %q=%q", what, r.off, r.key, r.value, want.key, want.value)
		}
		if r.value == nil {
			delete(fold, string(r.key))
		} else {
			fold[string(r.key)] = r.value
		}
	}
	if len(fold) != len(m.latest) {
		t.Fatalf("%s: %d live keys, want %d", what, len(fold), len(m.latest))
	}
	for k, v := range m.latest {
		if !bytes.Equal(fold[k], v) {
			t.Fatalf("%s: key %q reads %q, latest is %q", what, k, fold[k], v)
		}
	}
}

var codecs = []record.Compression{record.None, record.Gzip, record.Snappy, record.LZ4, record.Zstd}

// TestCompactProperty: random keyed streams with tombstones, compacted at
// random points. The log must always read as the map of latest values with
// offsets preserved, keep its end offset, survive a reopen byte for byte,
// and serve a reader that was positioned before a pass consistently after
// it. A final pass over sealed segments leaves each key at most once there.
func TestCompactProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		clk := newClock()
		fs := vfs.NewMem()
		o := Options{FS: fs, SegmentBytes: int64(500 + rng.Intn(3000)), IndexIntervalBytes: 1 + rng.Intn(300),
			Now: clk.Now, FileDeleteDelay: time.Minute}
		l := openLog(t, fs, o)
		m := newKeyedModel()
		nkeys := 1 + rng.Intn(30)
		pol := CompactionPolicy{DeleteRetentionMs: int64(time.Hour / time.Millisecond),
			MinCleanableDirtyRatio: rng.Float64() * 0.6, MaxKeys: 1 + rng.Intn(40)}
		for step := range 60 + rng.Intn(100) {
			appendKeyed(t, l, m, rng, 1+rng.Intn(6), nkeys, codecs[rng.Intn(len(codecs))], clk.Now().UnixMilli())
			clk.advance(time.Second)
			if rng.Intn(8) != 0 {
				continue
			}
			// A reader part-way through the log before the pass, and slices
			// taken before it, read consistently after it.
			mid := l.StartOffset() + rng.Int63n(l.EndOffset()-l.StartOffset())
			pre := readKeyed(t, l, l.StartOffset())
			var early []kv
			for _, r := range pre {
				if r.off < mid {
					early = append(early, r)
				}
			}
			old, err := l.Read(mid, l.EndOffset(), 1<<20, true)
			must(t, err)
			oldBytes, err := old.ReadInto(nil)
			must(t, err)
			pol.Limit = l.EndOffset()
			if _, err := l.Compact(pol); err != nil {
				t.Fatalf("round %d step %d: Compact: %v", round, step, err)
			}
			if l.EndOffset() != m.end {
				t.Fatalf("round %d: end %d after compaction, want %d", round, l.EndOffset(), m.end)
			}
			again, err := old.ReadInto(nil)
			must(t, err)
			if !bytes.Equal(again, oldBytes) {
				t.Fatalf("round %d: a slice taken before compaction reads other bytes", round)
			}
			checkKeyed(t, append(early, readKeyed(t, l, mid)...), m, fmt.Sprintf("round %d step %d mid-clean reader", round, step))
			checkKeyed(t, readKeyed(t, l, l.StartOffset()), m, fmt.Sprintf("round %d step %d", round, step))
		}

		// Seal everything, clean fully: each key at most once below the
		// active segment.
		last := l.EndOffset()
		must(t, l.Append(makeBatch(t, last, batchSpec{value: int(o.SegmentBytes)})))
		m.byOff[last] = kv{off: last, key: fmt.Appendf(nil, "k%d", last), value: bytes.Repeat([]byte{byte(last)}, int(o.SegmentBytes))}
		m.latest[fmt.Sprintf("k%d", last)] = m.byOff[last].value
		m.end = l.EndOffset()
		pol.Limit, pol.MinCleanableDirtyRatio, pol.MaxKeys = l.EndOffset(), 0, 0
		res, err := l.Compact(pol)
		must(t, err)
		if !res.Cleaned {
			t.Fatalf("round %d: final pass did not run", round)
		}
		got := readKeyed(t, l, l.StartOffset())
		checkKeyed(t, got, m, fmt.Sprintf("round %d final", round))
		l.mu.RLock()
		activeBase := l.mu.segs[len(l.mu.segs)-1].base
		l.mu.RUnlock()
		seen := map[string]bool{}
		for _, r := range got {
			if r.off < activeBase {
				if seen[string(r.key)] {
					t.Fatalf("round %d: key %q twice in the cleaned section", round, r.key)
				}
				seen[string(r.key)] = true
			}
		}

		before := readAllLog(t, l, 1<<20)
		must(t, l.Close())
		l = openLog(t, fs, o)
		if after := readAllLog(t, l, 1<<20); !bytes.Equal(before, after) {
			t.Fatalf("round %d: reopened log differs", round)
		}
		must(t, l.Close())
	}
}

// TestCompactTombstones: a tombstone outlives the values it deletes by
// delete.retention.ms after its first clean, then goes.
func TestCompactTombstones(t *testing.T) {
	clk := newClock()
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{SegmentBytes: 200, Now: clk.Now})
	put := func(key string, val []byte) {
		h := record.Header{BaseOffset: l.EndOffset(), FirstTimestamp: clk.Now().UnixMilli(), MaxTimestamp: clk.Now().UnixMilli(),
			ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		b, err := record.Build(nil, h, []record.Record{{Key: []byte(key), Value: val}})
		must(t, err)
		must(t, l.Append(b))
	}
	put("a", []byte("1"))
	put("b", []byte("1"))
	put("a", nil)
	for i := range 10 {
		put(fmt.Sprintf("z%d", i), bytes.Repeat([]byte("z"), 100))
	}
	pol := CompactionPolicy{Limit: l.EndOffset(), DeleteRetentionMs: 60_000}
	count := func() (live, tombs int, aKeys int) {
		for _, r := range readKeyed(t, l, l.StartOffset()) {
			if string(r.key) == "a" {
				aKeys++
			}
			if r.value == nil {
				tombs++
			} else {
				live++
			}
		}
		return
	}
	_, err := l.Compact(pol)
	must(t, err)
	if live, tombs, a := count(); tombs != 1 || a != 1 || live != 11 {
		t.Fatalf("after first pass: live %d tombstones %d records of a %d; want 11, 1, 1", live, tombs, a)
	}
	clk.advance(30 * time.Second)
	res, err := l.Compact(pol)
	must(t, err)
	if res.Cleaned {
		t.Fatalf("a pass ran with nothing dirty and no horizon due: %+v", res)
	}
	clk.advance(31 * time.Second)
	res, err = l.Compact(pol)
	must(t, err)
	if live, tombs, a := count(); !res.Cleaned || tombs != 0 || a != 0 || live != 11 {
		t.Fatalf("after the horizon: cleaned %v live %d tombstones %d records of a %d", res.Cleaned, live, tombs, a)
	}
}

// TestCompactPolicyGates: the dirty ratio, min.compaction.lag.ms,
// max.compaction.lag.ms and the limit decide whether and how far a pass runs.
func TestCompactPolicyGates(t *testing.T) {
	tests := []struct {
		name    string
		pol     CompactionPolicy
		limit   func(end int64) int64
		advance time.Duration
		cleaned bool
	}{
		{name: "ratio reached", pol: CompactionPolicy{MinCleanableDirtyRatio: 0.5}, cleaned: true},
		{name: "min lag not reached", pol: CompactionPolicy{MinCompactionLagMs: 3_600_000}, cleaned: false},
		{name: "min lag reached", pol: CompactionPolicy{MinCompactionLagMs: 3_600_000}, advance: 2 * time.Hour, cleaned: true},
		{name: "limit at start", pol: CompactionPolicy{}, limit: func(int64) int64 { return 0 }, cleaned: false},
		{name: "ratio not reached, max lag passed", pol: CompactionPolicy{MinCleanableDirtyRatio: 2, MaxCompactionLagMs: 1000}, advance: time.Minute, cleaned: true},
		{name: "ratio not reached, max lag not passed", pol: CompactionPolicy{MinCleanableDirtyRatio: 2, MaxCompactionLagMs: 3_600_000}, advance: time.Minute, cleaned: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			l := openLog(t, vfs.NewMem(), Options{SegmentBytes: 300, Now: clk.Now})
			m := newKeyedModel()
			rng := rand.New(rand.NewSource(1))
			for range 40 {
				appendKeyed(t, l, m, rng, 3, 5, record.None, clk.Now().UnixMilli())
			}
			// Nothing dirty and no horizon due after a first full pass.
			clk.advance(tc.advance)
			tc.pol.Limit = l.EndOffset()
			if tc.limit != nil {
				tc.pol.Limit = tc.limit(l.EndOffset())
			}
			res, err := l.Compact(tc.pol)
			must(t, err)
			if res.Cleaned != tc.cleaned {
				t.Fatalf("cleaned = %v, want %v (%+v)", res.Cleaned, tc.cleaned, res)
			}
			checkKeyed(t, readKeyed(t, l, 0), m, tc.name)
		})
	}
}

// TestCompactCrash cuts power at every filesystem operation of a
// compaction pass in turn (part of the unsynced bytes surviving at random),
// reopens, and checks that the log is readable and reads as the map of
// latest values with offsets preserved; then compacts the recovered log.
func TestCompactCrash(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	build := func(fs vfs.FS) (*Log, *keyedModel) {
		r := rand.New(rand.NewSource(11))
		l := openLog(t, fs, Options{SegmentBytes: 400, IndexIntervalBytes: 100})
		m := newKeyedModel()
		for range 30 {
			appendKeyed(t, l, m, r, 1+r.Intn(4), 8, codecs[r.Intn(len(codecs))], 1000)
		}
		_, err := l.Sync()
		must(t, err)
		return l, m
	}
	// Count the operations of one pass.
	var ops int
	counting := vfs.NewErrorFS(vfs.NewMem(), vfs.InjectorFunc(func(vfs.Op) error { ops++; return nil }))
	l, _ := build(counting)
	ops = 0
	pol := CompactionPolicy{Limit: l.EndOffset(), DeleteRetentionMs: 1 << 40}
	_, err := l.Compact(pol)
	must(t, err)
	total := ops
	if total < 20 {
		t.Fatalf("a pass took only %d operations", total)
	}
	errCrash := errors.New("power cut")
	for k := range total {
		mem := vfs.NewMem()
		var n int
		var armed bool
		var crashed *vfs.MemFS
		fs := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(vfs.Op) error {
			if !armed {
				return nil
			}
			if crashed != nil {
				return errCrash
			}
			if n++; n > k {
				crashed = mem.CrashClone(vfs.KeepRandomUnsyncedTail(rng))
				return errCrash
			}
			return nil
		}))
		l, m := build(fs)
		armed = true
		if _, err := l.Compact(pol); err == nil && crashed == nil {
			t.Fatalf("op %d: pass ended before the crash", k)
		}
		l2, err := Open(testDir, Options{FS: crashed, SegmentBytes: 400, IndexIntervalBytes: 100})
		if err != nil {
			t.Fatalf("op %d: Open after crash: %v", k, err)
		}
		if l2.EndOffset() != m.end {
			t.Fatalf("op %d: end %d after crash, want %d", k, l2.EndOffset(), m.end)
		}
		checkKeyed(t, readKeyed(t, l2, l2.StartOffset()), m, fmt.Sprintf("crash at op %d", k))
		names, _ := crashed.List(testDir)
		for _, name := range names {
			if bytes.HasSuffix([]byte(name), []byte(cleanedSuffix)) || bytes.HasSuffix([]byte(name), []byte(swapSuffix)) {
				t.Fatalf("op %d: %s left after recovery", k, name)
			}
		}
		if _, err := l2.Compact(CompactionPolicy{Limit: l2.EndOffset(), DeleteRetentionMs: 1 << 40}); err != nil {
			t.Fatalf("op %d: Compact after recovery: %v", k, err)
		}
		checkKeyed(t, readKeyed(t, l2, l2.StartOffset()), m, fmt.Sprintf("crash at op %d, compacted again", k))
		must(t, l2.Close())
	}
}

// txnBatch builds a batch of producer pid: transactional data records
// (key=value pairs) or, with marker set, a marker (commit or abort).
func txnBatch(t testing.TB, base, pid int64, transactional bool, marker string, kvs ...string) []byte {
	t.Helper()
	h := record.Header{BaseOffset: base, FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: pid, ProducerEpoch: 0, BaseSequence: int32(base)}
	if transactional {
		h.Attributes |= 1 << 4
	}
	var recs []record.Record
	if marker != "" {
		h.Attributes |= 1<<4 | 1<<5
		h.BaseSequence = -1
		typ := byte(0)
		if marker == "commit" {
			typ = 1
		}
		recs = []record.Record{{Key: []byte{0, 0, 0, typ}, Value: []byte{0, 0, 0, 0, 0, 1}}}
	}
	for i := 0; i < len(kvs); i += 2 {
		var v []byte
		if kvs[i+1] != "" {
			v = []byte(kvs[i+1])
		}
		recs = append(recs, record.Record{OffsetDelta: int32(i / 2), Key: []byte(kvs[i]), Value: v})
	}
	b, err := record.Build(nil, h, recs)
	must(t, err)
	return b
}

// TestCompactTransactions follows Kafka's rules: records of aborted transactions go; a
// marker stays while its transaction has a batch left, and after that until
// delete.retention.ms passed; each producer's last batch stays, emptied if need be.
func TestCompactTransactions(t *testing.T) {
	clk := newClock()
	l := openLog(t, vfs.NewMem(), Options{Now: clk.Now})
	app := func(b []byte) {
		t.Helper()
		must(t, l.Append(b))
	}
	// Producer 1 commits a=1, producer 2 aborts a=2 and b=2, producer 3 (idempotent, not
	// transactional) writes c=1 then c=2; then producer 1 overwrites a and commits again.
	app(txnBatch(t, 0, 1, true, "", "a", "1"))           // 0
	app(txnBatch(t, 1, 2, true, "", "a", "2", "b", "2")) // 1-2
	app(txnBatch(t, 3, 1, true, "commit"))               // 3
	app(txnBatch(t, 4, 2, true, "abort"))                // 4
	app(txnBatch(t, 5, 3, false, "", "c", "1"))          // 5
	app(txnBatch(t, 6, 3, false, "", "c", "2"))          // 6
	app(txnBatch(t, 7, 1, true, "", "a", "3"))           // 7
	app(txnBatch(t, 8, 1, true, "commit"))               // 8
	must(t, l.MaybeRoll())
	clk.advance(8 * 24 * time.Hour)
	app(txnBatch(t, 9, 4, false, "", "z", "z")) // rolls: everything above is sealed

	batches := func() (out []string) {
		b := readAllLog(t, l, 1<<20)
		for pos := 0; pos < len(b); {
			h, _ := record.ParseHeader(b[pos:])
			recs, err := record.Records(b[pos:], 0)
			must(t, err)
			s := fmt.Sprintf("%d:p%d", h.BaseOffset, h.ProducerID)
			if h.IsControl() {
				s += ":marker"
			}
			for _, r := range recs {
				if !h.IsControl() {
					s += fmt.Sprintf(":%s=%s", r.Key, r.Value)
				}
			}
			out = append(out, s)
			pos += h.Size()
		}
		return out
	}
	pol := CompactionPolicy{Limit: l.EndOffset(), DeleteRetentionMs: 1000}
	_, err := l.Compact(pol)
	must(t, err)
	// a=1 (overwritten) and the aborted batch go: neither is its producer's last batch. The
	// markers stay, those without data left with a delete horizon.
	want := []string{"3:p1:marker", "4:p2:marker", "6:p3:c=2", "7:p1:a=3", "8:p1:marker", "9:p4:z=z"}
	if got := batches(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the first pass:\n got %v\nwant %v", got, want)
	}
	clk.advance(2 * time.Second)
	_, err = l.Compact(pol)
	must(t, err)
	// Past the horizon: markers without data go, except a producer's last batch (4 is
	// producer 2's last; 8 is producer 1's last and its transaction has data).
	want = []string{"4:p2:marker", "6:p3:c=2", "7:p1:a=3", "8:p1:marker", "9:p4:z=z"}
	if got := batches(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after the horizon:\n got %v\nwant %v", got, want)
	}
	if l.EndOffset() != 10 {
		t.Fatalf("end offset %d, want 10", l.EndOffset())
	}
}

// BenchmarkCompact measures the cleaner's throughput over a fresh 128 MiB
// log of 1 KiB records on 10,000 keys (uncompressed, on the OS
// filesystem): bytes of log compacted per second.
func BenchmarkCompact(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	val := bytes.Repeat([]byte("v"), 1000)
	var total int64
	for range b.N {
		b.StopTimer()
		l, err := Open(b.TempDir(), Options{SegmentBytes: 16 << 20})
		if err != nil {
			b.Fatal(err)
		}
		for l.Size() < 128<<20 {
			recs := make([]record.Record, 16)
			for i := range recs {
				recs[i] = record.Record{OffsetDelta: int32(i), Key: fmt.Appendf(nil, "key-%05d", rng.Intn(10000)), Value: val}
			}
			h := record.Header{BaseOffset: l.EndOffset(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
			batch, err := record.Build(nil, h, recs)
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Append(batch); err != nil {
				b.Fatal(err)
			}
		}
		total += l.Size()
		b.StartTimer()
		res, err := l.Compact(CompactionPolicy{Limit: l.EndOffset(), DeleteRetentionMs: 1 << 40})
		if err != nil || !res.Cleaned {
			b.Fatalf("%+v %v", res, err)
		}
		b.StopTimer()
		l.Close()
	}
	b.ReportMetric(float64(total)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
}

// TestCompactThrottle: a pass accounts every byte it reads and writes to its throttle, which
// makes it wait bytes/rate in all.
func TestCompactThrottle(t *testing.T) {
	clk := newClock()
	fs := vfs.NewMem()
	l := openLog(t, fs, Options{SegmentBytes: 200, Now: clk.Now})
	defer l.Close()
	for i := range 40 {
		h := record.Header{BaseOffset: l.EndOffset(), FirstTimestamp: clk.Now().UnixMilli(), MaxTimestamp: clk.Now().UnixMilli(),
			ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		b, err := record.Build(nil, h, []record.Record{{Key: fmt.Appendf(nil, "k%d", i%4), Value: bytes.Repeat([]byte("v"), 50)}})
		must(t, err)
		must(t, l.Append(b))
	}
	var slept time.Duration
	th := NewThrottle(1000)
	th.now = func() time.Time { return time.Unix(0, 0) } // no time passes but the sleeps
	th.sleep = func(d time.Duration) { slept = d }       // the last due time covers all bytes
	res, err := l.Compact(CompactionPolicy{Limit: l.EndOffset(), DeleteRetentionMs: 60_000, Throttle: th})
	must(t, err)
	if !res.Cleaned || res.BytesRead == 0 {
		t.Fatalf("no pass ran: %+v", res)
	}
	// Every segment is read at least once and the kept bytes written once.
	min := time.Duration(float64(res.BytesRead+res.BytesWritten) / 1000 * float64(time.Second))
	if slept < min {
		t.Fatalf("throttled for %v, want at least %v for %d bytes read and %d written", slept, min, res.BytesRead, res.BytesWritten)
	}
}
