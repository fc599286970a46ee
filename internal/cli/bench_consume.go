package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchConsumeFlags are the flags of `poste bench consume`.
type benchConsumeFlags struct {
	topic          string
	records        int64
	fetchMaxBytes  int32
	partitionBytes int32
	progress       time.Duration
	stallTimeout   time.Duration
	json           bool
}

func newBenchConsumeCommand(g *globals) *cobra.Command {
	var cf benchConsumeFlags
	cmd := &cobra.Command{
		Use:   "consume",
		Short: "Read a topic from the beginning and report throughput",
		Long: `Read --topic from the oldest record of every partition, without a consumer group,
until --records records have arrived (default: every record the topic held when the
command started), and report records/s and MB/s from the consumer's creation to the last record.

The latency reported is each poll's wait for records: how long the consumer sat idle
waiting for the broker, per batch of records handed over, not a per-record figure.
The command fails on any fetch error, or if no record arrives for --stall-timeout.`,
		Example: `  poste bench produce --topic bench --records 1000000 && poste bench consume --topic bench
  poste bench consume --topic bench --records 500000 --fetch-max-bytes 8MiB --json`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchConsume(cmd, g, &cf)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&cf.topic, "topic", "t", "poste-bench", "topic to read")
	f.Int64VarP(&cf.records, "records", "n", 0, "records to read (0: all the topic holds at the start)")
	f.Int32Var(&cf.fetchMaxBytes, "fetch-max-bytes", 50<<20, "most bytes one fetch response may carry")
	f.Int32Var(&cf.partitionBytes, "fetch-partition-bytes", 1<<20, "most bytes one fetch may return per partition")
	f.DurationVar(&cf.progress, "progress", 5*time.Second, "interval of the progress line on stderr (0: none)")
	f.DurationVar(&cf.stallTimeout, "stall-timeout", 30*time.Second, "fail when no record arrives for this long")
	f.BoolVar(&cf.json, "json", false, "print the result as one JSON object")
	return cmd
}

func runBenchConsume(cmd *cobra.Command, g *globals, cf *benchConsumeFlags) error {
	switch {
	case cf.topic == "":
		return usagef("--topic must not be empty")
	case cf.records < 0:
		return usagef("--records must not be negative")
	case cf.fetchMaxBytes < 1 || cf.partitionBytes < 1:
		return usagef("--fetch-max-bytes and --fetch-partition-bytes must be positive")
	case cf.progress < 0:
		return usagef("--progress must not be negative")
	case cf.stallTimeout <= 0:
		return usagef("--stall-timeout must be positive")
	}
	adm, err := g.newAdmin(cmd)
	if err != nil {
		return err
	}
	defer adm.Close()
	starts, ends, err := g.benchOffsets(cmd, adm, cf.topic)
	if err != nil {
		return err
	}
	want := cf.records
	if want == 0 {
		for p, e := range ends {
			want += e - starts[p]
		}
		if want == 0 {
			return fmt.Errorf("topic %q holds no records: produce some first (poste bench produce --topic %s)", cf.topic, cf.topic)
		}
	}
	at := make(map[int32]kgo.Offset, len(starts))
	for p, o := range starts {
		at[p] = kgo.NewOffset().At(o)
	}
	// The clock starts before the client exists: it fetches from its creation on, and a
	// consumer that connects slowly is part of the measure, as in Kafka's perf tools.
	m := newMeter(time.Now())
	cl, err := g.newClient(cmd,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cf.topic: at}),
		kgo.FetchMaxBytes(cf.fetchMaxBytes),
		kgo.FetchMaxPartitionBytes(cf.partitionBytes),
	)
	if err != nil {
		return err
	}
	defer cl.Close()

	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	wait := newLatencyHist()
	go watch(ctx, cancel, cmd.ErrOrStderr(), "consumed", m, cf.progress, cf.stallTimeout)
	if err := consumeN(ctx, cl, want, m, wait, nil); err != nil {
		return g.explain(cmd, err, "consume "+cf.topic, cf.topic)
	}
	cancel(nil)
	r := newBenchReport("consume", cf.topic, int32(len(starts)), fmt.Sprintf("%d records from %s (%d partitions) from the beginning, fetch max %d B (%d B per partition)",
		want, cf.topic, len(starts), cf.fetchMaxBytes, cf.partitionBytes), m)
	s := wait.summary()
	r.PollLatency = &s
	return r.print(cmd.OutOrStdout(), cf.json)
}

// benchOffsets returns the start and end offset of every partition of topic.
func (g *globals) benchOffsets(cmd *cobra.Command, adm *kadm.Client, topic string) (starts, ends map[int32]int64, err error) {
	ctx, cancel := g.ctx(cmd)
	defer cancel()
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
		lo, err := f(ctx, topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return nil, g.explain(cmd, err, "list offsets of "+topic, topic)
		}
		out := make(map[int32]int64)
		lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		if len(out) == 0 {
			return nil, g.explain(cmd, errOrUnknown(nil), "list offsets", topic)
		}
		return out, nil
	}
	if starts, err = list(adm.ListStartOffsets); err != nil {
		return nil, nil, err
	}
	if ends, err = list(adm.ListEndOffsets); err != nil {
		return nil, nil, err
	}
	return starts, ends, nil
}

// consumeN polls cl until want records have arrived, counting them (values only) in m and
// recording each poll's wait in wait. Each record is first passed, with the time its poll
// returned, to each if not nil: it is counted only if each says so, and an error from each
// ends the run. Records past want are ignored. Any fetch error ends the run; so does ctx,
// with its cause.
func consumeN(ctx context.Context, cl *kgo.Client, want int64, m *meter, wait *latencyHist, each func(*kgo.Record, time.Time) (bool, error)) error {
	var got int64
	for got < want {
		t := time.Now()
		fs := cl.PollFetches(ctx)
		now := time.Now()
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if fs.IsClientClosed() {
			return fmt.Errorf("client closed after %d of %d records", got, want)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return fmt.Errorf("partition %d: %w", errs[0].Partition, errs[0].Err)
		}
		var n, b int64
		var err error
		fs.EachRecord(func(r *kgo.Record) {
			if err != nil || got+n >= want {
				return
			}
			if each != nil {
				var count bool
				if count, err = each(r, now); err != nil || !count {
					return
				}
			}
			n++
			b += int64(len(r.Value))
		})
		if err != nil {
			return err
		}
		if n > 0 {
			wait.record(now.Sub(t))
			m.add(n, b, now)
			got += n
		}
	}
	return nil
}
