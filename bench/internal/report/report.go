// Package report turns benchmark runs into the Markdown that goes into
// docs/benchmarks.md: the machine's limits measured in the same run, the
// workload, per-broker medians with the ratio between the two brokers and the
// targets, every run, failures with the broker's log, and profile top entries.
// Its functions are pure and safe for concurrent use.
package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/poste-io/poste/bench/internal/harness"
)

// Machine is what the probes measured about this machine.
type Machine struct {
	CPUModel  string
	CPUs      int
	Kernel    string
	FS        string // filesystem type and device of the work directory
	Workdir   string
	Probes    []Probe // one per probing moment (start, end)
	GoVersion string
}

// Probe is one measurement of the disk.
type Probe struct {
	When             string // e.g. "start", "end"
	WriteMBps        float64
	WriteFsyncMBps   float64 // with an fsync after every MiB
	FsyncP50         time.Duration
	FsyncP99         time.Duration
	Load1            float64
	ProbeBytes       int64
	FsyncAppendBytes int
}

// Targets are the goals a broker is judged against; zero fields are not judged.
type Targets struct {
	ProduceMBps      float64 // at least
	P99              time.Duration
	ConsumeMBps      float64 // at least
	RSSBytes         int64   // less than
	CPUPerGBProduced float64 // at most
}

// Median returns the median of xs (the mean of the middle two for an even
// count), or 0 for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Summary is one broker's medians over its successful measured runs.
type Summary struct {
	Broker        string
	OK, Runs      int
	ProduceMBps   float64
	P50ms, P99ms  float64
	ConsumeMBps   float64
	CPUProducedGB float64 // CPU-s per GB produced
	CPUConsumedGB float64
	RSSPeakMiB    float64
}

// Summarize computes a Summary per broker, in the order brokers first appear,
// from measured runs (profiling runs are left out).
func Summarize(results []harness.Result) []Summary {
	var order []string
	by := map[string][]harness.Result{}
	for _, r := range results {
		if r.Profiled {
			continue
		}
		if _, ok := by[r.Broker]; !ok {
			order = append(order, r.Broker)
		}
		by[r.Broker] = append(by[r.Broker], r)
	}
	var out []Summary
	for _, b := range order {
		s := Summary{Broker: b, Runs: len(by[b])}
		var prod, p50, p99, cons, cpuP, cpuC, rss []float64
		for _, r := range by[b] {
			if r.Err != nil {
				continue
			}
			s.OK++
			prod = append(prod, r.Produce.MBps())
			p50 = append(p50, ms(r.Produce.P50))
			p99 = append(p99, ms(r.Produce.P99))
			cons = append(cons, r.Consume.MBps())
			cpuP = append(cpuP, r.CPUPerGBProduced())
			cpuC = append(cpuC, r.CPUPerGBConsumed())
			rss = append(rss, mib(r.RSSPeak))
		}
		s.ProduceMBps, s.P50ms, s.P99ms = Median(prod), Median(p50), Median(p99)
		s.ConsumeMBps, s.CPUProducedGB, s.CPUConsumedGB, s.RSSPeakMiB = Median(cons), Median(cpuP), Median(cpuC), Median(rss)
		out = append(out, s)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// Judge says, for each target, whether s meets it: "yes", "no" or "" (not judged).
func Judge(s Summary, t Targets) map[string]string {
	yn := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	j := map[string]string{}
	if s.OK == 0 {
		return j
	}
	if t.ProduceMBps > 0 {
		j["produce"] = yn(s.ProduceMBps >= t.ProduceMBps)
	}
	if t.P99 > 0 {
		j["p99"] = yn(s.P99ms <= ms(t.P99))
	}
	if t.ConsumeMBps > 0 {
		j["consume"] = yn(s.ConsumeMBps >= t.ConsumeMBps)
	}
	if t.RSSBytes > 0 {
		j["rss"] = yn(s.RSSPeakMiB < mib(t.RSSBytes))
	}
	if t.CPUPerGBProduced > 0 {
		j["cpu"] = yn(s.CPUProducedGB <= t.CPUPerGBProduced)
	}
	return j
}

// Input is everything one report covers.
type Input struct {
	Command  string // how the run was started
	Started  time.Time
	Machine  Machine
	Workload string // workload.Config.Describe()
	Rounds   int
	Results  []harness.Result
	Targets  Targets
	Judged   string // the broker judged against Targets, e.g. "poste"
}

// Write renders in as Markdown.
func Write(w io.Writer, in Input) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }

	p("Run of %s: `%s`\n\n", in.Started.UTC().Format("2006-01-02 15:04 MST"), in.Command)
	p("**Machine** (measured in this run): %s, %d logical CPUs, kernel %s, work directory on %s, %s.\n\n",
		in.Machine.CPUModel, in.Machine.CPUs, in.Machine.Kernel, in.Machine.FS, in.Machine.GoVersion)
	p("| probe | write to page cache | write + fsync every MiB | fsync after a %d B append p50 / p99 | load (1 min) |\n|---|---|---|---|---|\n",
		firstAppend(in.Machine.Probes))
	for _, pr := range in.Machine.Probes {
		p("| %s | %.0f MB/s | %.0f MB/s | %v / %v | %.2f |\n", pr.When, pr.WriteMBps, pr.WriteFsyncMBps,
			pr.FsyncP50.Round(time.Microsecond), pr.FsyncP99.Round(time.Microsecond), pr.Load1)
	}
	p("\n**Workload**: %s. %d measured rounds, brokers alternating within each round; MB = 10^6 bytes of record values.\n\n", in.Workload, in.Rounds)

	sums := Summarize(in.Results)
	p("**Medians**\n\n| broker | runs ok | produce MB/s | produce p50 ms | produce p99 ms | consume MB/s | broker CPU-s per GB produced | per GB consumed | broker peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sums {
		p("| %s | %d/%d | %.0f | %.1f | %.1f | %.0f | %.2f | %.2f | %.0f |\n", s.Broker, s.OK, s.Runs,
			s.ProduceMBps, s.P50ms, s.P99ms, s.ConsumeMBps, s.CPUProducedGB, s.CPUConsumedGB, s.RSSPeakMiB)
	}
	if len(sums) == 2 && sums[0].OK > 0 && sums[1].OK > 0 {
		a, c := sums[0], sums[1]
		p("| ratio %s/%s | | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", a.Broker, c.Broker,
			ratio(a.ProduceMBps, c.ProduceMBps), ratio(a.P50ms, c.P50ms), ratio(a.P99ms, c.P99ms), ratio(a.ConsumeMBps, c.ConsumeMBps),
			ratio(a.CPUProducedGB, c.CPUProducedGB), ratio(a.CPUConsumedGB, c.CPUConsumedGB), ratio(a.RSSPeakMiB, c.RSSPeakMiB))
	}
	for _, s := range sums {
		if s.Broker != in.Judged {
			continue
		}
		j := Judge(s, in.Targets)
		if len(j) == 0 {
			p("\nTargets for %s: not judged, no successful run.\n", s.Broker)
			break
		}
		t := in.Targets
		p("\nTargets for %s (medians): produce ≥ %.0f MB/s: %s; p99 ≤ %v: %s; consume ≥ %.0f MB/s: %s; peak RSS < %.0f MiB: %s; CPU ≤ %.2f s/GB produced: %s.\n",
			s.Broker, t.ProduceMBps, j["produce"], t.P99, j["p99"], t.ConsumeMBps, j["consume"], mib(t.RSSBytes), j["rss"], t.CPUPerGBProduced, j["cpu"])
	}

	p("\n**Every run** (load = 1-minute load average before the run; client CPU = the load generator's CPU-s in each phase; other CPU = machine CPU-s during the run used by neither the broker nor the load generator)\n\n")
	p("| round | broker | produce MB/s | p50 ms | p99 ms | max ms | consume MB/s | CPU-s/GB prod. | CPU-s/GB cons. | client CPU-s prod. / cons. | peak RSS MiB | data dir MB | load | other CPU-s | steal s | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range in.Results {
		round := fmt.Sprint(r.Round)
		if r.Profiled {
			round = "profile"
		}
		status := "ok"
		if r.Err != nil {
			status = "**failed**"
		}
		p("| %s | %s | %.0f | %.1f | %.1f | %.1f | %.0f | %.2f | %.2f | %.2f / %.2f | %.0f | %.0f | %.2f | %.2f | %.2f | %s |\n",
			round, r.Broker, r.Produce.MBps(), ms(r.Produce.P50), ms(r.Produce.P99), ms(r.Produce.Max),
			r.Consume.MBps(), r.CPUPerGBProduced(), r.CPUPerGBConsumed(),
			r.ClientCPUProduce.Seconds(), r.ClientCPUConsume.Seconds(), mib(r.RSSPeak), float64(r.DiskBytes)/1e6,
			r.Load1, r.OtherCPU.Seconds(), r.Steal.Seconds(), status)
	}

	for _, r := range in.Results {
		if r.Err == nil {
			continue
		}
		p("\n**Failure**: %s, round %d: %v\n\nLast lines of the broker's log (%s):\n\n```\n%s\n```\n", r.Broker, r.Round, r.Err, r.LogPath, strings.TrimSpace(r.LogTail))
	}

	for _, r := range in.Results {
		if !r.Profiled || (len(r.ProfileProduce) == 0 && len(r.ProfileConsume) == 0) {
			continue
		}
		p("\n**Profile of %s** (perf, cpu-clock, self time; an extra run, not one of the measured rounds)\n\n", r.Broker)
		p("| # | produce phase | consume phase |\n|---|---|---|\n")
		for i := range max(len(r.ProfileProduce), len(r.ProfileConsume)) {
			p("| %d | %s | %s |\n", i+1, cell(r.ProfileProduce, i), cell(r.ProfileConsume, i))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func firstAppend(ps []Probe) int {
	if len(ps) == 0 {
		return 0
	}
	return ps[0].FsyncAppendBytes
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// cell renders entry i of xs for a table cell, escaping the pipe.
func cell(xs []string, i int) string {
	if i >= len(xs) {
		return ""
	}
	return "`" + strings.ReplaceAll(xs[i], "|", `\|`) + "`"
}
