package probe

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestReadCPU(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want CPU
		ok   bool
	}{
		{"two", "processor\t: 0\nmodel name\t: AMD EPYC\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n", CPU{"AMD EPYC", 2}, true},
		{"no model", "processor\t: 0\n", CPU{"", 1}, true},
		{"empty", "", CPU{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cpuinfo")
			if err := os.WriteFile(p, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadCPU(p)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSeqWrite(t *testing.T) {
	for _, sync := range []bool{false, true} {
		dir := t.TempDir()
		w, err := SeqWrite(dir, 4<<20, 1<<20, sync)
		if err != nil {
			t.Fatal(err)
		}
		if w.Bytes != 4<<20 || w.MBPerSec <= 0 || w.Synced != sync {
			t.Fatalf("implausible %+v", w)
		}
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("probe left %d files behind", len(left))
		}
	}
	if _, err := SeqWrite(t.TempDir(), 1, 2, false); !errors.Is(err, ErrProbe) {
		t.Fatalf("total < chunk: err = %v", err)
	}
	if _, err := SeqWrite(filepath.Join(t.TempDir(), "missing"), 2, 1, false); !errors.Is(err, ErrProbe) {
		t.Fatalf("missing dir: err = %v", err)
	}
}

func TestFsyncLatency(t *testing.T) {
	f, err := FsyncLatency(t.TempDir(), 20, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if f.N != 20 || f.P50 <= 0 || f.P99 < f.P50 {
		t.Fatalf("implausible %+v", f)
	}
}

func TestFSType(t *testing.T) {
	mounts := filepath.Join(t.TempDir(), "mounts")
	data := "/dev/vda1 / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\n/dev/vdb /tmpfoo xfs rw 0 0\n"
	if err := os.WriteFile(mounts, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, fs, dev string }{
		{"/work/main", "ext4", "/dev/vda1"},
		{"/tmp/x/y", "tmpfs", "tmpfs"},
		{"/tmp", "tmpfs", "tmpfs"},
		{"/tmpfoo/z", "xfs", "/dev/vdb"},
	} {
		fs, dev, err := FSType(mounts, tc.dir)
		if err != nil || fs != tc.fs || dev != tc.dev {
			t.Errorf("FSType(%q) = %q %q %v, want %q %q", tc.dir, fs, dev, err, tc.fs, tc.dev)
		}
	}
}

func TestNoiseIsNotConstant(t *testing.T) {
	b := noise(256)
	seen := map[byte]bool{}
	for _, x := range b {
		seen[x] = true
	}
	if len(seen) < 100 {
		t.Fatalf("only %d distinct bytes in 256", len(seen))
	}
}
