package log

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/vfs"
)

// oneBatchSegments returns options under which every 1000-byte batch gets a
// segment of its own.
func oneBatchSegments(c *clock, delay time.Duration) Options {
	return Options{SegmentBytes: 1500, Now: c.Now, FileDeleteDelay: delay}
}

// fillAged appends n 1000-byte batches, batch i stamped (n-i) hours before
// the clock, one segment each.
func fillAged(t *testing.T, l *Log, m *model, c *clock, n int) {
	t.Helper()
	for i := range n {
		ts := c.Now().Add(-time.Duration(n-i) * time.Hour).UnixMilli()
		appendBatches(t, l, m, batchSpec{n: 1, ts: ts, value: 1000})
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestEnforceRetention(t *testing.T) {
	const n = 6 // offsets 0..5, one per segment; batch i is 6-i hours old
	tests := []struct {
		name   string
		policy func(l *Log) RetentionPolicy
		// wantStart is the start offset after retention; the end stays n.
		wantStart   int64
		wantDeleted int
		wantSegs    int
	}{
		{"unlimited", func(*Log) RetentionPolicy { return RetentionPolicy{RetentionMs: -1, RetentionBytes: -1, Limit: n} }, 0, 0, 6},
		{"time keeps younger than 3.5h", func(*Log) RetentionPolicy {
			return RetentionPolicy{RetentionMs: (3*time.Hour + 30*time.Minute).Milliseconds(), RetentionBytes: -1, Limit: n}
		}, 3, 3, 3},
		{"bytes keep at least two segments", func(l *Log) RetentionPolicy {
			return RetentionPolicy{RetentionMs: -1, RetentionBytes: l.Size() / n * 2, Limit: n}
		}, 4, 4, 2},
		{"high watermark limits", func(*Log) RetentionPolicy { return RetentionPolicy{RetentionMs: 1, RetentionBytes: -1, Limit: 2} }, 2, 2, 4},
		{"all expired rolls the active segment", func(*Log) RetentionPolicy { return RetentionPolicy{RetentionMs: 1, RetentionBytes: -1, Limit: n} }, n, n, 1},
		{"zero bytes", func(*Log) RetentionPolicy { return RetentionPolicy{RetentionMs: -1, RetentionBytes: 0, Limit: n} }, n, n, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			fs := vfs.NewMem()
			l := openLog(t, fs, oneBatchSegments(c, time.Minute))
			var m model
			fillAged(t, l, &m, c, n)
			if l.NumSegments() != n {
				t.Fatalf("%d segments, want %d", l.NumSegments(), n)
			}
			res, err := l.EnforceRetention(tc.policy(l))
			must(t, err)
			if res.Deleted != tc.wantDeleted || l.StartOffset() != tc.wantStart || l.NumSegments() != tc.wantSegs {
				t.Fatalf("deleted %d, start %d, %d segments; want %d, %d, %d",
					res.Deleted, l.StartOffset(), l.NumSegments(), tc.wantDeleted, tc.wantStart, tc.wantSegs)
			}
			if l.EndOffset() != n {
				t.Fatalf("end %d, want %d", l.EndOffset(), n)
			}
			m.batches = m.batches[tc.wantStart:]
			checkLog(t, l, &m)
			if _, err := l.Read(tc.wantStart-1, n, 1<<20, true); tc.wantStart > 0 && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below start: %v", err)
			}
			// The start survives a power loss and a reopen, and the renamed
			// files are gone after recovery.
			for _, cfs := range []*vfs.MemFS{fs.CrashClone()} {
				l2 := openLog(t, cfs, oneBatchSegments(c, time.Minute))
				if l2.StartOffset() != tc.wantStart || l2.EndOffset() != n {
					t.Fatalf("after crash [%d, %d), want [%d, %d)", l2.StartOffset(), l2.EndOffset(), tc.wantStart, n)
				}
				checkLog(t, l2, &m)
				names, _ := cfs.List(testDir)
				for _, name := range names {
					if strings.HasSuffix(name, deletedSuffix) {
						t.Fatalf("leftover %s after recovery", name)
					}
				}
				must(t, l2.Close())
			}
			// Appends go on after retention.
			appendBatches(t, l, &m, batchSpec{n: 2, ts: c.Now().UnixMilli(), value: 10})
			checkLog(t, l, &m)
			must(t, l.Close())
		})
	}
}

// TestRetentionDeferredClose: a Slice taken before retention deletes its
// segment stays readable for file.delete.delay.ms; then the files go.
func TestRetentionDeferredClose(t *testing.T) {
	c := newClock()
	fs := vfs.NewMem()
	l := openLog(t, fs, oneBatchSegments(c, time.Minute))
	defer l.Close()
	var m model
	fillAged(t, l, &m, c, 4)
	s, err := l.Read(0, 4, 1<<20, true)
	must(t, err)
	res, err := l.EnforceRetention(RetentionPolicy{RetentionMs: time.Hour.Milliseconds(), RetentionBytes: -1, Limit: 4})
	must(t, err)
	if res.Deleted != 3 || res.Removed != 0 {
		t.Fatalf("result %+v, want 3 deleted, none removed yet", res)
	}
	got, err := s.ReadInto(nil)
	if err != nil || !bytes.Equal(got, m.batches[0]) {
		t.Fatalf("reading a deleted segment within the delay: %v", err)
	}
	names, _ := fs.List(testDir)
	if !slices.Contains(names, segmentName(0, logSuffix)+deletedSuffix) {
		t.Fatalf("files %v: want the renamed segment", names)
	}

	c.advance(time.Minute)
	res, err = l.EnforceRetention(RetentionPolicy{RetentionMs: -1, RetentionBytes: -1, Limit: 4})
	must(t, err)
	if res.Removed != 3 {
		t.Fatalf("result %+v, want 3 removed", res)
	}
	if _, err := s.ReadInto(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("reading after the delay: %v, want ErrClosed", err)
	}
	names, _ = fs.List(testDir)
	for _, name := range names {
		if strings.HasSuffix(name, deletedSuffix) {
			t.Fatalf("leftover %s", name)
		}
	}
}

func TestAdvanceStartOffset(t *testing.T) {
	c := newClock()
	fs := vfs.NewMem()
	l := openLog(t, fs, oneBatchSegments(c, 0))
	var m model
	for range 3 {
		appendBatches(t, l, &m, batchSpec{n: 4, value: 300}) // 4 offsets per segment
	}
	if _, err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off, wantStart int64
		wantSegs       int
		wantErr        error
	}{
		{2, 2, 3, nil}, // inside the first segment
		{1, 2, 3, nil}, // never backwards
		{8, 8, 1, nil}, // the base of the last segment: two sealed go
		{13, 8, 1, ErrOffsetOutOfRange},
		{12, 12, 1, nil}, // the end: the active segment stays
	}
	for _, tc := range tests {
		start, err := l.AdvanceStartOffset(tc.off)
		if !errors.Is(err, tc.wantErr) || start != tc.wantStart || l.StartOffset() != tc.wantStart || l.NumSegments() != tc.wantSegs {
			t.Fatalf("AdvanceStartOffset(%d) = %d, %v with %d segments; want %d, %v, %d",
				tc.off, start, err, l.NumSegments(), tc.wantStart, tc.wantErr, tc.wantSegs)
		}
		// Durable at once.
		l2 := openLog(t, fs.CrashClone(), Options{})
		if l2.StartOffset() != tc.wantStart {
			t.Fatalf("after crash start %d, want %d", l2.StartOffset(), tc.wantStart)
		}
		if _, err := l2.Read(tc.wantStart-1, 12, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read below start after crash: %v", err)
		}
		must(t, l2.Close())
	}
	if _, _, ok, _ := l.OffsetForTimestamp(0); ok {
		t.Fatal("OffsetForTimestamp found a record below the start")
	}
	must(t, l.Close())
}

// renameHookFS calls hook before every Rename and Remove, so a test can take a
// crash image at each step of a retention pass.
type renameHookFS struct {
	vfs.FS
	hook func()
}

func (f renameHookFS) Rename(o, n string) error { f.hook(); return f.FS.Rename(o, n) }
func (f renameHookFS) Remove(n string) error    { f.hook(); return f.FS.Remove(n) }

// TestCrashDuringRetention takes a power-loss image before every rename and
// remove of a retention pass and of the delayed removal. Each must recover to
// a log that starts at the old or the new start offset, holds exactly the
// model's batches from there, keeps no renamed files and accepts appends.
func TestCrashDuringRetention(t *testing.T) {
	for _, delay := range []time.Duration{0, time.Minute} {
		c := newClock()
		mem := vfs.NewMem()
		var images []*vfs.MemFS
		fs := renameHookFS{FS: mem, hook: func() { images = append(images, mem.CrashClone()) }}
		l := openLog(t, fs, oneBatchSegments(c, delay))
		var m model
		fillAged(t, l, &m, c, 5)
		_, err := l.EnforceRetention(RetentionPolicy{RetentionMs: (2*time.Hour + time.Minute).Milliseconds(), RetentionBytes: -1, Limit: 5})
		must(t, err)
		c.advance(delay)
		_, err = l.EnforceRetention(RetentionPolicy{RetentionMs: -1, RetentionBytes: -1, Limit: 5})
		must(t, err)
		images = append(images, mem.CrashClone())
		if len(images) < 6 {
			t.Fatalf("only %d crash images", len(images))
		}
		for i, img := range images {
			l2 := openLog(t, img, oneBatchSegments(c, delay))
			start := l2.StartOffset()
			if start != 0 && start != 3 {
				t.Fatalf("delay %v image %d: start %d, want 0 or 3", delay, i, start)
			}
			want := model{batches: m.batches[start:], end: m.end}
			checkLog(t, l2, &want)
			names, _ := img.List(testDir)
			for _, name := range names {
				if isRetentionLeftover(name) {
					t.Fatalf("delay %v image %d: leftover %s", delay, i, name)
				}
			}
			appendBatches(t, l2, &want, batchSpec{n: 1})
			must(t, l2.Close())
		}
		must(t, l.Close())
	}
}

// TestReconfigure: a smaller segment.bytes applies from the next append.
func TestReconfigure(t *testing.T) {
	l := openLog(t, vfs.NewMem(), Options{})
	defer l.Close()
	var m model
	appendBatches(t, l, &m, batchSpec{value: 1000}, batchSpec{value: 1000})
	if l.NumSegments() != 1 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	l.Reconfigure(Options{SegmentBytes: 1500})
	appendBatches(t, l, &m, batchSpec{value: 1000})
	if l.NumSegments() != 2 {
		t.Fatalf("%d segments after reconfiguring, want 2", l.NumSegments())
	}
	checkLog(t, l, &m)
}
