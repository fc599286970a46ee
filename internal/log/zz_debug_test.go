package log

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

func TestZZDebug(t *testing.T) {
	raw, _ := os.ReadFile("testdata/fuzz/FuzzRecover/562d1cbbd4144af6")
	line := strings.Split(string(raw), "\n")[1]
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(line, "[]byte("), ")"))
	must(t, err)
	data := []byte(s)
	for pos := 0; pos < len(data); {
		h, err := record.ParseHeader(data[pos:])
		t.Logf("pos %d h=%+v err=%v", pos, h, err)
		if err != nil { break }
		t.Logf("crc: %v", record.VerifyCRC(data[pos:]))
		pos += h.Size()
	}
	fs := vfs.NewMem()
	must(t, fs.MkdirAll(testDir, 0o755))
	fl, _ := fs.Create(segFile(0, logSuffix))
	fl.Write(data)
	fl.Close()
	l, err := Open(testDir, Options{FS: fs, IndexIntervalBytes: 64})
	must(t, err)
	t.Logf("start %d end %d segs %d", l.StartOffset(), l.EndOffset(), l.NumSegments())
	got := readAllLog(t, l, 1<<20)
	t.Logf("len data %d got %d prefix %d", len(data), len(got), commonPrefix(data, got))
	t.Logf("hasprefix %v", bytes.HasPrefix(data, got))
	f, _ := fs.OpenReadWrite(segFile(0, logSuffix))
	fi, _ := f.Stat()
	disk := make([]byte, fi.Size())
	f.ReadAt(disk, 0)
	t.Logf("disk equal to input: %v; idx %+v tidx %+v", bytes.Equal(disk, data), l.mu.segs[0].idx, l.mu.segs[0].tidx)
	for pos := 0; pos < len(got); {
		h, err := record.ParseHeader(got[pos:])
		t.Logf("got pos %d h=%+v err=%v", pos, h, err)
		if err != nil { break }
		pos += h.Size()
	}
}
