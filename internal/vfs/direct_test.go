package vfs

import (
	"bytes"
	"math/rand"
	"path/filepath"
	"testing"
)

// TestWriteDirectAt appends with direct writes of awkward sizes, mixed with plain writes and
// truncations, and checks after each step that the file holds exactly what was appended,
// followed by nothing but zeros up to the next block at most.
func TestWriteDirectAt(t *testing.T) {
	for _, impl := range fsUnderTest {
		t.Run(impl.name, func(t *testing.T) {
			fs, dir := impl.new(t)
			must(t, fs.MkdirAll(dir, 0o755))
			f, err := fs.Create(filepath.Join(dir, "seg.log"))
			must(t, err)
			defer f.Close()
			rng := rand.New(rand.NewSource(1))
			var want []byte
			appendBytes := func(n int, direct bool) {
				t.Helper()
				p := make([]byte, n)
				rng.Read(p)
				write := f.WriteAt
				if direct {
					write = f.WriteDirectAt
				}
				if k, err := write(p, int64(len(want))); err != nil || k != n {
					t.Fatalf("writing %d bytes at %d (direct %v): %d, %v", n, len(want), direct, k, err)
				}
				want = append(want, p...)
				check(t, f, want)
			}
			for _, n := range []int{1, 100, 4095, 1, 4096, 5000, directBufSize + 3, directBufSize - 5000, 2*directBufSize + DirectBlock, 7} {
				appendBytes(n, true)
			}
			appendBytes(300, false) // a plain append between direct ones
			appendBytes(9000, true)
			for _, cut := range []int{len(want) - 10, len(want) - 5000} {
				must(t, f.Truncate(int64(cut)))
				want = want[:cut]
				appendBytes(123, true)
			}
			if of, ok := f.(*osFile); ok {
				if of.direct.refused {
					t.Logf("%s refuses O_DIRECT: the writes went through the page cache", dir)
				} else if of.direct.fd == nil {
					t.Fatal("no O_DIRECT descriptor after direct writes")
				}
			}
		})
	}
}

// check compares the file with want and demands zeros after it, within one block.
func check(t *testing.T, f File, want []byte) {
	t.Helper()
	fi, err := f.Stat()
	must(t, err)
	end := int64(len(want))
	if fi.Size() < end || fi.Size() > (end+DirectBlock-1)&^(DirectBlock-1) {
		t.Fatalf("file size %d for %d bytes written", fi.Size(), end)
	}
	got := make([]byte, fi.Size())
	if _, err := f.ReadAt(got, 0); err != nil && len(got) > 0 {
		t.Fatal(err)
	}
	if !bytes.Equal(got[:end], want) {
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("byte %d of %d differs", i, end)
			}
		}
	}
	if tail := got[end:]; !bytes.Equal(tail, make([]byte, len(tail))) {
		t.Fatalf("non-zero bytes after the logical end %d", end)
	}
}
