package partition

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/vfs"
)

// fakeClock is an injected clock moved by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// appendCommitted appends a batch of n records and waits for it to be committed.
func appendCommitted(t *testing.T, p *Partition, n int) AppendResult {
	t.Helper()
	res, err := p.Append(batch(t, n, -1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestDeleteRecords(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	for range 5 {
		appendCommitted(t, p, 2) // offsets 0..9
	}
	tests := []struct {
		before, wantLow int64
		wantErr         error
	}{
		{3, 3, nil},
		{2, 3, nil}, // never backwards
		{11, 3, ErrOffsetOutOfRange},
		{-2, 3, ErrOffsetOutOfRange},
		{-1, 10, nil}, // the high watermark
	}
	for _, tc := range tests {
		low, err := p.DeleteRecords(tc.before)
		if !errors.Is(err, tc.wantErr) || low != tc.wantLow || p.LogStartOffset() != tc.wantLow {
			t.Fatalf("DeleteRecords(%d) = %d, %v (start %d); want %d, %v", tc.before, low, err, p.LogStartOffset(), tc.wantLow, tc.wantErr)
		}
	}
	if _, err := p.Read(9, 1<<20, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below the start: %v", err)
	}
	// The start survives a restart.
	p.Close()
	p2 := open(t, fs, testConfig(fs))
	if p2.LogStartOffset() != 10 || p2.HighWatermark() != 10 {
		t.Fatalf("after reopen start %d hw %d", p2.LogStartOffset(), p2.HighWatermark())
	}
}

// TestRetentionByTime drives retention.ms and segment.ms with an injected clock: old data
// goes segment by segment, the active segment is rolled once segment.ms passes, and a
// Reconfigure takes effect at the next pass.
func TestRetentionByTime(t *testing.T) {
	c := &fakeClock{now: time.Now()}
	fs := vfs.NewMem()
	cfg := testConfig(fs)
	cfg.Log.Now = c.Now
	cfg.Log.SegmentMs = time.Hour.Milliseconds()
	cfg.Retention = Retention{Delete: true, Ms: math.MaxInt64, Bytes: -1}
	p := open(t, fs, cfg)

	// batch() stamps records with the wall clock; the injected clock runs ahead of it.
	appendCommitted(t, p, 3) // 0..2
	c.advance(2 * time.Hour)
	appendCommitted(t, p, 3) // 3..5: rolled (segment.ms), a second segment
	c.advance(2 * time.Hour)
	if _, err := p.EnforceRetention(); err != nil { // rolls the aged active segment
		t.Fatal(err)
	}
	appendCommitted(t, p, 1) // 6

	steps := []struct {
		name      string
		retention Retention
		wantStart int64
	}{
		{"unlimited keeps everything", Retention{Delete: true, Ms: -1, Bytes: -1}, 0},
		{"compact only keeps everything", Retention{Delete: false, Ms: 1, Bytes: -1}, 0},
		{"bytes keep the last two segments", Retention{Delete: true, Ms: -1, Bytes: 150}, 3},
		// Every record is stamped about four hours before the clock: all of it goes, the
		// active segment rolled first, and the log stays open at its end.
		{"one hour removes everything", Retention{Delete: true, Ms: time.Hour.Milliseconds(), Bytes: -1}, 7},
	}
	for _, st := range steps {
		cfg.Retention = st.retention
		p.Reconfigure(cfg)
		if _, err := p.EnforceRetention(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := p.LogStartOffset(); got != st.wantStart {
			t.Fatalf("%s: start %d, want %d", st.name, got, st.wantStart)
		}
	}
	if p.LogEndOffset() != 7 || p.HighWatermark() != 7 {
		t.Fatalf("end %d hw %d, want 7", p.LogEndOffset(), p.HighWatermark())
	}
}
