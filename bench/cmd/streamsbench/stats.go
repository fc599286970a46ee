package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// errBadKinds is returned by parseKinds for an unknown or repeated run kind.
var errBadKinds = errors.New("streamsbench: bad run list")

// kind names one measured run: who processes (the hand-written loop or
// pkg/streams), what and under which processing guarantee. The operations:
// "map" (stateless), "count" (windowed count with pkg/streams' defaults: the
// record cache on, so each commit emits the latest count of each window
// updated since the last), "countall" (the same count with no cache: every
// update emitted) and "table" (the input read as a table, pkg/streams only).
// Restore runs time a fresh instance's restore of a pkg/streams run's
// changelog: "count" after the countall run (one changelog record per input
// record), "table" after the table run.
type kind struct {
	Impl      string // "loop", "streams" or "restore"
	Op        string // "map", "count", "countall" or "table"
	Guarantee string // "alo" or "eos"
}

func (k kind) String() string { return k.Impl + "-" + k.Op + "-" + k.Guarantee }

// counterpart is the loop run a pkg/streams run is compared with.
func (k kind) counterpart() kind { return kind{Impl: "loop", Op: k.Op, Guarantee: k.Guarantee} }

// hasLoop reports whether a pkg/streams run has a loop twin to compare with.
func (k kind) hasLoop() bool { return k.Op != "table" }

// source is the pkg/streams run whose changelog a restore run reads.
func (k kind) source() kind {
	op := k.Op
	if op == "count" {
		op = "countall"
	}
	return kind{Impl: "streams", Op: op, Guarantee: k.Guarantee}
}

// restore is the restore run that reads the changelog of pkg/streams run k,
// and whether there is one.
func (k kind) restore() (kind, bool) {
	switch {
	case k.Impl != "streams":
		return kind{}, false
	case k.Op == "countall":
		return kind{"restore", "count", k.Guarantee}, true
	case k.Op == "table":
		return kind{"restore", "table", k.Guarantee}, true
	}
	return kind{}, false
}

// allKinds is the order of one round: each loop right before its pkg/streams
// twin, so the two see the most similar machine, and each restore right after
// the pkg/streams run whose changelog it reads.
var allKinds = []kind{
	{"loop", "map", "alo"}, {"streams", "map", "alo"},
	{"loop", "map", "eos"}, {"streams", "map", "eos"},
	{"loop", "count", "alo"}, {"streams", "count", "alo"},
	{"loop", "count", "eos"}, {"streams", "count", "eos"},
	{"loop", "countall", "alo"}, {"streams", "countall", "alo"}, {"restore", "count", "alo"},
	{"loop", "countall", "eos"}, {"streams", "countall", "eos"}, {"restore", "count", "eos"},
	{"streams", "table", "alo"}, {"restore", "table", "alo"},
	{"streams", "table", "eos"}, {"restore", "table", "eos"},
}

// parseKinds reads a comma-separated selection of run kinds ("all", or names
// such as "loop-map-alo,streams-map-alo"), keeps the round order of allKinds
// and adds the pkg/streams run a selected restore depends on.
func parseKinds(s string) ([]kind, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "all" {
		return append([]kind(nil), allKinds...), nil
	}
	want := map[kind]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		var k kind
		found := false
		for _, c := range allKinds {
			if c.String() == f {
				k, found = c, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: unknown run %q", errBadKinds, f)
		}
		if want[k] {
			return nil, fmt.Errorf("%w: %q given twice", errBadKinds, f)
		}
		want[k] = true
		if k.Impl == "restore" {
			want[k.source()] = true
		}
	}
	var out []kind
	for _, c := range allKinds {
		if want[c] {
			out = append(out, c)
		}
	}
	return out, nil
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// ratio is a/b, or 0 when b is not positive (no counterpart measured).
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// rate is n units per second over d; 0 for a non-positive duration.
func rate(n float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return n / d.Seconds()
}

// verdict says whether value reaches target, as the report prints it.
func verdict(value, target float64) string {
	switch {
	case value <= 0:
		return "not measured"
	case value >= target:
		return "met"
	default:
		return "missed"
	}
}

// restoreSpan is the wall-clock span of a restore made of partition restores
// that each ended at ends[i] after took[i]: from the earliest start to the
// latest end (partitions restore concurrently, so their times overlap).
func restoreSpan(ends []time.Time, took []time.Duration) time.Duration {
	if len(ends) == 0 || len(ends) != len(took) {
		return 0
	}
	first, last := ends[0].Add(-took[0]), ends[0]
	for i := range ends {
		if s := ends[i].Add(-took[i]); s.Before(first) {
			first = s
		}
		if ends[i].After(last) {
			last = ends[i]
		}
	}
	return last.Sub(first)
}

// group formats n with thousands separators (1,234,567), as docs/benchmarks.md does.
func group(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// names lists the kinds' names in order.
func names(ks []kind) []string {
	var s []string
	for _, k := range ks {
		s = append(s, k.String())
	}
	return s
}
