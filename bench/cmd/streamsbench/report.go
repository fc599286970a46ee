package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// summary is the medians of one kind's successful runs.
type summary struct {
	kind                                  kind
	runs                                  int
	recPerS, mbPerS, brokerCPU, clientCPU float64
}

func summarize(kinds []kind, results []result) map[kind]summary {
	out := map[kind]summary{}
	for _, k := range kinds {
		var rs, ms, bc, cc []float64
		for _, r := range results {
			if r.Kind == k.String() && r.Err == "" {
				rs, ms = append(rs, r.RecPerS), append(ms, r.MBPerS)
				bc, cc = append(bc, r.BrokerCPU), append(cc, r.ClientCPU)
			}
		}
		out[k] = summary{kind: k, runs: len(rs), recPerS: median(rs), mbPerS: median(ms), brokerCPU: median(bc), clientCPU: median(cc)}
	}
	return out
}

var guaranteeName = map[string]string{"alo": "at_least_once", "eos": "exactly_once_v2"}

func describe(k kind) string {
	what := "stateless map (upper-case the value)"
	if k.Op == "count" {
		what = "windowed count (tumbling)"
	}
	switch k.Impl {
	case "loop":
		if k.Op == "count" {
			what += ", Go map"
		}
		if k.Guarantee == "eos" {
			return "kgo loop (GroupTransactSession): " + what
		}
		return "kgo loop (commit after ack): " + what
	case "restore":
		return "changelog restore after the " + guaranteeName[k.Guarantee] + " count, Pebble"
	}
	if k.Op == "count" {
		what += ", Pebble store"
	}
	return "pkg/streams " + guaranteeName[k.Guarantee] + ": " + what
}

func report(o options, started time.Time, lims []limits, results []result, profiles []string) string {
	kinds, _ := parseKinds(o.runs)
	sum := summarize(kinds, results)
	var b strings.Builder
	fmt.Fprintf(&b, "**Session** %s–%s UTC, %s, %d logical CPUs.\n\n", started.UTC().Format("2006-01-02 15:04"),
		time.Now().UTC().Format("15:04"), runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&b, "**Command**: `%s`\n\n", o.command)
	fmt.Fprintf(&b, "**Workload**: %s records, %d B values, keys over %s values, %d partitions, event times over %v; tumbling windows of %v, grace %v.\n\n",
		group(o.records), o.valueSize, group(int64(o.keys)), o.partitions, o.span, o.window, o.grace)
	b.WriteString("| `poste bench limits` | loopback TCP | write to page cache | write + fsync every MiB | fsync after 4 KiB p50 / p99 | load (1 min) |\n|---|---|---|---|---|---|\n")
	for _, l := range lims {
		fmt.Fprintf(&b, "| %s | %.0f MB/s | %.0f MB/s | %.0f MB/s | %.0f µs / %.0f µs | %.2f |\n",
			l.When, l.Loopback.MBPerS, l.Write.MBPerS, l.WriteFsync.MBPerS, l.Fsync.P50, l.Fsync.P99, l.Load1)
	}
	fmt.Fprintf(&b, "\n**Medians of %d rounds**\n\n| run | records/s | MB/s | broker CPU-s | client CPU-s | ratio to the loop | target |\n|---|---|---|---|---|---|---|\n", o.rounds)
	for _, k := range kinds {
		s := sum[k]
		ratioCol, target := "", ""
		switch k.Impl {
		case "streams":
			r := ratio(s.recPerS, sum[k.counterpart()].recPerS)
			want := 0.9
			if k.Op == "count" {
				want = 0.5
			}
			ratioCol = fmt.Sprintf("%.2f", r)
			target = fmt.Sprintf("≥ %.2f: %s", want, verdict(r, want))
		case "restore":
			target = "≥ 100 MB/s: " + verdict(s.mbPerS/100, 1)
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f | %.2f | %s | %s |\n", describe(k), group(int64(s.recPerS)), s.mbPerS, s.brokerCPU, s.clientCPU, ratioCol, target)
	}
	b.WriteString("\n**Every run** (MB/s: input keys and values; restore: changelog keys and values)\n\n| run | round | records | seconds (of which after the last record) | records/s | MB/s | broker CPU-s | client CPU-s | output records (read_committed) | load | error |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		secs := fmt.Sprintf("%.2f", r.Seconds)
		if r.Stop > 0 {
			secs += fmt.Sprintf(" (%.2f)", r.Stop)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %.1f | %.2f | %.2f | %s | %.2f | %s |\n", r.Kind, r.Round, group(r.Records), secs,
			group(int64(r.RecPerS)), r.MBPerS, r.BrokerCPU, r.ClientCPU, group(r.Output), r.Load1, r.Err)
	}
	for _, p := range profiles {
		top, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", p).Output()
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "\n`%s`:\n\n```\n%s```\n", p, top)
	}
	return b.String()
}
