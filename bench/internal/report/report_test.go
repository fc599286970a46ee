package report

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/poste-io/poste/bench/internal/harness"
	"github.com/poste-io/poste/bench/internal/workload"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1}, 5},
	} {
		orig := append([]float64(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range orig {
			if orig[i] != tc.in[i] {
				t.Fatalf("Median modified its input: %v", tc.in)
			}
		}
	}
}

// run builds a successful result: mbps MB/s produce over 1 GB, cpu seconds of broker CPU.
func run(broker string, round int, mbps, cpu float64, p99 time.Duration) harness.Result {
	const gb = int64(1e9)
	el := time.Duration(float64(gb) / (mbps * 1e6) * float64(time.Second))
	return harness.Result{
		Broker: broker, Round: round,
		Produce:    workload.ProduceResult{Records: 1, Bytes: gb, Elapsed: el, P50: p99 / 2, P99: p99},
		Consume:    workload.ConsumeResult{Records: 1, Bytes: gb, Elapsed: el / 2},
		CPUProduce: time.Duration(cpu * float64(time.Second)),
		CPUConsume: time.Duration(cpu / 2 * float64(time.Second)),
		RSSPeak:    100 << 20,
	}
}

func TestSummarize(t *testing.T) {
	failed := run("poste", 4, 10000, 0.01, time.Millisecond)
	failed.Err = errors.New("boom")
	profiled := run("poste", 0, 1, 100, time.Hour)
	profiled.Profiled = true
	rs := []harness.Result{
		run("poste", 1, 800, 0.5, 20*time.Millisecond),
		run("kfake", 1, 400, 1.0, 90*time.Millisecond),
		run("poste", 2, 1000, 0.7, 30*time.Millisecond),
		run("kfake", 2, 500, 0.9, 80*time.Millisecond),
		run("poste", 3, 900, 0.6, 40*time.Millisecond),
		failed, profiled,
	}
	s := Summarize(rs)
	if len(s) != 2 || s[0].Broker != "poste" || s[1].Broker != "kfake" {
		t.Fatalf("brokers: %+v", s)
	}
	p := s[0]
	near := func(a, b float64) bool { return a-b < 1e-6*b && b-a < 1e-6*b }
	if p.OK != 3 || p.Runs != 4 || !near(p.ProduceMBps, 900) || !near(p.P99ms, 30) || !near(p.CPUProducedGB, 0.6) || !near(p.ConsumeMBps, 1800) {
		t.Fatalf("poste summary %+v", p)
	}
	if k := s[1]; k.OK != 2 || !near(k.ProduceMBps, 450) || !near(k.CPUProducedGB, 0.95) {
		t.Fatalf("kfake summary %+v", k)
	}

	targets := Targets{ProduceMBps: 800, P99: 30 * time.Millisecond, ConsumeMBps: 1000, RSSBytes: 128 << 20, CPUPerGBProduced: 0.6}
	j := Judge(p, targets)
	want := map[string]string{"produce": "yes", "p99": "yes", "consume": "yes", "rss": "yes", "cpu": "yes"}
	for k, v := range want {
		if j[k] != v {
			t.Errorf("Judge[%s] = %q, want %q", k, j[k], v)
		}
	}
	if j := Judge(s[1], targets); j["produce"] != "no" || j["p99"] != "no" || j["cpu"] != "no" {
		t.Errorf("kfake judged %v", j)
	}
	if j := Judge(Summary{}, targets); len(j) != 0 {
		t.Errorf("empty summary judged %v", j)
	}

	var b strings.Builder
	err := Write(&b, Input{Command: "bench/run.sh", Machine: Machine{CPUModel: "AMD EPYC", CPUs: 2,
		Probes: []Probe{{When: "start", WriteFsyncMBps: 1300, FsyncAppendBytes: 4096}}},
		Workload: "w", Rounds: 3, Results: rs, Targets: targets, Judged: "poste"})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| poste | 3/4 | 900 |", "| kfake | 2/2 | 450 |", "| ratio poste/kfake | | 2.00 |",
		"produce ≥ 800 MB/s: yes", "**Failure**: poste, round 4: boom", "| start |", "1300 MB/s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
