package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poste-io/poste/bench/internal/workload"
)

// The test binary doubles as a fake broker: with HARNESS_HELPER set it listens
// on the port given as its last argument and then behaves as the mode says.
func TestMain(m *testing.M) {
	if mode := os.Getenv("HARNESS_HELPER"); mode != "" {
		helper(mode, os.Args[len(os.Args)-1])
		return
	}
	os.Exit(m.Run())
}

func helper(mode, port string) {
	// Registered before listening, so a SIGTERM sent as soon as the port
	// answers is never lost; only "clean" acts on it.
	term := make(chan os.Signal, 1)
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}
	if mode == "exit-now" {
		os.Exit(3)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		os.Exit(4)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	switch mode {
	case "crash-soon":
		time.Sleep(300 * time.Millisecond)
		os.Exit(2)
	case "clean":
		<-term
		os.Exit(0)
	}
	select {}
}

func helperBroker(t *testing.T, mode string) Broker {
	t.Helper()
	t.Setenv("HARNESS_HELPER", mode)
	return Broker{Name: "helper-" + mode, Bin: os.Args[0], Args: func(port int, _ string) []string {
		return []string{strconv.Itoa(port)}
	}}
}

func TestStartStop(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		startErr error
		stopErr  error
		grace    time.Duration // generous where the helper must exit in time on a loaded machine
	}{
		{"clean", nil, nil, 10 * time.Second},
		{"exit-now", ErrStart, nil, 0},
		{"ignore-term", nil, ErrExit, 300 * time.Millisecond},
		{"crash-soon", nil, ErrExit, 10 * time.Second},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			p, err := Start(context.Background(), helperBroker(t, tc.mode), t.TempDir(), "t", 5*time.Second)
			if !errors.Is(err, tc.startErr) || (tc.startErr != nil && err == nil) {
				t.Fatalf("Start = %v, want %v", err, tc.startErr)
			}
			if err != nil {
				return
			}
			if tc.mode == "crash-soon" {
				deadline := time.Now().Add(5 * time.Second)
				for p.Alive() && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if p.Alive() {
					t.Fatal("helper did not crash")
				}
			}
			err = p.Stop(tc.grace)
			if !errors.Is(err, tc.stopErr) || (tc.stopErr != nil && err == nil) {
				t.Fatalf("Stop = %v, want %v", err, tc.stopErr)
			}
		})
	}
}

func TestStartTimesOut(t *testing.T) {
	b := Broker{Name: "sleeper", Bin: "/bin/sleep", Args: func(int, string) []string { return []string{"30"} }}
	start := time.Now()
	_, err := Start(context.Background(), b, t.TempDir(), "t", 300*time.Millisecond)
	if !errors.Is(err, ErrStart) {
		t.Fatalf("Start = %v, want ErrStart", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("Start took %v to give up", time.Since(start))
	}
}

func TestParsePerfReport(t *testing.T) {
	in := "\n    76.71%  [.] crypto/sha256.block\n     4.34%  [k] irqentry_exit_to_user_mode\n#\n     3.45%  [.] runtime.memmove\n"
	for _, tc := range []struct {
		n    int
		want []string
	}{
		{2, []string{"76.71% [.] crypto/sha256.block", "4.34% [k] irqentry_exit_to_user_mode"}},
		{10, []string{"76.71% [.] crypto/sha256.block", "4.34% [k] irqentry_exit_to_user_mode", "3.45% [.] runtime.memmove"}},
		{0, nil},
	} {
		got := parsePerfReport(in, tc.n)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("n=%d: got %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestDirBytes(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	for p, n := range map[string]int{"x": 10, "a/y": 20, "a/b/z": 30} {
		if err := os.WriteFile(filepath.Join(dir, p), make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := DirBytes(dir); err != nil || n != 60 {
		t.Fatalf("DirBytes = %d, %v; want 60", n, err)
	}
}

func buildPeer(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the kfake peer")
	}
	bin := filepath.Join(t.TempDir(), "kfakepeer")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/kfakepeer").CombinedOutput()
	if err != nil {
		t.Fatalf("building kfakepeer: %v\n%s", err, out)
	}
	return bin
}

func smallOptions(t *testing.T) Options {
	cfg := workload.DefaultConfig()
	cfg.Records, cfg.RecordBytes, cfg.Partitions = 4000, 1024, 4
	cfg.MaxBufferedBytes, cfg.BatchMaxBytes = 2<<20, 256<<10
	cfg.StallTimeout = 10 * time.Second
	return Options{Workload: cfg, Workdir: t.TempDir(), StartTimeout: 20 * time.Second, StopGrace: 10 * time.Second, ProfileTop: 5}
}

// TestRunPeer runs the whole measurement against the real kfake peer.
func TestRunPeer(t *testing.T) {
	o := smallOptions(t)
	// Process CPU is counted in clock ticks (10 ms); 40 MB keeps the produce
	// phase's share well above one tick on a fast machine.
	o.Workload.Records = 40000
	b := KfakePeer(buildPeer(t), o.Workload.Topic, o.Workload.Partitions)
	r := Run(context.Background(), b, 1, false, o)
	if r.Err != nil {
		t.Fatalf("Run: %v\n%s", r.Err, r.LogTail)
	}
	wantBytes := int64(o.Workload.Records * o.Workload.RecordBytes)
	if r.Produce.Bytes != wantBytes || r.Consume.Bytes != wantBytes {
		t.Fatalf("produced %d consumed %d, want %d", r.Produce.Bytes, r.Consume.Bytes, wantBytes)
	}
	if r.CPUTotal <= 0 || r.CPUTotal < r.CPUProduce+r.CPUConsume || r.RSSPeak <= 0 || r.RSSPeak < r.RSSEnd {
		t.Fatalf("implausible samples: cpu total %v produce %v consume %v, rss peak %d end %d",
			r.CPUTotal, r.CPUProduce, r.CPUConsume, r.RSSPeak, r.RSSEnd)
	}
	if r.DiskBytes < wantBytes {
		t.Fatalf("data dir holds %d bytes after producing %d", r.DiskBytes, wantBytes)
	}
	if left, _ := filepath.Glob(filepath.Join(o.Workdir, "kfake-data-*")); len(left) != 0 {
		t.Fatalf("data directories left behind: %v", left)
	}
	if r.CPUPerGBProduced() <= 0 {
		t.Fatal("CPU per GB produced not computed")
	}
}

// TestRunReportsBrokerFailure: a "broker" that accepts TCP but speaks no Kafka
// and then dies must fail the run, with its exit reported.
func TestRunReportsBrokerFailure(t *testing.T) {
	o := smallOptions(t)
	o.Workload.StallTimeout = 500 * time.Millisecond
	r := Run(context.Background(), helperBroker(t, "crash-soon"), 1, false, o)
	if r.Err == nil {
		t.Fatal("Run against a non-broker succeeded")
	}
	if !errors.Is(r.Err, workload.ErrTopic) || !errors.Is(r.Err, ErrExit) {
		t.Fatalf("Run error %v, want ErrTopic and ErrExit", r.Err)
	}
}

func TestRunProfilesPeer(t *testing.T) {
	perf := LookPerf()
	if perf == "" {
		t.Skip("perf not installed")
	}
	o := smallOptions(t)
	o.Perf = perf
	o.Workload.Records = 50000 // a produce phase long enough to be sampled
	b := KfakePeer(buildPeer(t), o.Workload.Topic, o.Workload.Partitions)
	r := Run(context.Background(), b, 0, true, o)
	if r.Err != nil {
		t.Fatalf("Run: %v\n%s", r.Err, r.LogTail)
	}
	if !r.Profiled || len(r.ProfileProduce) == 0 || !strings.Contains(r.ProfileProduce[0], "%") {
		t.Fatalf("no produce profile: %q", r.ProfileProduce)
	}
}
