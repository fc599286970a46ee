package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestParseThroughput(t *testing.T) {
	for _, tc := range []struct {
		in    string
		size  int
		want  float64
		usage bool
	}{
		{in: "0", size: 100, want: 0},
		{in: "-1", size: 100, want: 0},
		{in: "5000", size: 100, want: 5000},
		{in: "2500.5", size: 100, want: 2500.5},
		{in: "10MB/s", size: 1000, want: 10_000},
		{in: "10 MB/s", size: 1000, want: 10_000},
		{in: "1MiB/s", size: 1024, want: 1024},
		{in: "4KiB/s", size: 1024, want: 4},
		{in: "2GB/s", size: 1e6, want: 2000},
		{in: "500B/s", size: 100, want: 5},
		{in: "500/s", size: 100, want: 5},
		{in: "fast", size: 100, usage: true},
		{in: "10MB", size: 100, usage: true}, // a size is not a rate
		{in: "10MB/h", size: 100, usage: true},
		{in: "-10MB/s", size: 100, usage: true},
		{in: "NaN", size: 100, usage: true},
		{in: "", size: 100, usage: true},
	} {
		got, err := parseThroughput(tc.in, tc.size)
		if tc.usage {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("parseThroughput(%q) = %v, %v; want a usage error", tc.in, got, err)
			}
			continue
		}
		if err != nil || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("parseThroughput(%q, %d) = %v, %v; want %v", tc.in, tc.size, got, err, tc.want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want float64
		ok   bool
	}{
		{"1048576", 1 << 20, true},
		{"1MiB", 1 << 20, true},
		{"1.5GiB", 1.5 * (1 << 30), true},
		{"256 KiB", 256 << 10, true},
		{"3MB", 3e6, true},
		{"7B", 7, true},
		{"MiB", 0, false},
		{"-1MiB", 0, false},
		{"1TiB", 0, false},
		{"Inf", 0, false},
	} {
		got, ok := parseBytes(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseBytes(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestLatencyHist(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []time.Duration
		want   latencySummary
	}{
		{name: "empty", want: latencySummary{}},
		{
			name:   "one",
			values: []time.Duration{1500 * time.Microsecond},
			want:   latencySummary{Count: 1, Avg: 1.5, P50: 1.5, P95: 1.5, P99: 1.5, P999: 1.5, Max: 1.5},
		},
		{
			// 1..1000 ms: HDR buckets at three digits hold 1 ms exactly below 2048 ms.
			name:   "uniform",
			values: ramp(1000, time.Millisecond),
			want:   latencySummary{Count: 1000, Avg: 500.5, P50: 500, P95: 950, P99: 990, P999: 999, Max: 1000},
		},
		{
			// Negative durations (a clock step) count as zero; beyond an hour is clamped in
			// the histogram, but the exact maximum is kept.
			name:   "clamped",
			values: []time.Duration{-time.Second, 2 * time.Hour},
			want:   latencySummary{Count: 2, Avg: 3600e3, P50: 0, P95: 3600e3, P99: 3600e3, P999: 3600e3, Max: 7200e3},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLatencyHist()
			for _, v := range tc.values {
				l.record(v)
			}
			got := l.summary()
			near := func(a, b float64) bool { return math.Abs(a-b) <= 0.002*math.Max(1, math.Abs(b)) }
			if got.Count != tc.want.Count || !near(got.Avg, tc.want.Avg) || !near(got.P50, tc.want.P50) ||
				!near(got.P95, tc.want.P95) || !near(got.P99, tc.want.P99) || !near(got.P999, tc.want.P999) || !near(got.Max, tc.want.Max) {
				t.Errorf("summary = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func ramp(n int, step time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * step
	}
	return out
}

func TestMeter(t *testing.T) {
	start := time.Unix(1000, 0)
	m := newMeter(start)
	if m.elapsed() != 0 {
		t.Fatalf("elapsed before any record: %v", m.elapsed())
	}
	m.add(3, 300, start.Add(2*time.Second))
	m.add(1, 100, start.Add(time.Second)) // completions may arrive out of order
	if n, b := m.counts(); n != 4 || b != 400 {
		t.Fatalf("counts %d, %d", n, b)
	}
	if m.elapsed() != 2*time.Second {
		t.Fatalf("elapsed %v, want 2s", m.elapsed())
	}
	r := newBenchReport("produce", "t", 1, "w", m)
	if r.RecordsPerS != 2 || r.MBPerS != 0.0002 || r.Seconds != 2 {
		t.Fatalf("report %+v", r)
	}
}

func TestProgressLine(t *testing.T) {
	got := progressLine("produced", 12500*time.Millisecond, 5*time.Second, 600_000, 500_000, 512_000_000)
	want := "   12.5s  produced 600000 records  100000 records/s  102.40 MB/s\n"
	if got != want {
		t.Errorf("progressLine = %q, want %q", got, want)
	}
}

func TestWatchStalls(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	m := newMeter(time.Now())
	m.add(7, 70, time.Now())
	var out syncWriter
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch(ctx, cancel, &out, "produced", m, time.Millisecond, 20*time.Millisecond)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("watch never declared the stall")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, errStalled) || !strings.Contains(cause.Error(), "after 7 records") {
		t.Fatalf("cause %v, want a stall after 7 records", cause)
	}
	if !strings.Contains(out.String(), "produced 7 records") {
		t.Errorf("no progress line: %q", out.String())
	}
}

func TestBenchValues(t *testing.T) {
	v := newBenchValues(100)
	seen := map[string]bool{}
	for i := range 2000 {
		b := v.at(i)
		if len(b) != 100 || cap(b) != 100 {
			t.Fatalf("value %d: len %d cap %d", i, len(b), cap(b))
		}
		seen[string(b)] = true
	}
	if len(seen) != 2000 {
		t.Errorf("%d distinct values of 2000", len(seen))
	}
	// A value as large as the buffer's span still fits.
	if b := newBenchValues(4 << 20).at(3); len(b) != 4<<20 {
		t.Errorf("large value: %d bytes", len(b))
	}
}

func TestE2ESeen(t *testing.T) {
	rec := func(i uint64, sent int64, size int) *kgo.Record {
		v := make([]byte, size)
		binary.BigEndian.PutUint64(v, uint64(sent))
		binary.BigEndian.PutUint64(v[8:], i)
		return &kgo.Record{Value: v}
	}
	for _, tc := range []struct {
		name   string
		strict bool
		recs   []*kgo.Record
		counts []bool
		errAt  int // index of the record whose check fails, or -1
	}{
		{name: "each once", strict: true, recs: []*kgo.Record{rec(0, 5, 32), rec(2, 6, 32), rec(1, 7, 32)}, counts: []bool{true, true, true}, errAt: -1},
		{name: "duplicate strict", strict: true, recs: []*kgo.Record{rec(1, 5, 32), rec(1, 5, 32)}, counts: []bool{true}, errAt: 1},
		{name: "duplicate skipped", recs: []*kgo.Record{rec(1, 5, 32), rec(1, 5, 32), rec(0, 6, 32)}, counts: []bool{true, false, true}, errAt: -1},
		{name: "foreign size", strict: true, recs: []*kgo.Record{rec(0, 5, 16)}, errAt: 0},
		{name: "index out of run", recs: []*kgo.Record{rec(3, 5, 32)}, errAt: 0},
		{name: "last bit of a word", strict: true, recs: []*kgo.Record{rec(2, 1, 32), rec(1, 1, 32)}, counts: []bool{true, true}, errAt: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newE2ESeen(3, 32, tc.strict)
			for i, r := range tc.recs {
				sent, ok, err := s.check(r)
				if i == tc.errAt {
					if err == nil {
						t.Fatalf("record %d: no error", i)
					}
					return
				}
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if ok != tc.counts[i] {
					t.Fatalf("record %d counted = %v, want %v", i, ok, tc.counts[i])
				}
				if want := int64(binary.BigEndian.Uint64(r.Value)); sent.UnixNano() != want {
					t.Fatalf("record %d sent %v, want %d ns", i, sent, want)
				}
			}
			if tc.errAt >= 0 {
				t.Fatalf("no error at record %d", tc.errAt)
			}
		})
	}
}

func TestLimitsHelpers(t *testing.T) {
	sorted := ramp(200, time.Microsecond)
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{50, 100 * time.Microsecond}, {99, 198 * time.Microsecond}, {100, 200 * time.Microsecond}, {0.1, time.Microsecond}} {
		if got := nearestRank(sorted, tc.p); got != tc.want {
			t.Errorf("nearestRank(p%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if nearestRank(nil, 50) != 0 {
		t.Error("nearestRank of nothing is not 0")
	}

	dir := t.TempDir()
	for _, tc := range []struct {
		content string
		want    float64
	}{{"1.42 0.95 1.26 1/112 19823\n", 1.42}, {"garbage", 0}, {"", 0}} {
		p := filepath.Join(dir, "loadavg")
		if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if got := loadAverage(p); got != tc.want {
			t.Errorf("loadAverage(%q) = %v, want %v", tc.content, got, tc.want)
		}
	}
	if loadAverage(filepath.Join(dir, "absent")) != 0 {
		t.Error("a missing file gives a load")
	}

	// The write probe stops at its byte budget, or earlier at its time budget.
	w, err := probeWrite(dir, 3<<20, time.Minute, true, false)
	if err != nil || w.Bytes != 3<<20 {
		t.Fatalf("probeWrite = %+v, %v", w, err)
	}
	// O_DIRECT needs a file system (and a platform) that takes it: skipped where refused.
	switch d, err := probeWrite(dir, 3<<20, time.Minute, true, true); {
	case errors.Is(err, errNoDirectIO):
		t.Logf("O_DIRECT refused in %s: %v", dir, err)
	case err != nil || d.Bytes != 3<<20:
		t.Fatalf("direct probeWrite = %+v, %v", d, err)
	}
	w, err = probeWrite(dir, 1<<40, time.Nanosecond, false, false)
	if err != nil || w.Bytes > 1<<20 {
		t.Fatalf("time-bounded probeWrite = %+v, %v; want at most one chunk", w, err)
	}
	if _, err := probeWrite(filepath.Join(dir, "absent"), 1<<20, time.Second, false, false); err == nil {
		t.Error("probeWrite into a missing directory succeeded")
	}
	if b := probeNoise(64); bytes.Count(b, b[:1]) == len(b) {
		t.Error("probe noise is constant")
	}
}

// syncWriter is a strings.Builder safe for a writing goroutine and a reading test.
type syncWriter struct {
	mu struct {
		sync.Mutex
		b strings.Builder
	}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.b.String()
}
