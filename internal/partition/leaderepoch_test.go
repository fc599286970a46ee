package partition

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/vfs"
)

func TestEndOffsetFor(t *testing.T) {
	three := []EpochEntry{{0, 0}, {2, 10}, {5, 30}}
	for _, tc := range []struct {
		name       string
		entries    []EpochEntry
		cur, req   int32
		start, end int64
		epoch      int32
		off        int64
	}{
		{"undefined", three, 5, -1, 0, 40, -1, -1},
		{"current", three, 5, 5, 0, 40, 5, 40},
		{"first epoch", three, 5, 0, 0, 40, 0, 10},
		{"gap takes largest below", three, 5, 1, 0, 40, 0, 10},
		{"middle", three, 5, 2, 0, 40, 2, 30},
		{"between middle and latest", three, 5, 4, 0, 40, 2, 30},
		{"newer than known", three, 5, 6, 0, 40, -1, -1},
		{"current epoch without batches yet", three, 7, 5, 0, 40, 5, 40},
		{"current epoch without batches, asked", three, 7, 7, 0, 40, 7, 40},
		{"empty log", nil, 0, 0, 0, 0, 0, 0},
		{"empty log, newer", nil, 0, 1, 0, 0, -1, -1},
		{"older than log epochs", []EpochEntry{{3, 5}, {4, 9}}, 4, 1, 5, 12, 1, 5},
		{"retention removed epoch 0", three, 5, 0, 12, 40, 0, 12},
		{"retention removed epoch 0, ask 2", three, 5, 2, 12, 40, 2, 30},
		{"retention inside epoch 2", three, 5, 1, 12, 40, 1, 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, off := EndOffsetFor(tc.entries, tc.cur, tc.req, tc.start, tc.end)
			if e != tc.epoch || off != tc.off {
				t.Fatalf("EndOffsetFor(%d) = %d, %d; want %d, %d", tc.req, e, off, tc.epoch, tc.off)
			}
		})
	}
}

func TestParseEpochCheckpoint(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []EpochEntry
		bad  bool
	}{
		{in: "0\n0\n", want: []EpochEntry{}},
		{in: "0\n2\n0 0\n3 150\n", want: []EpochEntry{{0, 0}, {3, 150}}},
		{in: "1\n0\n", bad: true},
		{in: "0\n", bad: true},
		{in: "0\n2\n0 0\n", bad: true},
		{in: "0\n1\n0\n", bad: true},
		{in: "0\n2\n3 0\n2 5\n", bad: true},
		{in: "0\n2\n1 5\n2 5\n", bad: true},
		{in: "0\n1\n-1 0\n", bad: true},
		{in: "0\n1\nx 0\n", bad: true},
	} {
		got, err := ParseEpochCheckpoint([]byte(tc.in))
		if tc.bad {
			if !errors.Is(err, ErrBadEpochCheckpoint) {
				t.Errorf("%q: err %v, want ErrBadEpochCheckpoint", tc.in, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back := string(FormatEpochCheckpoint(got)); back != tc.in {
			t.Errorf("round trip of %q gave %q", tc.in, back)
		}
	}
}

// openAt opens the test partition at a leader epoch.
func openAt(t *testing.T, fs vfs.FS, epoch int32) *Partition {
	t.Helper()
	p, err := Open("/data/t-0", "t", [16]byte{1}, 0, epoch, testConfig(fs))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func appendN(t *testing.T, p *Partition, batches, recs int) {
	t.Helper()
	for i := 0; i < batches; i++ {
		res, err := p.Append(batch(t, recs, -1, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func readCheckpoint(t *testing.T, fs vfs.FS) string {
	t.Helper()
	f, err := fs.Open(filepath.Join("/data/t-0", EpochCheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	return string(b[:n])
}

func TestEpochCheckpointAcrossReopens(t *testing.T) {
	fs := vfs.NewMem()
	p := openAt(t, fs, 0)
	if _, err := fs.Stat(filepath.Join("/data/t-0", EpochCheckpointFile)); err == nil {
		t.Fatal("checkpoint written before any batch")
	}
	appendN(t, p, 2, 5) // epoch 0: offsets 0–9
	p.Close()
	p = openAt(t, fs, 2)
	if got := p.EpochEntries(); !slices.Equal(got, []EpochEntry{{0, 0}}) {
		t.Fatalf("entries after reopen: %v", got)
	}
	appendN(t, p, 1, 10) // epoch 2: offsets 10–19
	p.Close()
	p = openAt(t, fs, 5)
	appendN(t, p, 1, 3) // epoch 5: 20–22
	want := []EpochEntry{{0, 0}, {2, 10}, {5, 20}}
	if got := p.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if got := readCheckpoint(t, fs); got != "0\n3\n0 0\n2 10\n5 20\n" {
		t.Fatalf("checkpoint file %q", got)
	}
	for _, c := range []struct {
		req   int32
		epoch int32
		off   int64
	}{{0, 0, 10}, {1, 0, 10}, {2, 2, 20}, {4, 2, 20}, {5, 5, 23}, {6, -1, -1}} {
		e, off, err := p.EndOffsetForEpoch(c.req)
		if err != nil || e != c.epoch || off != c.off {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d, %v; want %d, %d", c.req, e, off, err, c.epoch, c.off)
		}
	}
	p.Close()

	// The same epoch again adds nothing; a newer one without batches answers the log end.
	p = openAt(t, fs, 7)
	defer p.Close()
	if got := p.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
	if e, off, _ := p.EndOffsetForEpoch(7); e != 7 || off != 23 {
		t.Fatalf("current epoch without batches: %d, %d", e, off)
	}
	if e, off, _ := p.EndOffsetForEpoch(5); e != 5 || off != 23 {
		t.Fatalf("epoch 5 ends where epoch 7 starts: %d, %d", e, off)
	}
}

func TestSetLeaderEpoch(t *testing.T) {
	fs := vfs.NewMem()
	p := openAt(t, fs, 1)
	defer p.Close()
	appendN(t, p, 1, 4)
	p.SetLeaderEpoch(3)
	p.SetLeaderEpoch(2) // never goes back
	if e := p.LeaderEpoch(); e != 3 {
		t.Fatalf("leader epoch %d", e)
	}
	appendN(t, p, 2, 1)
	if got, want := p.EpochEntries(), []EpochEntry{{1, 0}, {3, 4}}; !slices.Equal(got, want) {
		t.Fatalf("entries %v, want %v", got, want)
	}
}

// The checkpoint is validated against the log at Open: entries past the log end go, a
// damaged or missing file is rebuilt from the batches' epochs.
func TestEpochCheckpointRecovery(t *testing.T) {
	build := func(t *testing.T) *vfs.MemFS {
		fs := vfs.NewMem()
		p := openAt(t, fs, 0)
		appendN(t, p, 1, 5)
		p.Close()
		p = openAt(t, fs, 4)
		appendN(t, p, 1, 5)
		p.Close()
		return fs
	}
	write := func(t *testing.T, fs vfs.FS, s string) {
		f, err := fs.Create(filepath.Join("/data/t-0", EpochCheckpointFile))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(s))
		f.Close()
	}
	want := []EpochEntry{{0, 0}, {4, 5}}
	for _, tc := range []struct {
		name    string
		corrupt func(t *testing.T, fs vfs.FS)
	}{
		{"intact", func(*testing.T, vfs.FS) {}},
		{"missing", func(t *testing.T, fs vfs.FS) { fs.Remove(filepath.Join("/data/t-0", EpochCheckpointFile)) }},
		{"damaged", func(t *testing.T, fs vfs.FS) { write(t, fs, "0\n7\ngarbage") }},
		{"entry past the log end", func(t *testing.T, fs vfs.FS) { write(t, fs, "0\n3\n0 0\n4 5\n6 10\n") }},
		{"entry lost", func(t *testing.T, fs vfs.FS) { write(t, fs, "0\n1\n0 0\n") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := build(t)
			tc.corrupt(t, fs)
			p := openAt(t, fs, 4)
			defer p.Close()
			if got := p.EpochEntries(); !slices.Equal(got, want) {
				t.Fatalf("entries %v, want %v", got, want)
			}
			if got := readCheckpoint(t, fs); got != string(FormatEpochCheckpoint(want)) {
				t.Fatalf("checkpoint file %q", got)
			}
		})
	}
}

func TestEpochCheckpointWriteFailure(t *testing.T) {
	var broken atomic.Bool
	fs := vfs.NewErrorFS(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op) error {
		if broken.Load() && op.Kind == vfs.OpCreate && strings.HasSuffix(op.Path, ".tmp") {
			return syscall.EIO
		}
		return nil
	}))
	p := openAt(t, fs, 1)
	defer p.Close()
	broken.Store(true)
	if _, err := p.Append(batch(t, 1, -1, 0, 0)); !errors.Is(err, ErrStorage) {
		t.Fatalf("append with a failing checkpoint: %v", err)
	}
	if !p.Failed() {
		t.Fatal("partition not failed")
	}
	if _, _, err := p.EndOffsetForEpoch(1); !errors.Is(err, ErrStorage) {
		t.Fatalf("EndOffsetForEpoch on failed partition: %v", err)
	}
}
