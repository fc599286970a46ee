package log

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

const testDir = "/data/topic-0"

// batchSpec describes a test batch.
type batchSpec struct {
	n     int   // records
	ts    int64 // first record's timestamp
	tsInc int64 // timestamp step between records (may be negative)
	value int   // value bytes per record
	codec record.Compression
}

// makeBatch builds one valid v2 batch at base.
func makeBatch(t testing.TB, base int64, sp batchSpec) []byte {
	t.Helper()
	if sp.n == 0 {
		sp.n = 1
	}
	recs := make([]record.Record, sp.n)
	maxTs := sp.ts
	for i := range recs {
		d := int64(i) * sp.tsInc
		maxTs = max(maxTs, sp.ts+d)
		recs[i] = record.Record{
			OffsetDelta:    int32(i),
			TimestampDelta: d,
			Key:            fmt.Appendf(nil, "k%d", base+int64(i)),
			Value:          bytes.Repeat([]byte{byte(base + int64(i))}, sp.value),
		}
	}
	h := record.Header{
		BaseOffset: base, FirstTimestamp: sp.ts, MaxTimestamp: maxTs,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
		Attributes: int16(sp.codec),
	}
	b, err := record.Build(nil, h, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// model is what the log should hold: the batches appended, in order.
type model struct {
	batches [][]byte
	bases   []int64
	end     int64
	start   int64
}

func (m *model) add(b []byte) {
	h, _ := record.ParseHeader(b)
	m.batches = append(m.batches, b)
	m.bases = append(m.bases, h.BaseOffset)
	m.end = h.LastOffset() + 1
}

// truncate drops the batches at and after the one holding off.
func (m *model) truncate(off int64) {
	for i, b := range m.batches {
		h, _ := record.ParseHeader(b)
		if h.LastOffset() >= off {
			m.batches, m.bases = m.batches[:i], m.bases[:i]
			m.end = h.BaseOffset
			return
		}
	}
}

func (m *model) bytes() []byte { return bytes.Join(m.batches, nil) }

// clock is an injected clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openLog(t testing.TB, fs vfs.FS, o Options) *Log {
	t.Helper()
	o.FS = fs
	l, err := Open(testDir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// appendBatches appends each batch alone and records it in m.
func appendBatches(t testing.TB, l *Log, m *model, specs ...batchSpec) {
	t.Helper()
	for _, sp := range specs {
		b := makeBatch(t, l.EndOffset(), sp)
		if err := l.Append(b); err != nil {
			t.Fatalf("Append at %d: %v", l.EndOffset(), err)
		}
		m.add(b)
	}
}

// readAllLog reads the whole log through Read, segment after segment.
func readAllLog(t testing.TB, l *Log, maxBytes int) []byte {
	t.Helper()
	var out []byte
	off := l.StartOffset()
	end := l.EndOffset()
	for off < end {
		s, err := l.Read(off, end, maxBytes, true)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if s.NextOffset <= off {
			t.Fatalf("Read(%d) made no progress: %+v", off, s)
		}
		if out, err = s.ReadInto(out); err != nil {
			t.Fatalf("ReadInto: %v", err)
		}
		off = s.NextOffset
	}
	return out
}

// checkLog compares the log with the model and checks every batch.
func checkLog(t testing.TB, l *Log, m *model) {
	t.Helper()
	if l.EndOffset() != m.end {
		t.Fatalf("EndOffset = %d, want %d", l.EndOffset(), m.end)
	}
	got := readAllLog(t, l, 1<<20)
	if want := m.bytes(); !bytes.Equal(got, want) {
		t.Fatalf("log holds %d bytes, want %d (equal prefix %d)", len(got), len(want), commonPrefix(got, want))
	}
	if err := verifyBatches(got); err != nil {
		t.Fatal(err)
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// verifyBatches checks that b is a sequence of whole batches with valid
// CRCs and increasing offsets.
func verifyBatches(b []byte) error {
	next := int64(-1)
	for pos := 0; pos < len(b); {
		h, err := record.ParseHeader(b[pos:])
		if err != nil {
			return fmt.Errorf("batch at %d: %w", pos, err)
		}
		if err := record.VerifyCRC(b[pos:]); err != nil {
			return fmt.Errorf("batch at %d: %w", pos, err)
		}
		if h.Magic != 2 || h.BaseOffset < next || h.LastOffsetDelta < 0 {
			return fmt.Errorf("batch at %d: bad header %+v after offset %d", pos, h, next)
		}
		next = h.LastOffset() + 1
		pos += h.Size()
	}
	return nil
}

// errorsIsAll reports whether err matches every target.
func errorsIsAll(err error, targets ...error) bool {
	for _, t := range targets {
		if !errors.Is(err, t) {
			return false
		}
	}
	return true
}

func randSpec(rng *rand.Rand) batchSpec {
	return batchSpec{n: 1 + rng.Intn(5), ts: 1000 + rng.Int63n(1000), tsInc: rng.Int63n(3) - 1, value: rng.Intn(300)}
}

// sparseBatch builds a one-record batch at base whose offsets run to
// base+lastDelta, as compaction leaves them.
func sparseBatch(t testing.TB, base int64, lastDelta int32) []byte {
	t.Helper()
	h := record.Header{BaseOffset: base, LastOffsetDelta: lastDelta,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	b, err := record.Build(nil, h, []record.Record{{Key: []byte("k"), Value: []byte("v")}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// batchPositions returns the file positions of the batches that tile b.
func batchPositions(t testing.TB, b []byte) []int {
	t.Helper()
	var ps []int
	for pos := 0; pos < len(b); {
		h, err := record.ParseHeader(b[pos:])
		if err != nil {
			t.Fatalf("batch at %d: %v", pos, err)
		}
		ps = append(ps, pos)
		pos += h.Size()
	}
	return ps
}
