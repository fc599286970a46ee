package procstat

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"plain", "23597 (cat) R 23595 23595 19723 0 -1 4194304 99 0 0 0 150 25 0 0 20 0 1 0 127125 3133440 388", 1750 * time.Millisecond, true},
		{"name with spaces and parens", "7 (my (odd) name) S 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 9 0 1 1 1", 70 * time.Millisecond, true},
		{"no paren", "7 cat S 1", 0, false},
		{"truncated", "7 (cat) S 1 2 3", 0, false},
		{"non-numeric utime", "7 (cat) S 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat(tc.in)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrParse)) {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want Mem
		ok   bool
	}{
		{"both", "Name:\tposte\nVmHWM:\t  131072 kB\nVmRSS:\t   65536 kB\nThreads:\t9\n", Mem{RSS: 64 << 20, Peak: 128 << 20}, true},
		{"missing hwm", "VmRSS:\t 1 kB\n", Mem{}, false},
		{"bad unit", "VmHWM:\t 1 MB\nVmRSS:\t 1 kB\n", Mem{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want System
		ok   bool
	}{
		{"typical", "cpu  45304 10 11914 195683 292 5 94 48 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n",
			System{Busy: ticks(45304 + 10 + 11914 + 5 + 94), Idle: ticks(195683 + 292), Steal: ticks(48)}, true},
		{"per-cpu line first", "cpu0 1 2 3 4 5 6 7 8 0 0\n", System{}, false},
		{"short", "cpu 1 2 3\n", System{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestFixtureRoot(t *testing.T) {
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "42"), 0o755))
	must(os.WriteFile(filepath.Join(root, "42", "stat"), []byte("42 (poste) S 1 42 42 0 -1 0 0 0 0 0 200 100 0 0 20 0 9 0 1 1 1\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "42", "status"), []byte("VmHWM:\t2048 kB\nVmRSS:\t1024 kB\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "loadavg"), []byte("1.50 1.22 0.80 3/120 23600\n"), 0o644))
	cpu, err := CPU(root, 42)
	must(err)
	if cpu != 3*time.Second {
		t.Fatalf("CPU = %v, want 3s", cpu)
	}
	m, err := Memory(root, 42)
	must(err)
	if m != (Mem{RSS: 1 << 20, Peak: 2 << 20}) {
		t.Fatalf("Memory = %+v", m)
	}
	l, err := LoadAvg(root)
	must(err)
	if l != 1.5 {
		t.Fatalf("LoadAvg = %v", l)
	}
	if _, err := CPU(root, 43); err == nil {
		t.Fatal("CPU of a missing process succeeded")
	}
}

// TestSelf reads the real /proc for this process: CPU time grows with work.
func TestSelf(t *testing.T) {
	pid := os.Getpid()
	before, err := CPU(Proc, pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := CPU(Proc, pid)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU did not grow after 300ms of spinning: %v -> %v (x=%d)", before, after, x)
	}
	m, err := Memory(Proc, pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("implausible memory %+v", m)
	}
	if _, err := SystemCPU(Proc); err != nil {
		t.Fatal(err)
	}
}
