// Command benchrun measures Poste beside the kfake peer: it probes the
// machine's disk, then for each round starts each broker in turn (Poste first,
// then the peer) as a child process on a free port with a fresh data
// directory, runs the produce-then-consume workload against it, samples the
// broker's CPU and memory from /proc, and stops it. After the measured rounds
// it runs each broker once more under perf for its profile, probes the disk
// again, and writes a Markdown report of medians, every run, failures and
// profiles.
//
//	benchrun --poste /tmp/b/poste --peer /tmp/b/kfakepeer --rounds 3 --out results.md
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/poste-io/poste/bench/internal/harness"
	"github.com/poste-io/poste/bench/internal/probe"
	"github.com/poste-io/poste/bench/internal/procstat"
	"github.com/poste-io/poste/bench/internal/report"
	"github.com/poste-io/poste/bench/internal/workload"
)

type options struct {
	poste, peer  string
	rounds       int
	workdir      string
	out, jsonOut string
	profile      bool
	probeMiB     int64
	command      string
	keepData     bool
	startTimeout time.Duration
}

func main() {
	cfg := workload.DefaultConfig()
	cfg.RegisterFlags(flag.CommandLine)
	var o options
	flag.StringVar(&o.poste, "poste", "", "poste binary (empty: do not run Poste)")
	flag.StringVar(&o.peer, "peer", "", "kfakepeer binary (empty: do not run the peer)")
	flag.IntVar(&o.rounds, "rounds", 3, "measured rounds; each runs every broker once")
	flag.StringVar(&o.workdir, "workdir", "", "directory for data, logs and profiles (default: a new temporary directory)")
	flag.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	flag.StringVar(&o.jsonOut, "json", "", "also write every run as JSON to this file")
	flag.BoolVar(&o.profile, "profile", true, "after the measured rounds, run each broker once more under perf (if installed)")
	flag.Int64Var(&o.probeMiB, "probe-mib", 1024, "MiB written by each disk probe")
	flag.StringVar(&o.command, "command", "", "the command line to record in the report (default: this program's)")
	flag.BoolVar(&o.keepData, "keep-data", false, "keep the brokers' data directories")
	flag.DurationVar(&o.startTimeout, "start-timeout", 30*time.Second, "how long a broker may take to accept connections")
	flag.Parse()
	if o.command == "" {
		o.command = strings.Join(os.Args, " ")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	failed, err := run(ctx, cfg, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "benchrun: %d run(s) failed; see the report\n", failed)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg workload.Config, o options) (failed int, err error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	var brokers []harness.Broker
	if o.poste != "" {
		brokers = append(brokers, harness.Poste(o.poste, cfg.Partitions))
	}
	if o.peer != "" {
		brokers = append(brokers, harness.KfakePeer(o.peer, cfg.Topic, cfg.Partitions))
	}
	if len(brokers) == 0 {
		return 0, fmt.Errorf("nothing to run: give --poste and/or --peer")
	}
	if o.workdir == "" {
		if o.workdir, err = os.MkdirTemp("", "poste-bench-"); err != nil {
			return 0, err
		}
	} else if err := os.MkdirAll(o.workdir, 0o755); err != nil {
		return 0, err
	}
	logf("work directory %s", o.workdir)

	in := report.Input{
		Command:  o.command,
		Started:  time.Now(),
		Workload: cfg.Describe(),
		Rounds:   o.rounds,
		Judged:   "poste",
		Targets: report.Targets{ProduceMBps: 800, P99: 30 * time.Millisecond, ConsumeMBps: 1000,
			RSSBytes: 128 << 20, CPUPerGBProduced: 0.6},
	}
	if in.Machine, err = machine(o.workdir); err != nil {
		return 0, err
	}
	if err := diskProbe(&in.Machine, "start", o); err != nil {
		return 0, err
	}

	hopts := harness.Options{Workload: cfg, Workdir: o.workdir, StartTimeout: o.startTimeout,
		StopGrace: 30 * time.Second, ProfileTop: 15, KeepData: o.keepData}
	record := func(r harness.Result) {
		in.Results = append(in.Results, r)
		if r.Err != nil {
			failed++
			logf("%s round %d FAILED: %v (log %s)", r.Broker, r.Round, r.Err, r.LogPath)
			return
		}
		logf("%s round %d: produce %.0f MB/s p50 %v p99 %v, consume %.0f MB/s, CPU %.2f s/GB produced %.2f s/GB consumed, peak RSS %.0f MiB, load %.2f",
			r.Broker, r.Round, r.Produce.MBps(), r.Produce.P50.Round(time.Microsecond), r.Produce.P99.Round(time.Microsecond),
			r.Consume.MBps(), r.CPUPerGBProduced(), r.CPUPerGBConsumed(), float64(r.RSSPeak)/(1<<20), r.Load1)
	}
	for round := 1; round <= o.rounds && ctx.Err() == nil; round++ {
		for _, b := range brokers {
			if ctx.Err() != nil {
				break
			}
			record(harness.Run(ctx, b, round, false, hopts))
		}
	}
	if o.profile && ctx.Err() == nil {
		if hopts.Perf = harness.LookPerf(); hopts.Perf == "" {
			logf("perf not found: no profiles")
		} else {
			for _, b := range brokers {
				record(harness.Run(ctx, b, 0, true, hopts))
			}
		}
	}
	if err := diskProbe(&in.Machine, "end", o); err != nil {
		return failed, err
	}

	var md strings.Builder
	if err := report.Write(&md, in); err != nil {
		return failed, err
	}
	fmt.Print(md.String())
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md.String()), 0o644); err != nil {
			return failed, err
		}
	}
	if o.jsonOut != "" {
		if err := writeJSON(o.jsonOut, in); err != nil {
			return failed, err
		}
	}
	return failed, ctx.Err()
}

func machine(workdir string) (report.Machine, error) {
	cpu, err := probe.ReadCPU("/proc/cpuinfo")
	if err != nil {
		return report.Machine{}, err
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m := report.Machine{CPUModel: cpu.Model, CPUs: cpu.Count, Kernel: strings.TrimSpace(string(kernel)),
		Workdir: workdir, GoVersion: runtime.Version()}
	if fs, dev, err := probe.FSType("/proc/mounts", workdir); err == nil {
		m.FS = fs + " (" + dev + ")"
	}
	return m, nil
}

// diskProbe measures write throughput with and without an fsync per MiB, and
// the latency of an fsync after a 4 KiB append, in the work directory.
func diskProbe(m *report.Machine, when string, o options) error {
	p := report.Probe{When: when, ProbeBytes: o.probeMiB << 20, FsyncAppendBytes: 4096}
	p.Load1, _ = procstat.LoadAvg(procstat.Proc)
	w, err := probe.SeqWrite(o.workdir, o.probeMiB<<20, 1<<20, false)
	if err != nil {
		return err
	}
	ws, err := probe.SeqWrite(o.workdir, o.probeMiB<<20, 1<<20, true)
	if err != nil {
		return err
	}
	fl, err := probe.FsyncLatency(o.workdir, 500, p.FsyncAppendBytes)
	if err != nil {
		return err
	}
	p.WriteMBps, p.WriteFsyncMBps, p.FsyncP50, p.FsyncP99 = w.MBPerSec, ws.MBPerSec, fl.P50, fl.P99
	m.Probes = append(m.Probes, p)
	logf("disk probe (%s): page cache %.0f MB/s, fsync every MiB %.0f MB/s, fsync after 4 KiB p50 %v p99 %v, load %.2f",
		when, p.WriteMBps, p.WriteFsyncMBps, p.FsyncP50, p.FsyncP99, p.Load1)
	return nil
}

// writeJSON saves the raw runs; errors become strings so they survive encoding.
func writeJSON(path string, in report.Input) error {
	type run struct {
		harness.Result
		Err              string  `json:",omitempty"`
		ProduceMBps      float64 `json:"produce_mbps"`
		ConsumeMBps      float64 `json:"consume_mbps"`
		CPUPerGBProduced float64 `json:"cpu_per_gb_produced"`
		CPUPerGBConsumed float64 `json:"cpu_per_gb_consumed"`
	}
	var runs []run
	for _, r := range in.Results {
		x := run{Result: r, ProduceMBps: r.Produce.MBps(), ConsumeMBps: r.Consume.MBps(),
			CPUPerGBProduced: r.CPUPerGBProduced(), CPUPerGBConsumed: r.CPUPerGBConsumed()}
		if r.Err != nil {
			x.Err = r.Err.Error()
		}
		x.Result.Err = nil
		runs = append(runs, x)
	}
	b, err := json.MarshalIndent(map[string]any{"command": in.Command, "started": in.Started, "machine": in.Machine,
		"workload": in.Workload, "summary": report.Summarize(in.Results), "runs": runs}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}
