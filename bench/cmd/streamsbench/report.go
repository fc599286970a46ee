package main

import (
	"fmt"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/poste-io/poste/bench/internal/limits"
)

// summary is the medians of one kind's successful runs.
type summary struct {
	kind                                  kind
	runs                                  int
	recPerS, mbPerS, brokerCPU, clientCPU float64
	// rounds holds, for a pkg/streams run with a loop twin, its records/s over the
	// loop's in each round where both succeeded: the loop ran just before it, so the
	// pair saw the same machine, whose speed drifts over a session.
	rounds []float64
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
		out[k] = summary{kind: k, runs: len(rs), recPerS: median(rs), mbPerS: median(ms), brokerCPU: median(bc), clientCPU: median(cc),
			rounds: roundRatios(k, results)}
	}
	return out
}

// roundRatios pairs each successful run of a pkg/streams kind with its loop twin's run of
// the same round and returns their records/s ratios (nil for kinds without a twin).
func roundRatios(k kind, results []result) []float64 {
	if k.Impl != "streams" || !k.hasLoop() {
		return nil
	}
	loop := map[int]float64{}
	for _, r := range results {
		if r.Kind == k.counterpart().String() && r.Err == "" && r.RecPerS > 0 {
			loop[r.Round] = r.RecPerS
		}
	}
	var out []float64
	for _, r := range results {
		if l, ok := loop[r.Round]; ok && r.Kind == k.String() && r.Err == "" {
			out = append(out, r.RecPerS/l)
		}
	}
	return out
}

var guaranteeName = map[string]string{"alo": "at_least_once", "eos": "exactly_once_v2"}

// opNames says what each operation does, for the report.
var opNames = map[string]string{
	"map":      "stateless map (upper-case the value)",
	"count":    "windowed count (tumbling), record cache",
	"countall": "windowed count (tumbling), no cache: every update",
	"table":    "table of the input (TableFrom), no cache",
}

func describe(k kind) string {
	what := opNames[k.Op]
	switch k.Impl {
	case "loop":
		switch k.Op {
		case "count":
			what = "windowed count in a Go map, latest counts at each commit"
		case "countall":
			what = "windowed count in a Go map, every update"
		}
		if k.Guarantee == "eos" {
			return "kgo loop (GroupTransactSession): " + what
		}
		return "kgo loop (commit after ack): " + what
	case "restore":
		return "changelog restore after the " + guaranteeName[k.Guarantee] + " " + k.source().Op + " run, Pebble"
	}
	if k.Op != "map" {
		what += ", Pebble store"
	}
	return "pkg/streams " + guaranteeName[k.Guarantee] + ": " + what
}

// target is a run's ratio to its loop twin (if it has one) and its target as
// the report prints them.
func target(k kind, sum map[kind]summary) (ratioCol, goal string) {
	s := sum[k]
	switch {
	case k.Impl == "streams" && k.hasLoop():
		want := 0.9
		if k.Op != "map" {
			want = 0.5
		}
		of := ratio(s.recPerS, sum[k.counterpart()].recPerS)
		if len(s.rounds) == 0 {
			return fmt.Sprintf("%.2f", of), fmt.Sprintf("≥ %.2f: %s", want, verdict(of, want))
		}
		r := median(s.rounds)
		return fmt.Sprintf("%.2f (%.2f–%.2f; of medians %.2f)", r, slices.Min(s.rounds), slices.Max(s.rounds), of),
			fmt.Sprintf("≥ %.2f: %s", want, verdict(r, want))
	case k.Impl == "restore" && k.Op == "table":
		// The target is for changelogs of 100 B values; a count's records are ~24 B.
		return "", "≥ 100 MB/s: " + verdict(s.mbPerS/100, 1)
	}
	return "", ""
}

func report(o options, started time.Time, lims []limits.Run, results []result, profiles []string) string {
	kinds, _ := parseKinds(o.runs)
	sum := summarize(kinds, results)
	var b strings.Builder
	fmt.Fprintf(&b, "**Session** %s–%s UTC, %s, %d logical CPUs.\n\n", started.UTC().Format("2006-01-02 15:04"),
		time.Now().UTC().Format("15:04"), runtime.Version(), runtime.NumCPU())
	fmt.Fprintf(&b, "**Command**: `%s`\n\n", o.command)
	fmt.Fprintf(&b, "**Workload**: %s records, %d B values, keys over %s values, %d partitions, event times over %v; tumbling windows of %v, grace %v.\n\n",
		group(o.records), o.valueSize, group(int64(o.keys)), o.partitions, o.span, o.window, o.grace)
	b.WriteString(limits.Table(lims))
	fmt.Fprintf(&b, "\n**Medians of %d rounds**\n\n| run | records/s | MB/s | broker CPU-s | client CPU-s | ratio to the loop: median of the rounds' (range; ratio of the medians) | target |\n|---|---|---|---|---|---|---|\n", o.rounds)
	for _, k := range kinds {
		s := sum[k]
		ratioCol, goal := target(k, sum)
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.2f | %.2f | %s | %s |\n", describe(k), group(int64(s.recPerS)), s.mbPerS, s.brokerCPU, s.clientCPU, ratioCol, goal)
	}
	b.WriteString("\n**Every run** (MB/s: input keys and values; restore: changelog keys and values; output records: of the output topic, for a table of its changelog)\n\n| run | round | records | seconds (of which after the last record) | records/s | MB/s | broker CPU-s | client CPU-s | output records (read_committed) | load | error |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
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
