package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/poste-io/poste/bench/internal/cluster"
	"github.com/poste-io/poste/bench/internal/procstat"
	"github.com/twmb/franz-go/pkg/kgo"
)

type foOptions struct {
	poste, dir, out, jsonOut, command string
	kills, valueSize                  int
	interval, linger, timeout, pause  time.Duration
	metadataMinAge                    time.Duration // 0: franz-go's default
	keepData                          bool
}

// killRun is what one SIGKILL of the partition's leader showed.
type killRun struct {
	N             int   `json:"n"`
	Node          int32 `json:"node"`           // the leader killed
	WasController bool  `json:"was_controller"` // it was also the active controller
	OldEpoch      int32 `json:"old_epoch"`
	NewLeader     int32 `json:"new_leader"`
	NewEpoch      int32 `json:"new_epoch"`
	Load1         float64
	// From the kill: a surviving broker's metadata names another leader;
	// the first acknowledgement of any record; the first of a record sent
	// after the kill.
	LeaderSeen  time.Duration `json:"leader_seen_ns"`
	FirstAnyAck time.Duration `json:"first_any_ack_ns"`
	FirstNewAck time.Duration `json:"first_new_ack_ns"`
	InFlight    int           `json:"in_flight"` // records the killed leader left unanswered
	Failed      int           `json:"failed"`    // records that completed with an error after the kill
	Rejoin      time.Duration `json:"rejoin_ns"` // restart → ISR full again
	Err         string        `json:"error,omitempty"`
}

func failoverMain(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("failover", flag.ExitOnError)
	var o foOptions
	fs.StringVar(&o.poste, "poste", "", "poste binary (required)")
	fs.StringVar(&o.dir, "workdir", "", "directory for the nodes' files, logs and the report (default: a new temporary directory)")
	fs.StringVar(&o.out, "out", "", "also write the Markdown report to this file")
	fs.StringVar(&o.jsonOut, "json", "", "also write every kill as JSON to this file")
	fs.StringVar(&o.command, "command", "", "the command line to record in the report")
	fs.IntVar(&o.kills, "kills", 20, "leaders to kill, one after the other")
	fs.IntVar(&o.valueSize, "value-size", 100, "bytes of each record value")
	fs.DurationVar(&o.interval, "interval", time.Millisecond, "time between two produced records")
	fs.DurationVar(&o.linger, "linger", time.Millisecond, "producer linger")
	fs.DurationVar(&o.timeout, "timeout", 60*time.Second, "longest wait for a failover or a rejoin before the kill counts as failed")
	fs.DurationVar(&o.pause, "pause", time.Second, "pause after the ISR is full again, before the next kill")
	fs.DurationVar(&o.metadataMinAge, "metadata-min-age", 0, "the producer's kgo.MetadataMinAge, the least time between two metadata refreshes (0: franz-go's default, 5s)")
	fs.BoolVar(&o.keepData, "keep-data", false, "keep the nodes' data directories")
	fs.Parse(args)
	if o.poste == "" {
		return errors.New("--poste is required")
	}
	if o.command == "" {
		o.command = "clusterbench failover " + strings.Join(args, " ")
	}
	var err error
	if o.dir, err = workdir(o.dir, "poste-failover-"); err != nil {
		return err
	}
	logf("work directory %s", o.dir)
	started := time.Now()
	kills, totals, err := failover(ctx, o)
	if err != nil {
		return err
	}
	md := foReport(o, started, kills, totals)
	if err := writeReport(md, o.out); err != nil {
		return err
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(map[string]any{"command": o.command, "started": started, "kills": kills, "totals": totals}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	for _, k := range kills {
		if k.Err != "" {
			return fmt.Errorf("kill %d failed: %s", k.N, k.Err)
		}
	}
	return ctx.Err()
}

// totals counts every record the producer sent over the whole run.
type totals struct {
	Acked, Failed, Pending int
	Errors                 []string // distinct errors of failed records
}

const foTopic = "failover"

func failover(ctx context.Context, o foOptions) ([]killRun, totals, error) {
	// A cluster left from an earlier run would already hold the topic.
	dir := filepath.Join(o.dir, "cluster")
	if err := os.RemoveAll(dir); err != nil {
		return nil, totals{}, err
	}
	c, err := cluster.New(o.poste, dir, 3)
	if err != nil {
		return nil, totals{}, err
	}
	if err := c.Start(); err != nil {
		return nil, totals{}, err
	}
	defer func() {
		if err := c.Stop(30 * time.Second); err != nil {
			logf("stopping the cluster: %v", err)
		}
		if !o.keepData {
			for _, n := range c.Nodes {
				os.RemoveAll(n.DataDir)
			}
		}
	}()
	if err := cluster.WaitListening(ctx, c.Bootstrap(), c.AllAlive, 60*time.Second); err != nil {
		return nil, totals{}, err
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap()...))
	if err != nil {
		return nil, totals{}, err
	}
	defer adm.Close()
	minISR := "2"
	deadline := time.Now().Add(60 * time.Second)
	for {
		err = cluster.CreateTopic(ctx, adm, foTopic, 1, 3, map[string]*string{"min.insync.replicas": &minISR})
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Millisecond) // brokers still registering
	}
	if err != nil {
		return nil, totals{}, err
	}
	if err := cluster.WaitTopic(ctx, adm, foTopic, 1, 3, 60*time.Second); err != nil {
		return nil, totals{}, err
	}

	clientLog, err := os.Create(filepath.Join(o.dir, "client.log"))
	if err != nil {
		return nil, totals{}, err
	}
	defer clientLog.Close()
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Bootstrap()...),
		kgo.DefaultProduceTopic(foTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(o.linger),
		kgo.WithLogger(kgo.BasicLogger(clientLog, clientLogLevel(), func() string {
			return time.Now().UTC().Format("15:04:05.000000 ")
		})),
	}
	if o.metadataMinAge > 0 {
		opts = append(opts, kgo.MetadataMinAge(o.metadataMinAge))
	}
	prod, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, totals{}, err
	}
	var log cluster.AckLog
	pctx, stopProducing := context.WithCancel(ctx)
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		value := make([]byte, o.valueSize)
		t := time.NewTicker(o.interval)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
			i := log.Sent(time.Now())
			// Not pctx: stopping must not cancel buffered records, which the final Flush waits for.
			prod.Produce(context.Background(), &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
				log.Acked(i, time.Now(), err)
			})
		}
	}()
	stop := func() {
		stopProducing()
		select {
		case <-produced:
		case <-time.After(30 * time.Second): // blocked on a full buffer of a cluster that is gone
		}
		fctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		prod.Flush(fctx)
		cancel()
		prod.Close()
	}

	// Warm up: the producer has its id and acknowledgements flow.
	time.Sleep(2 * time.Second)
	if a, _, _ := log.Totals(); a == 0 {
		stop()
		return nil, totals{}, fmt.Errorf("%w: no record acknowledged in the first 2 s", cluster.ErrNotReady)
	}

	var kills []killRun
	for k := 1; k <= o.kills && ctx.Err() == nil; k++ {
		kr := killOnce(ctx, o, c, adm, &log, k)
		kills = append(kills, kr)
		if kr.Err != "" {
			logf("kill %d FAILED: %s", k, kr.Err)
			break
		}
		logf("kill %d: node %d (controller %v), epoch %d→%d, new leader %d; leader seen %v, first ack %v, first ack of a new record %v; %d in flight, %d failed; rejoined in %v",
			k, kr.Node, kr.WasController, kr.OldEpoch, kr.NewEpoch, kr.NewLeader, kr.LeaderSeen.Round(time.Millisecond),
			kr.FirstAnyAck.Round(time.Millisecond), kr.FirstNewAck.Round(time.Millisecond), kr.InFlight, kr.Failed, kr.Rejoin.Round(time.Millisecond))
	}
	stop()
	var t totals
	t.Acked, t.Failed, t.Pending = log.Totals()
	t.Errors = log.Errors()
	return kills, t, nil
}

// killOnce kills the partition's leader, measures until the first record
// sent after the kill is acknowledged, restarts the node and waits for a
// full ISR and the pause.
func killOnce(ctx context.Context, o foOptions, c *cluster.Cluster, adm *kgo.Client, log *cluster.AckLog, k int) (kr killRun) {
	kr.N = k
	st, err := cluster.WaitISR(ctx, adm, -1, foTopic, 0, 3, o.timeout)
	if err != nil {
		kr.Err = err.Error()
		return kr
	}
	kr.Node, kr.OldEpoch, kr.WasController = st.Leader, st.LeaderEpoch, st.Controller == st.Leader
	kr.Load1, _ = procstat.LoadAvg(procstat.Proc)
	node := c.Node(st.Leader)
	if node == nil {
		kr.Err = fmt.Sprintf("leader %d is not a node of the cluster", st.Leader)
		return kr
	}
	survivor := cluster.Survivor([]int32{1, 2, 3}, kr.Node)
	at, err := node.Kill()
	if err != nil {
		kr.Err = err.Error()
		return kr
	}
	deadline := at.Add(o.timeout)
	for kr.LeaderSeen == 0 || kr.FirstNewAck == 0 {
		if time.Now().After(deadline) {
			kr.Err = fmt.Sprintf("no failover within %v (leader seen after %v, first new ack after %v)", o.timeout, kr.LeaderSeen, kr.FirstNewAck)
			return kr
		}
		if kr.LeaderSeen == 0 {
			rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			p, err := cluster.Partition(rctx, adm, survivor, foTopic, 0)
			now := time.Now()
			cancel()
			if err == nil && p.Leader >= 0 && p.Leader != kr.Node {
				kr.LeaderSeen, kr.NewLeader, kr.NewEpoch = now.Sub(at), p.Leader, p.LeaderEpoch
			}
		}
		if kr.FirstNewAck == 0 {
			out := cluster.Measure(log.Since(at), at)
			kr.FirstAnyAck, kr.FirstNewAck = out.FirstAnyAck, out.FirstNewAck
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Outcomes of records the old leader left unanswered may still come in;
	// count them once the failover is over.
	out := cluster.Measure(log.Since(at), at)
	kr.FirstAnyAck, kr.InFlight, kr.Failed = out.FirstAnyAck, out.InFlight, out.Failed

	restart := time.Now()
	if err := node.Start(); err != nil {
		kr.Err = err.Error()
		return kr
	}
	if _, err := cluster.WaitISR(ctx, adm, survivor, foTopic, 0, 3, o.timeout); err != nil {
		kr.Err = "rejoin: " + err.Error()
		return kr
	}
	kr.Rejoin = time.Since(restart)
	time.Sleep(o.pause)
	return kr
}

func foReport(o foOptions, started time.Time, kills []killRun, t totals) string {
	var b strings.Builder
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "Run of %s: `%s` (kernel %s, %s)\n\n", started.UTC().Format("2006-01-02 15:04 UTC"), o.command, strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintf(&b, "**Setup**: 3 `poste serve` nodes (broker and controller each, broker defaults); topic `%s` with 1 partition, replication factor 3, min.insync.replicas 2; one franz-go producer, acks=all, idempotent, linger %v, one %d B record every %v, %s. Each kill: wait for a full ISR, SIGKILL the leader, measure, restart it, wait for a full ISR, pause %v.\n\n",
		foTopic, o.linger, o.valueSize, o.interval, minAgeText(o.metadataMinAge), o.pause)

	var newAck, anyAck, seen []time.Duration
	var ctlNew, otherNew []time.Duration
	for _, k := range kills {
		if k.Err != "" {
			continue
		}
		newAck, anyAck, seen = append(newAck, k.FirstNewAck), append(anyAck, k.FirstAnyAck), append(seen, k.LeaderSeen)
		if k.WasController {
			ctlNew = append(ctlNew, k.FirstNewAck)
		} else {
			otherNew = append(otherNew, k.FirstNewAck)
		}
	}
	b.WriteString("| from the SIGKILL of the leader to … (ms) | kills | min | median | p90 | max |\n|---|---|---|---|---|---|\n")
	row := func(name string, xs []time.Duration) {
		d := cluster.Summarize(xs)
		if d.N == 0 {
			fmt.Fprintf(&b, "| %s | 0 | | | | |\n", name)
			return
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", name, d.N, ms(d.Min), ms(d.P50), ms(d.P90), ms(d.Max))
	}
	row("**the first acknowledgement of a record sent after the kill**", newAck)
	row("… when the killed leader was also the active controller", ctlNew)
	row("… when it was not", otherNew)
	row("the first acknowledgement of any record", anyAck)
	row("a surviving broker's metadata naming the new leader", seen)
	d := cluster.Summarize(newAck)
	under := 0
	for _, x := range newAck {
		if x < 3*time.Second {
			under++
		}
	}
	if d.N > 0 {
		fmt.Fprintf(&b, "\nTarget (failover under 3 s): %d of %d kills under 3 s; median %s ms, max %s ms: %s.\n",
			under, d.N, ms(d.P50), ms(d.Max), map[bool]string{true: "met", false: "not met"}[under == d.N])
	}
	fmt.Fprintf(&b, "\nRecords over the whole run: %s acknowledged, %d failed, %d pending at the end.", commaInt(int64(t.Acked)), t.Failed, t.Pending)
	if len(t.Errors) > 0 {
		fmt.Fprintf(&b, " Errors: %s.", strings.Join(t.Errors, "; "))
	}
	b.WriteString("\n\n**Every kill** (ms from the kill; load = 1-minute load average before it; in flight = records sent before the kill and not yet acknowledged)\n\n")
	b.WriteString("| # | killed | controller too | epoch | new leader | leader seen | first ack | first ack of a new record | in flight | failed | rejoin s | load | result |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, k := range kills {
		res := "ok"
		if k.Err != "" {
			res = "FAILED: " + strings.ReplaceAll(k.Err, "|", "/")
		}
		fmt.Fprintf(&b, "| %d | %d | %s | %d→%d | %d | %s | %s | %s | %d | %d | %.1f | %.2f | %s |\n",
			k.N, k.Node, map[bool]string{true: "yes", false: "no"}[k.WasController], k.OldEpoch, k.NewEpoch, k.NewLeader,
			ms(k.LeaderSeen), ms(k.FirstAnyAck), ms(k.FirstNewAck), k.InFlight, k.Failed, k.Rejoin.Seconds(), k.Load1, res)
	}
	return b.String()
}

func minAgeText(d time.Duration) string {
	if d == 0 {
		return "franz-go's default metadata refresh limits (`MetadataMinAge` 5 s)"
	}
	return fmt.Sprintf("`kgo.MetadataMinAge(%v)` (at most one metadata refresh per %v; franz-go's default is 5 s)", d, d)
}

// clientLogLevel is the producer's log level: info, or debug with POSTE_BENCH_CLIENT_DEBUG=1
// (to see the client's side of a failover: metadata refreshes, backoffs, moves).
func clientLogLevel() kgo.LogLevel {
	if os.Getenv("POSTE_BENCH_CLIENT_DEBUG") != "" {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelInfo
}
