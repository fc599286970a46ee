package partition

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

func testConfig(fs vfs.FS) Config {
	return Config{
		Log: plog.Options{FS: fs, SegmentBytes: 1 << 20, SegmentMs: math.MaxInt64 / 2, IndexIntervalBytes: 4096, SegmentIndexBytes: 1 << 20},
		Validate: record.ValidateConfig{MaxBatchBytes: 1 << 20, TimestampType: record.CreateTime,
			BeforeMaxMs: math.MaxInt64, AfterMaxMs: math.MaxInt64, MaxDecompressedBytes: 1 << 20},
		FlushPolicy: FlushAlways,
	}
}

// batch builds a batch of n records; pid < 0 makes it non-idempotent.
func batch(t testing.TB, n int, pid int64, epoch int16, seq int32) []byte {
	t.Helper()
	now := time.Now().UnixMilli()
	h := record.Header{ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq, FirstTimestamp: now, MaxTimestamp: now}
	if pid < 0 {
		h.ProducerEpoch, h.BaseSequence = -1, -1
	}
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	b, err := record.Build(nil, h, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(t *testing.T, fs vfs.FS, cfg Config) *Partition {
	t.Helper()
	p, err := Open("/data/t-0", "t", [16]byte{1}, 0, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestAppendCommitRead(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	var last AppendResult
	for i := 0; i < 10; i++ {
		res, err := p.Append(batch(t, 3, -1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != int64(i*3) || res.LastOffset != int64(i*3+2) {
			t.Fatalf("append %d at %d-%d", i, res.BaseOffset, res.LastOffset)
		}
		last = res
	}
	if err := p.AwaitCommitted(last.LastOffset+1, time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 30 {
		t.Fatalf("hw %d", hw)
	}
	s, err := p.Read(3, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.NextOffset != 30 || s.Size == 0 {
		t.Fatalf("read %+v", s)
	}
	buf, err := s.ReadInto(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := record.ParseHeader(buf)
	if h.BaseOffset != 3 {
		t.Fatalf("first batch read at %d", h.BaseOffset)
	}
	if _, err := p.Read(31, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
}

func TestRejectsBadBatches(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	b := batch(t, 2, -1, 0, 0)
	two := append(append([]byte{}, b...), b...)
	if _, err := p.Append(two); !errors.Is(err, ErrTooManyBatches) {
		t.Fatalf("two batches: %v", err)
	}
	bad := append([]byte{}, b...)
	bad[len(bad)-1] ^= 0xff
	if _, err := p.Append(bad); !errors.Is(err, record.ErrCorrupt) {
		t.Fatalf("bad crc: %v", err)
	}
	if p.LogEndOffset() != 0 {
		t.Fatalf("refused batches were appended: end %d", p.LogEndOffset())
	}
}

func TestIdempotentProducer(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	r1, err := p.Append(batch(t, 2, 7, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := p.Append(batch(t, 3, 7, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	// A retry of either batch is answered with its original offsets and appends nothing.
	d1, err := p.Append(batch(t, 2, 7, 0, 0))
	if err != nil || !d1.Duplicate || d1.BaseOffset != r1.BaseOffset {
		t.Fatalf("retry of first: %+v %v", d1, err)
	}
	d2, err := p.Append(batch(t, 3, 7, 0, 2))
	if err != nil || !d2.Duplicate || d2.BaseOffset != r2.BaseOffset || d2.LastOffset != r2.LastOffset {
		t.Fatalf("retry of second: %+v %v", d2, err)
	}
	if p.LogEndOffset() != 5 {
		t.Fatalf("end %d after duplicates", p.LogEndOffset())
	}
	if _, err := p.Append(batch(t, 1, 7, 0, 9)); !errors.Is(err, ErrOutOfOrderSeq) {
		t.Fatalf("gap: %v", err)
	}
	if _, err := p.Append(batch(t, 1, 8, 0, 3)); !errors.Is(err, ErrOutOfOrderSeq) {
		t.Fatalf("unknown producer not at 0: %v", err)
	}
	// A new epoch restarts at 0; the old epoch is then fenced.
	if _, err := p.Append(batch(t, 1, 7, 1, 0)); err != nil {
		t.Fatalf("new epoch: %v", err)
	}
	if _, err := p.Append(batch(t, 1, 7, 0, 5)); !errors.Is(err, ErrInvalidEpoch) {
		t.Fatalf("old epoch: %v", err)
	}
}

// After a restart, producer state is rebuilt from the log: a retry is still deduplicated.
func TestProducerStateSurvivesReopen(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs)
	p, err := Open("/data/t-0", "t", [16]byte{1}, 0, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Append(batch(t, 4, 42, 3, 10-10))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open(t, fs, cfg)
	d, err := p.Append(batch(t, 4, 42, 3, 0))
	if err != nil || !d.Duplicate || d.BaseOffset != r.BaseOffset {
		t.Fatalf("retry after reopen: %+v %v", d, err)
	}
	if _, err := p.Append(batch(t, 1, 42, 3, 4)); err != nil {
		t.Fatalf("next sequence after reopen: %v", err)
	}
}

// Concurrent appenders share fsyncs: every append is committed, offsets are dense.
func TestGroupCommit(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	var wg sync.WaitGroup
	var offsets sync.Map
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				res, err := p.Append(batch(t, 1, -1, 0, 0))
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second)); err != nil {
					t.Error(err)
					return
				}
				if _, dup := offsets.LoadOrStore(res.BaseOffset, true); dup {
					t.Errorf("offset %d assigned twice", res.BaseOffset)
				}
			}
		}()
	}
	wg.Wait()
	for o := int64(0); o < 400; o++ {
		if _, ok := offsets.Load(o); !ok {
			t.Fatalf("offset %d never assigned", o)
		}
	}
}

// A full disk fails the partition with ErrStorage; committed data stays readable.
func TestStorageErrorFailsPartition(t *testing.T) {
	mem := vfs.NewMem()
	var full atomic.Bool
	fs := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op) error {
		if full.Load() && (op.Kind == vfs.OpWrite || op.Kind == vfs.OpSync) {
			return syscall.ENOSPC
		}
		return nil
	}))
	p := open(t, fs, testConfig(fs))
	res, err := p.Append(batch(t, 2, -1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	if _, err := p.Append(batch(t, 2, -1, 0, 0)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append on a full disk: %v", err)
	}
	if !p.Failed() {
		t.Fatal("partition not failed")
	}
	if _, err := p.Append(batch(t, 2, -1, 0, 0)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append after failure: %v", err)
	}
	if p.HighWatermark() != 2 {
		t.Fatalf("hw %d", p.HighWatermark())
	}
}

func TestAwaitTimesOutAndWakes(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	if err := p.AwaitCommitted(1, time.Now().Add(20*time.Millisecond)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("await with nothing appended: %v", err)
	}
	ch := make(chan struct{}, 1)
	p.Watch(ch)
	if _, err := p.Append(batch(t, 1, -1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("watcher not woken by a commit")
	}
}

func TestLogAppendTime(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs)
	cfg.Validate.TimestampType = record.LogAppendTime
	p := open(t, fs, cfg)
	res, err := p.Append(batch(t, 1, -1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime <= 0 {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	p.AwaitCommitted(1, time.Now().Add(10*time.Second))
	s, _ := p.Read(0, 1<<20, true)
	b, _ := s.ReadInto(nil)
	h, _ := record.ParseHeader(b)
	if h.TimestampType() != record.LogAppendTime || h.MaxTimestamp != res.LogAppendTime {
		t.Fatalf("stored header %+v", h)
	}
	if err := record.VerifyCRC(b); err != nil {
		t.Fatal(err)
	}
}

// A topic with compression.type=gzip stores every batch gzip-compressed, records unchanged.
func TestRecompressToTopicCodec(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs)
	cfg.Recompress, cfg.Codec = true, record.Gzip
	p := open(t, fs, cfg)
	res, err := p.Append(batch(t, 5, 9, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second))
	s, _ := p.Read(0, 1<<20, true)
	b, _ := s.ReadInto(nil)
	h, _ := record.ParseHeader(b)
	if h.Compression() != record.Gzip || h.ProducerID != 9 || h.NumRecords != 5 {
		t.Fatalf("stored header %+v", h)
	}
	recs, err := record.Records(b, 1<<20)
	if err != nil || len(recs) != 5 || string(recs[4].Value) != "v4" {
		t.Fatalf("records %v %v", recs, err)
	}
	// The retry of the same (uncompressed) batch is still recognised.
	if d, err := p.Append(batch(t, 5, 9, 0, 0)); err != nil || !d.Duplicate {
		t.Fatalf("retry: %+v %v", d, err)
	}
}
