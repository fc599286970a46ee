package cli

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newBenchProduceCommand(g *globals) *cobra.Command {
	var bf benchFlags
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Produce fixed-size records and report throughput and ack latency",
		Long: `Produce --records records of --record-size random bytes (no key) to --topic, creating
it with --partitions partitions if it does not exist, from --producers clients that
each send an equal share, at most at --throughput in total. Records are spread by the
sticky partitioner (one partition per batch).

Reports records/s and MB/s from the first send to the last acknowledgement, and the
distribution of each record's latency from the produce call to its acknowledgement
(with --acks 0, to its write to the connection). The command fails if any record is
not acknowledged, or if none is for --stall-timeout.`,
		Example: `  poste bench produce --records 1000000 --record-size 1024 --partitions 8 --acks all --linger 5ms
  poste bench produce --topic small --records 10000000 --record-size 100 --producers 2
  poste bench produce --throughput 50MB/s --compression lz4 --json`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchProduce(cmd, g, &bf)
		},
	}
	bf.register(cmd, 1_000_000, "0")
	return cmd
}

func runBenchProduce(cmd *cobra.Command, g *globals, bf *benchFlags) error {
	if err := bf.validate(1); err != nil {
		return err
	}
	rate, _ := parseThroughput(bf.throughput, bf.recordSize)
	clients, partitions, err := g.benchProducers(cmd, bf)
	if err != nil {
		return err
	}
	defer closeAll(clients)

	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	m := newMeter(time.Now())
	lat := newLatencyHist()
	go watch(ctx, cancel, cmd.ErrOrStderr(), "produced", m, bf.progress, bf.stallTimeout)

	vals := newBenchValues(bf.recordSize)
	value := func(i int, _ time.Time) []byte { return vals.at(i) }
	if err := produceAll(ctx, cancel, clients, bf.records, rate, value, m, lat); err != nil {
		return g.explain(cmd, err, "produce to "+bf.topic, bf.topic)
	}
	cancel(nil)
	r := newBenchReport("produce", bf.topic, partitions, bf.describe(partitions), m)
	s := lat.summary()
	r.AckLatency = &s
	return r.print(cmd.OutOrStdout(), bf.json)
}

// benchProducers connects --producers clients after making sure the topic exists, and
// returns them with the topic's partition count.
func (g *globals) benchProducers(cmd *cobra.Command, bf *benchFlags) ([]*kgo.Client, int32, error) {
	opts, err := bf.producerOpts()
	if err != nil {
		return nil, 0, err
	}
	first, err := g.newClient(cmd, opts...)
	if err != nil {
		return nil, 0, err
	}
	clients := []*kgo.Client{first}
	partitions, err := g.ensureBenchTopic(cmd, first, bf.topic, bf.partitions, cmd.Flags().Changed("partitions"))
	for err == nil && len(clients) < bf.producers {
		var cl *kgo.Client
		if cl, err = g.newClient(cmd, opts...); err == nil {
			clients = append(clients, cl)
		}
	}
	if err != nil {
		closeAll(clients)
		return nil, 0, err
	}
	return clients, partitions, nil
}

func closeAll(clients []*kgo.Client) {
	for _, cl := range clients {
		cl.Close()
	}
}

// produceAll sends total records, split evenly over the clients, each client from its own
// goroutine; with rate > 0 the clients together send at most rate records per second,
// each pacing its share against its own start. value(i, sent) is record i's value, i
// unique across clients. Every acknowledgement is counted in m and its latency, from the
// produce call, recorded in lat. The first failed record cancels ctx with its error;
// produceAll returns that error, or ctx's cause, or nil once every record is acknowledged.
func produceAll(ctx context.Context, cancel context.CancelCauseFunc, clients []*kgo.Client, total int, rate float64,
	value func(i int, sent time.Time) []byte, m *meter, lat *latencyHist) error {
	var wg sync.WaitGroup
	per, extra := total/len(clients), total%len(clients)
	first := 0
	for p, cl := range clients {
		n := per
		if p < extra {
			n++
		}
		wg.Add(1)
		go func(first, n int) {
			defer wg.Done()
			var interval float64 // seconds between this client's sends
			if rate > 0 {
				interval = float64(len(clients)) / rate
			}
			t0 := time.Now()
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for k := 0; k < n && ctx.Err() == nil; k++ {
				if interval > 0 && !sleepUntil(ctx, timer, t0.Add(time.Duration(float64(k)*interval*1e9))) {
					break
				}
				sent := time.Now()
				cl.Produce(ctx, &kgo.Record{Value: value(first+k, sent)}, func(r *kgo.Record, err error) {
					now := time.Now()
					if err != nil {
						cancel(fmt.Errorf("record to partition %d: %w", r.Partition, err))
						return
					}
					lat.record(now.Sub(sent))
					m.add(1, int64(len(r.Value)), now)
				})
			}
			// Flush returns early only when ctx ends; every callback has then run or will
			// run with the cancellation.
			_ = cl.Flush(ctx)
		}(first, n)
		first += n
	}
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	if n, _ := m.counts(); n != int64(total) {
		return fmt.Errorf("%d of %d records acknowledged", n, total)
	}
	return nil
}

// sleepUntil waits until due or ctx ends, reporting whether due was reached. A due time
// already past returns at once, so a client that fell behind catches up in a burst.
func sleepUntil(ctx context.Context, t *time.Timer, due time.Time) bool {
	d := time.Until(due)
	if d <= 0 {
		return true
	}
	t.Reset(d)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
