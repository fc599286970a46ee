package log

import (
	"math/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/poste-io/poste/internal/vfs"
)

// TestAppendDirect mixes direct and plain appends over several segments, on the operating
// system's filesystem and on MemFS (which pads direct writes with zeros as a device may):
// the log reads back exactly what was appended; a sealed segment's file, and after Close
// every file, ends with its last batch; the log reopens without cutting anything.
func TestAppendDirect(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  string
	}{
		{"os", vfs.Default, filepath.Join(t.TempDir(), "t-0")},
		{"mem", vfs.NewMem(), testDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(7))
			o := Options{FS: tc.fs, SegmentBytes: 20000, IndexIntervalBytes: 1000}
			l, err := Open(tc.dir, o)
			must(t, err)
			var m model
			for i := range 60 {
				b := makeBatch(t, l.EndOffset(), batchSpec{n: 1 + rng.Intn(5), value: rng.Intn(3000)})
				if i%7 == 3 {
					must(t, l.Append(b))
				} else {
					must(t, l.AppendDirect(b))
				}
				m.add(b)
				if i%10 == 9 {
					_, err := l.Sync()
					must(t, err)
				}
			}
			checkLog(t, l, &m)
			if l.NumSegments() < 3 {
				t.Fatalf("%d segments: the test wants several", l.NumSegments())
			}
			files := logFiles(t, tc.fs, tc.dir)
			for _, name := range files[:len(files)-1] {
				checkWholeBatches(t, tc.fs, name)
			}
			must(t, l.Close())
			for _, name := range files {
				checkWholeBatches(t, tc.fs, name)
			}
			l, err = Open(tc.dir, o)
			must(t, err)
			defer l.Close()
			checkLog(t, l, &m)
			// Direct appends go on after a reopen, starting inside the last block.
			b := makeBatch(t, l.EndOffset(), batchSpec{n: 2, value: 10})
			must(t, l.AppendDirect(b))
			m.add(b)
			checkLog(t, l, &m)
		})
	}
}

func logFiles(t *testing.T, fs vfs.FS, dir string) []string {
	t.Helper()
	names, err := fs.List(dir)
	must(t, err)
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, logSuffix) {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out
}

// checkWholeBatches demands that the file be whole batches and nothing after them.
func checkWholeBatches(t *testing.T, fs vfs.FS, name string) {
	t.Helper()
	f, err := fs.Open(name)
	must(t, err)
	defer f.Close()
	fi, err := f.Stat()
	must(t, err)
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil && len(b) > 0 {
		t.Fatal(err)
	}
	if err := verifyBatches(b); err != nil {
		t.Fatalf("%s (%d bytes): %v", name, len(b), err)
	}
}
