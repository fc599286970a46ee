package log

import (
	"path/filepath"
	"testing"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// BenchmarkAppendSync appends 1 MiB batches to a log on the real
// filesystem and syncs after each, the worst case of durable produce.
func BenchmarkAppendSync(b *testing.B) {
	for _, prealloc := range []bool{false, true} {
		name := "plain"
		if prealloc {
			name = "preallocated"
		}
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "bench-0")
			l, err := Open(dir, Options{FS: vfs.Default, SegmentBytes: 256 << 20, Preallocate: prealloc})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			batch := makeBatch(b, 0, batchSpec{n: 16, value: 64 << 10})
			b.SetBytes(int64(len(batch)))
			for b.Loop() {
				record.SetBaseOffset(batch, l.EndOffset())
				if err := l.Append(batch); err != nil {
					b.Fatal(err)
				}
				if _, err := l.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
