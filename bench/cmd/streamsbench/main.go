// Command streamsbench measures pkg/streams against the physical limit of a
// client-side processor: a hand-written kgo consume → transform → produce
// loop doing the same work in the same session. It starts one `poste serve`
// with a fresh data directory, pre-fills an input topic, then alternates, for
// --rounds rounds, the loop and the pkg/streams topology for a stateless map,
// a tumbling-window count (Pebble store) with pkg/streams' defaults (record
// cache on; the loop emits the latest counts at each commit) and the same
// count without a cache (every update emitted), under at_least_once and
// exactly_once_v2, each from a fresh consumer group reading the whole input
// once. It times a fresh instance's changelog restore after each uncached
// count, and runs a table of the input (no cache, so its changelog holds
// every input record) followed by its restore. It prints a Markdown report
// with medians, ratios and targets.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/poste-io/poste/bench/internal/harness"
	"github.com/poste-io/poste/bench/internal/limits"
	"github.com/poste-io/poste/bench/internal/procstat"
	"github.com/twmb/franz-go/pkg/kgo"
)

type options struct {
	poste, workdir, out, jsonOut, command, runs string
	records                                     int64
	valueSize, keys, rounds                     int
	partitions                                  int
	span, window, grace                         time.Duration
	maxLoad                                     float64
	loadWait                                    time.Duration
	profile                                     bool
	limitsSize                                  string
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func main() {
	var o options
	flag.StringVar(&o.poste, "poste", "poste", "the poste binary")
	flag.StringVar(&o.workdir, "workdir", "", "work directory (broker data, state, logs, profiles); default a new temporary one")
	flag.StringVar(&o.out, "out", "", "write the Markdown report here as well as to stdout")
	flag.StringVar(&o.jsonOut, "json", "", "write every run as JSON here")
	flag.StringVar(&o.command, "command", "streamsbench", "the command line to print in the report")
	flag.StringVar(&o.runs, "runs", "all", "comma-separated runs of each round (e.g. loop-map-alo,streams-map-alo); all: "+strings.Join(names(allKinds), ","))
	flag.Int64Var(&o.records, "records", 2_000_000, "input records")
	flag.IntVar(&o.valueSize, "record-size", 100, "bytes per input value")
	flag.IntVar(&o.keys, "keys", 10_000, "distinct input keys")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of every topic")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds; each runs every selected run once")
	flag.DurationVar(&o.span, "span", 5*time.Minute, "event timestamps are spread over this span")
	flag.DurationVar(&o.window, "window", time.Minute, "tumbling window size of the count")
	flag.DurationVar(&o.grace, "grace", time.Minute, "grace of the count's windows")
	flag.Float64Var(&o.maxLoad, "max-load", 1.5, "before each run wait for a 1-minute load average below this")
	flag.DurationVar(&o.loadWait, "load-wait", 60*time.Second, "longest wait for the load")
	flag.BoolVar(&o.profile, "profile", true, "after the rounds, run each selected run once more under a CPU profile (not in the medians)")
	flag.StringVar(&o.limitsSize, "limits-size", "1GiB", "bytes each `poste bench limits` throughput probe moves")
	flag.Parse()
	if err := run(o); err != nil {
		logf("streamsbench: %v", err)
		os.Exit(1)
	}
}

func runLimits(ctx context.Context, o options, dir, when string) (limits.Run, error) {
	l, err := limits.Measure(ctx, o.poste, dir, o.limitsSize, when)
	if err == nil {
		logf("%s", l)
	}
	return l, err
}

func waitLoad(ctx context.Context, o options) {
	deadline := time.Now().Add(o.loadWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if l, err := procstat.LoadAvg(procstat.Proc); err != nil || l < o.maxLoad {
			return
		}
		time.Sleep(2 * time.Second)
	}
}

func run(o options) error {
	kinds, err := parseKinds(o.runs)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.workdir == "" {
		if o.workdir, err = os.MkdirTemp("", "poste-streams-bench."); err != nil {
			return err
		}
	}
	logf("work directory %s", o.workdir)
	started := time.Now()
	p, err := harness.Start(ctx, harness.Poste(o.poste, int32(o.partitions)), o.workdir, "streams", 30*time.Second)
	if err != nil {
		return err
	}
	defer p.Stop(30 * time.Second)
	e := &env{
		brokers: []string{p.Addr}, brokerPid: p.Pid(), input: "streams-bench-input",
		partitions: int32(o.partitions), records: o.records, window: o.window, grace: o.grace,
		stateDir: filepath.Join(o.workdir, "state"), dataDir: p.DataDir,
		changelogs: map[string][2]int64{},
	}
	var lims []limits.Run
	if l, err := runLimits(ctx, o, p.DataDir, "start"); err == nil {
		lims = append(lims, l)
	} else {
		logf("%v", err)
	}
	t0 := time.Now()
	if err := e.prefill(ctx, o.keys, o.valueSize, o.span); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	logf("prefilled %d records (%.1f MB of keys and values) in %v", o.records, float64(e.valueBytes)/1e6, time.Since(t0).Round(time.Millisecond))

	var results []result
	for round := 1; round <= o.rounds; round++ {
		results = append(results, e.round(ctx, o, kinds, round)...)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	var profiles []string
	if o.profile {
		e.profileDir = filepath.Join(o.workdir, "profiles")
		if err := os.MkdirAll(e.profileDir, 0o755); err != nil {
			return err
		}
		for _, r := range e.round(ctx, o, kinds, 0) {
			logf("profiled %s: %.0f records/s", r.Kind, r.RecPerS)
			profiles = append(profiles, filepath.Join(e.profileDir, r.Kind+".pprof"))
		}
	}
	if l, err := runLimits(ctx, o, p.DataDir, "end"); err == nil {
		lims = append(lims, l)
	} else {
		logf("%v", err)
	}
	md := report(o, started, lims, results, profiles)
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return err
		}
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"command": o.command, "started": started, "limits": lims, "runs": results}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.Err != "" {
			return fmt.Errorf("%w: %s round %d: %s", errRun, r.Kind, r.Round, r.Err)
		}
	}
	return nil
}

// round runs every selected kind once, each with fresh names; round 0 is the
// profiled pass.
func (e *env) round(ctx context.Context, o options, kinds []kind, round int) []result {
	var out []result
	tag := fmt.Sprintf("r%d", round)
	if round == 0 {
		tag = "prof"
	}
	for _, k := range kinds {
		if ctx.Err() != nil {
			break
		}
		src := k // the run whose names this one uses: a restore reads its source's changelog
		if k.Impl == "restore" {
			src = k.source()
		}
		name := "sb-" + src.Op + "-" + src.Guarantee + "-" + tag
		outTopic := name + "-out"
		changelog := name + "-" + storeOf(src) + "-changelog"
		waitLoad(ctx, o)
		var r result
		switch k.Impl {
		case "loop":
			if err := e.createTopic(ctx, outTopic+"-loop"); err != nil {
				r = result{Kind: k.String(), Round: round, Err: err.Error()}
				break
			}
			r = e.measure(ctx, k, round, func(ctx context.Context) (int64, time.Duration, error) {
				return e.runLoop(ctx, k, name+"-loop", outTopic+"-loop")
			})
			e.checkOutput(ctx, &r, k, outTopic+"-loop")
			e.deleteTopics(ctx, outTopic+"-loop")
		case "streams":
			if k.Op != "table" { // a table writes only its changelog
				if err := e.createTopic(ctx, outTopic); err != nil {
					r = result{Kind: k.String(), Round: round, Err: err.Error()}
					break
				}
			}
			var stop time.Duration
			r = e.measure(ctx, k, round, func(ctx context.Context) (int64, time.Duration, error) {
				return e.runStreams(ctx, k, name, outTopic, &stop)
			})
			r.Stop = stop.Seconds()
			if k.Op == "table" {
				e.checkChangelog(ctx, &r, changelog)
			} else {
				e.checkOutput(ctx, &r, k, outTopic)
			}
			if r.Err != "" {
				// Tell a lost output from an uncommitted one: what did the group commit?
				if c, err := e.committed(ctx, name); err == nil {
					r.Err += fmt.Sprintf("; the group committed %d input offsets", c)
				}
			}
			if k.Op == "map" {
				e.deleteTopics(ctx, outTopic)
			}
			// Without a restore to follow, the changelog and store are garbage now.
			if rk, ok := k.restore(); !ok || !containsKind(kinds, rk) {
				e.deleteTopics(ctx, outTopic, changelog)
				_ = os.RemoveAll(filepath.Join(e.stateDir, name))
			}
		case "restore":
			size, ok := e.changelogs[changelog]
			if !ok {
				var err error
				if size[0], size[1], err = e.changelogSize(ctx, changelog); err != nil {
					r = result{Kind: k.String(), Round: round, Err: err.Error()}
					break
				}
			}
			var parts int
			r = e.measure(ctx, k, round, func(ctx context.Context) (int64, time.Duration, error) {
				n, took, np, err := e.runRestore(ctx, src, name, outTopic)
				parts = np
				return n, took, err
			})
			r.ChangelogBytes, r.Partitions = size[1], parts
			r.MBPerS = rate(float64(size[1]), time.Duration(r.Seconds*float64(time.Second))) / 1e6
			if r.Err == "" && r.Records != size[0] {
				r.Err = fmt.Sprintf("restored %d of the changelog's %d records", r.Records, size[0])
			}
			delete(e.changelogs, changelog)
			e.deleteTopics(ctx, outTopic, changelog)
			_ = os.RemoveAll(filepath.Join(e.stateDir, name))
			_ = os.RemoveAll(filepath.Join(e.stateDir, name+"-restore"))
		}
		logf("round %d %-20s %10.0f records/s %7.1f MB/s %6.2f s  broker %.1f CPU-s, client %.1f CPU-s, load %.2f %s",
			round, k, r.RecPerS, r.MBPerS, r.Seconds, r.BrokerCPU, r.ClientCPU, r.Load1, r.Err)
		out = append(out, r)
	}
	return out
}

func containsKind(ks []kind, k kind) bool {
	for _, c := range ks {
		if c == k {
			return true
		}
	}
	return false
}

// checkOutput reads a run's output back (read_committed) and fails the run if
// a result is missing. Without a cache (map, countall) every input record
// yields exactly one output record; with one (count) the last count of each
// window must be right (see latestCounts).
func (e *env) checkOutput(ctx context.Context, r *result, k kind, topic string) {
	var last map[string]int64
	var each func(*kgo.Record)
	if k.Op == "count" {
		last = map[string]int64{}
		each = func(rec *kgo.Record) {
			if len(rec.Value) == 8 {
				last[string(rec.Key)] = int64(binary.BigEndian.Uint64(rec.Value))
			} else {
				last[string(rec.Key)] = -1 << 62 // not a count: the sum check fails
			}
		}
	}
	n, _, err := e.readTopic(ctx, topic, each)
	r.Output = n
	switch {
	case r.Err != "":
	case err != nil:
		r.Err = "reading the output: " + err.Error()
	case last != nil:
		r.Err = latestCounts(last, e.truth, e.records)
	case n < e.records:
		r.Err = fmt.Sprintf("output has %d of %d records", n, e.records)
	}
}

// checkChangelog reads a table run's changelog back (read_committed): with no
// cache it holds one record per input record. Its size is kept for the
// restore that follows.
func (e *env) checkChangelog(ctx context.Context, r *result, changelog string) {
	n, byts, err := e.changelogSize(ctx, changelog)
	r.Output = n
	switch {
	case r.Err != "":
	case err != nil:
		r.Err = "reading the changelog: " + err.Error()
	case n < e.records:
		r.Err = fmt.Sprintf("changelog has %d of %d records", n, e.records)
	default:
		e.changelogs[changelog] = [2]int64{n, byts}
	}
}
