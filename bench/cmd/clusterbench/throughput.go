package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/poste-io/poste/bench/internal/cluster"
	"github.com/poste-io/poste/bench/internal/harness"
	"github.com/poste-io/poste/bench/internal/limits"
	"github.com/poste-io/poste/bench/internal/probe"
	"github.com/poste-io/poste/bench/internal/procstat"
	"github.com/twmb/franz-go/pkg/kgo"
)

type tpOptions struct {
	poste, dir, out, jsonOut, command string
	rounds, records, recordSize       int
	partitions                        int
	linger                            time.Duration
	limitsSize                        string
	profile, keepData                 bool
}

// produceJSON is the part of `poste bench produce --json` this program reads.
type produceJSON struct {
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	MBPerS      float64 `json:"mb_per_s"`
	Batches     int64   `json:"batches"`
	Ack         struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"ack_latency_ms"`
}

// tpRun is one measured run of the produce workload against one setup.
type tpRun struct {
	Setup     string  `json:"setup"` // "single" or "cluster"
	Round     int     `json:"round"` // 0 for a profiling run
	Load1     float64 `json:"load1"`
	Produce   produceJSON
	BrokerCPU float64   `json:"broker_cpu_s"` // every broker process, during the produce
	NodeCPU   []float64 `json:"node_cpu_s"`   // per broker process
	ClientCPU float64   `json:"client_cpu_s"`
	Steal     float64   `json:"steal_s"`
	OtherCPU  float64   `json:"other_cpu_s"` // machine busy time used by neither the brokers nor the client
	Profile   []string  `json:"profile,omitempty"`
	Err       string    `json:"error,omitempty"`
}

func (r tpRun) cpuPerGB() float64 {
	if r.Produce.Bytes == 0 {
		return 0
	}
	return r.BrokerCPU / (float64(r.Produce.Bytes) / 1e9)
}

func throughputMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("throughput", flag.ExitOnError)
	var o tpOptions
	fs.StringVar(&o.poste, "poste", "", "poste binary (required)")
	fs.StringVar(&o.dir, "workdir", "", "directory for data, logs and the report (default: a new temporary directory)")
	fs.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	fs.StringVar(&o.jsonOut, "json", "", "also write every run as JSON to this file")
	fs.StringVar(&o.command, "command", "", "the command line to record in the report")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each runs the single node, then the cluster")
	fs.IntVar(&o.records, "records", 1_000_000, "records produced per run")
	fs.IntVar(&o.recordSize, "record-size", 1024, "bytes of each record value")
	fs.IntVar(&o.partitions, "partitions", 8, "partitions of the topic")
	fs.DurationVar(&o.linger, "linger", 5*time.Millisecond, "producer linger")
	fs.StringVar(&o.limitsSize, "limits-size", "1GiB", "bytes each `poste bench limits` throughput probe moves")
	fs.BoolVar(&o.profile, "profile", true, "after the rounds, run each setup once more under perf (if installed), every broker process recorded")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep the brokers' data directories")
	fs.Parse(args)
	if o.poste == "" {
		return errors.New("--poste is required")
	}
	if o.command == "" {
		o.command = "clusterbench throughput " + strings.Join(args, " ")
	}
	var err error
	if o.dir, err = workdir(o.dir, "poste-clusterbench-"); err != nil {
		return err
	}
	logf("work directory %s", o.dir)

	started := time.Now()
	var lims []limits.Run
	lim, err := runLimits(ctx, o, "start")
	if err != nil {
		return err
	}
	lims = append(lims, lim)

	var runs []tpRun
	failed := 0
	record := func(r tpRun) {
		runs = append(runs, r)
		if r.Err != "" {
			failed++
			logf("%s round %d FAILED: %s", r.Setup, r.Round, r.Err)
			return
		}
		logf("%s round %d: %.1f MB/s, %.0f records/s, ack p50 %.1f ms p99 %.1f ms, broker CPU %.2f s/GB, client CPU %.2f s, load %.2f",
			r.Setup, r.Round, r.Produce.MBPerS, r.Produce.RecordsPerS, r.Produce.Ack.P50, r.Produce.Ack.P99, r.cpuPerGB(), r.ClientCPU, r.Load1)
	}
	for round := 1; round <= o.rounds && ctx.Err() == nil; round++ {
		record(runSingle(ctx, o, round, ""))
		if ctx.Err() == nil {
			record(runCluster(ctx, o, round, ""))
		}
	}
	if perf := harness.LookPerf(); o.profile && perf != "" && ctx.Err() == nil {
		record(runSingle(ctx, o, 0, perf))
		record(runCluster(ctx, o, 0, perf))
	}
	if lim, err = runLimits(ctx, o, "end"); err != nil {
		return err
	}
	lims = append(lims, lim)

	md := tpReport(o, started, lims, runs)
	if err := writeReport(md, o.out); err != nil {
		return err
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"command": o.command, "started": started, "limits": lims, "runs": runs}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d run(s) failed; see the report", failed)
	}
	return ctx.Err()
}

func runLimits(ctx context.Context, o tpOptions, when string) (limits.Run, error) {
	l, err := limits.Measure(ctx, o.poste, o.dir, o.limitsSize, when)
	if err == nil {
		logf("%s", l)
	}
	return l, err
}

const topic = "bench"

func runSingle(ctx context.Context, o tpOptions, round int, perf string) (r tpRun) {
	r = tpRun{Setup: "single", Round: round}
	r.Load1, _ = procstat.LoadAvg(procstat.Proc)
	tag := "round" + strconv.Itoa(round)
	if perf != "" {
		tag = "profile"
	}
	p, err := harness.Start(ctx, harness.Poste(o.poste, int32(o.partitions)), o.dir, "single-"+tag, 30*time.Second)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		if err := p.Stop(30 * time.Second); err != nil && r.Err == "" {
			r.Err = err.Error()
		}
		if !o.keepData {
			os.RemoveAll(p.DataDir)
		}
	}()
	if err := prepareTopic(ctx, []string{p.Addr}, int32(o.partitions), 1); err != nil {
		r.Err = err.Error()
		return r
	}
	produce(ctx, o, &r, []string{p.Addr}, []int{p.Pid()}, perf, filepath.Join(o.dir, "single-"+tag))
	return r
}

func runCluster(ctx context.Context, o tpOptions, round int, perf string) (r tpRun) {
	r = tpRun{Setup: "cluster", Round: round}
	r.Load1, _ = procstat.LoadAvg(procstat.Proc)
	tag := "round" + strconv.Itoa(round)
	if perf != "" {
		tag = "profile"
	}
	dir := filepath.Join(o.dir, "cluster-"+tag)
	d, err := cluster.StartDev(ctx, o.poste, dir, 3, dir+".log", 60*time.Second)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer func() {
		if err := d.Stop(60 * time.Second); err != nil && r.Err == "" {
			r.Err = err.Error()
		}
		if !o.keepData {
			os.RemoveAll(dir)
		}
	}()
	if err := prepareTopic(ctx, d.Bootstrap, int32(o.partitions), 3); err != nil {
		r.Err = err.Error()
		return r
	}
	pids := []int{d.Pids[1], d.Pids[2], d.Pids[3]}
	produce(ctx, o, &r, d.Bootstrap, pids, perf, dir)
	return r
}

// prepareTopic creates the benchmark topic with replication factor rf,
// retrying while the brokers are still registering, and waits until every
// partition has a leader and a full ISR.
func prepareTopic(ctx context.Context, brokers []string, partitions int32, rf int16) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return err
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = cluster.CreateTopic(ctx, cl, topic, partitions, rf, nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return cluster.WaitTopic(ctx, cl, topic, partitions, int(rf), 60*time.Second)
}

// produce runs `poste bench produce` against brokers, sampling the CPU of
// every broker process around it, and fills r.
func produce(ctx context.Context, o tpOptions, r *tpRun, brokers []string, pids []int, perf, perfPrefix string) {
	cpu := func() ([]time.Duration, error) {
		out := make([]time.Duration, len(pids))
		for i, pid := range pids {
			c, err := procstat.CPU(procstat.Proc, pid)
			if err != nil {
				return nil, fmt.Errorf("broker pid %d: %v", pid, err)
			}
			out[i] = c
		}
		return out, nil
	}
	args := []string{"-b", strings.Join(brokers, ","), "bench", "produce", "--topic", topic,
		"--records", strconv.Itoa(o.records), "--record-size", strconv.Itoa(o.recordSize),
		"--partitions", strconv.Itoa(o.partitions), "--acks", "all", "--linger", o.linger.String(),
		"--json", "--progress", "0"}
	cmd := exec.CommandContext(ctx, o.poste, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr

	var sess *harness.PerfSession
	if perf != "" {
		var err error
		if sess, err = harness.StartPerf(perf, pids, perfPrefix+".perf.data"); err != nil {
			r.Profile = []string{"no profile: " + err.Error()}
		}
	}
	sys0, err1 := procstat.SystemCPU(procstat.Proc)
	c0, err2 := cpu()
	if err := errors.Join(err1, err2); err != nil {
		r.Err = err.Error()
		return
	}
	runErr := cmd.Run()
	c1, err1 := cpu()
	sys1, err2 := procstat.SystemCPU(procstat.Proc)
	if sess != nil {
		r.Profile = sess.Top(15)
	}
	if runErr != nil {
		r.Err = fmt.Sprintf("poste bench produce: %v: %s", runErr, lastLines(stderr.String(), 5))
		return
	}
	if err := errors.Join(err1, err2); err != nil {
		r.Err = err.Error()
		return
	}
	if err := json.Unmarshal(stdout.Bytes(), &r.Produce); err != nil {
		r.Err = fmt.Sprintf("poste bench produce output: %v: %s", err, stdout.String())
		return
	}
	if r.Produce.Records != int64(o.records) {
		r.Err = fmt.Sprintf("acknowledged %d records of %d", r.Produce.Records, o.records)
		return
	}
	var brokerCPU time.Duration
	for i := range pids {
		d := c1[i] - c0[i]
		brokerCPU += d
		r.NodeCPU = append(r.NodeCPU, d.Seconds())
	}
	r.BrokerCPU = brokerCPU.Seconds()
	client := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.ClientCPU = client.Seconds()
	d := sys1.Sub(sys0)
	r.Steal = d.Steal.Seconds()
	r.OtherCPU = max(0, (d.Busy - brokerCPU - client).Seconds())
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// tpReport renders the Markdown report: limits, medians, ratios, every run, profiles.
func tpReport(o tpOptions, started time.Time, lims []limits.Run, runs []tpRun) string {
	var b strings.Builder
	cpuInfo, _ := probe.ReadCPU("/proc/cpuinfo")
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "Run of %s: `%s`\n\n", started.UTC().Format("2006-01-02 15:04 UTC"), o.command)
	fmt.Fprintf(&b, "**Machine**: %s, %d logical CPUs, kernel %s, %s.\n\n", cpuInfo.Model, cpuInfo.Count, strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintf(&b, "**Workload** (`poste bench produce`): %s records × %d B, %d partitions, acks=all, idempotent, linger %v, batch max 1 MiB, producer buffer 32 MiB, no compression; single node: one `poste serve`, topic replication factor 1; cluster: `poste dev cluster --brokers 3`, replication factor 3, min.insync.replicas 2. Broker defaults otherwise.\n\n",
		commaInt(int64(o.records)), o.recordSize, o.partitions, o.linger)

	b.WriteString(limits.Table(lims))

	type med struct {
		ok                             int
		mbps, rps, p50, p99, cpu, clnt float64
	}
	medOf := func(setup string) med {
		var m med
		var mb, rp, p5, p9, cp, cl []float64
		for _, r := range runs {
			if r.Setup != setup || r.Round == 0 || r.Err != "" {
				continue
			}
			m.ok++
			mb, rp = append(mb, r.Produce.MBPerS), append(rp, r.Produce.RecordsPerS)
			p5, p9 = append(p5, r.Produce.Ack.P50), append(p9, r.Produce.Ack.P99)
			cp, cl = append(cp, r.cpuPerGB()), append(cl, r.ClientCPU)
		}
		m.mbps, m.rps, m.p50, m.p99 = cluster.MedianFloat(mb), cluster.MedianFloat(rp), cluster.MedianFloat(p5), cluster.MedianFloat(p9)
		m.cpu, m.clnt = cluster.MedianFloat(cp), cluster.MedianFloat(cl)
		return m
	}
	s, c := medOf("single"), medOf("cluster")
	ratio := func(a, b float64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Fprintf(&b, "\n**Medians** (%d rounds, single node and cluster alternating)\n\n", o.rounds)
	b.WriteString("| setup | runs ok | records/s | MB/s | ack p50 ms | ack p99 ms | broker CPU-s per GB (all nodes) | client CPU-s |\n|---|---|---|---|---|---|---|---|\n")
	for _, x := range []struct {
		name string
		m    med
	}{{"single node, RF 1", s}, {"3 nodes, RF 3", c}} {
		fmt.Fprintf(&b, "| %s | %d/%d | %s | %.1f | %.1f | %.1f | %.2f | %.2f |\n", x.name, x.m.ok, o.rounds,
			commaInt(int64(x.m.rps)), x.m.mbps, x.m.p50, x.m.p99, x.m.cpu, x.m.clnt)
	}
	fmt.Fprintf(&b, "| ratio cluster / single | | %s | %s | %s | %s | %s | %s |\n\n",
		ratio(c.rps, s.rps), ratio(c.mbps, s.mbps), ratio(c.p50, s.p50), ratio(c.p99, s.p99), ratio(c.cpu, s.cpu), ratio(c.clnt, s.clnt))
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	if s.ok > 0 && c.ok > 0 {
		fmt.Fprintf(&b, "Targets (medians): throughput ≥ 0.50 × single: %s ratio, %s; p99 ≤ 2 × single: %s ratio, %s.\n\n",
			ratio(c.mbps, s.mbps), verdict(c.mbps >= 0.5*s.mbps), ratio(c.p99, s.p99), verdict(c.p99 <= 2*s.p99))
	}

	b.WriteString("**Every run** (load = 1-minute load average before the run; broker CPU = every broker process during the produce, per node in brackets; other CPU = machine busy time used by neither the brokers nor the client)\n\n")
	b.WriteString("| round | setup | records/s | MB/s | ack p50 / p99 / max ms | batches | broker CPU-s (per node) | CPU-s/GB | client CPU-s | other CPU-s | steal s | load | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range runs {
		round := strconv.Itoa(r.Round)
		if r.Round == 0 {
			round = "profile"
		}
		res := "ok"
		if r.Err != "" {
			res = "FAILED: " + strings.ReplaceAll(r.Err, "|", "/")
		}
		per := make([]string, len(r.NodeCPU))
		for i, x := range r.NodeCPU {
			per[i] = fmt.Sprintf("%.2f", x)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %.1f / %.1f / %.1f | %d | %.2f (%s) | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n",
			round, r.Setup, commaInt(int64(r.Produce.RecordsPerS)), r.Produce.MBPerS, r.Produce.Ack.P50, r.Produce.Ack.P99, r.Produce.Ack.Max,
			r.Produce.Batches, r.BrokerCPU, strings.Join(per, ", "), r.cpuPerGB(), r.ClientCPU, r.OtherCPU, r.Steal, r.Load1, res)
	}
	for _, r := range runs {
		if len(r.Profile) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n**Profile, %s** (perf, cpu-clock, self time over every broker process; an extra run, not in the medians)\n\n| # | symbol |\n|---|---|\n", r.Setup)
		for i, line := range r.Profile {
			fmt.Fprintf(&b, "| %d | `%s` |\n", i+1, line)
		}
	}
	return b.String()
}
