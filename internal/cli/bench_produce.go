package cli

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchTxnFlags are the flags only `bench produce` has: the producer's idempotence and
// its transactions.
type benchTxnFlags struct {
	noIdempotence bool
	txnID         string
	txnRecords    int
}

func (tf *benchTxnFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&tf.noIdempotence, "no-idempotence", false, "plain producer: no producer id, no sequence numbers (any --acks)")
	f.StringVar(&tf.txnID, "transactional-id", "", "produce in transactions with this id (with --producers > 1, ID-0, ID-1, …)")
	f.IntVar(&tf.txnRecords, "txn-records", 1000, "records per transaction of each producer (with --transactional-id)")
}

// validate rejects combinations a transactional or plain producer cannot run.
func (tf *benchTxnFlags) validate(cmd *cobra.Command, bf *benchFlags) error {
	switch {
	case tf.txnID == "" && cmd.Flags().Changed("txn-records"):
		return usagef("--txn-records needs --transactional-id")
	case tf.txnID == "":
		return nil
	case tf.noIdempotence:
		return usagef("--transactional-id needs the idempotent producer: drop --no-idempotence")
	case bf.acks != "all" && bf.acks != "-1":
		return usagef("--transactional-id needs --acks all")
	case tf.txnRecords < 1:
		return usagef("--txn-records must be positive")
	}
	return nil
}

// clientOpts are the options of producer p beyond the shared ones.
func (tf *benchTxnFlags) clientOpts(p, producers int) []kgo.Opt {
	var opts []kgo.Opt
	if tf.noIdempotence {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if tf.txnID != "" {
		id := tf.txnID
		if producers > 1 {
			id = fmt.Sprintf("%s-%d", id, p)
		}
		opts = append(opts, kgo.TransactionalID(id))
	}
	return opts
}

// describe is the part of the workload line these flags add.
func (tf *benchTxnFlags) describe(bf *benchFlags) string {
	switch {
	case tf.txnID != "":
		return fmt.Sprintf(", transactions of %d records per producer (id %s)", tf.txnRecords, tf.txnID)
	case tf.noIdempotence, bf.acks == "1", bf.acks == "0":
		return ", not idempotent"
	}
	return ", idempotent"
}

func newBenchProduceCommand(g *globals) *cobra.Command {
	var bf benchFlags
	var tf benchTxnFlags
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Produce fixed-size records and report throughput and ack latency",
		Long: `Produce --records records of --record-size random bytes (no key) to --topic, creating
it with --partitions partitions if it does not exist, from --producers clients that
each send an equal share, at most at --throughput in total. Records are spread by the
sticky partitioner (one partition per batch).

Reports records/s and MB/s from the first send to the last acknowledgement, the record
batches the brokers acknowledged, and the distribution of each record's latency from
the produce call to its acknowledgement (with --acks 0, to its write to the connection).
The command fails if any record is not acknowledged, or if none is for --stall-timeout.

The producer is idempotent with --acks all unless --no-idempotence. With
--transactional-id each producer wraps every --txn-records of its records in a
transaction: it begins one, produces the records, flushes them, and commits; the
command then also reports transactions/s and the latency of each commit
(EndTransaction) call, and the run ends at the last commit.`,
		Example: `  poste bench produce --records 1000000 --record-size 1024 --partitions 8 --acks all --linger 5ms
  poste bench produce --topic small --records 10000000 --record-size 100 --producers 2
  poste bench produce --throughput 50MB/s --compression lz4 --json
  poste bench produce --no-idempotence
  poste bench produce --transactional-id bench-txn --txn-records 10000`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchProduce(cmd, g, &bf, &tf)
		},
	}
	bf.register(cmd, 1_000_000, "0")
	tf.register(cmd)
	return cmd
}

func runBenchProduce(cmd *cobra.Command, g *globals, bf *benchFlags, tf *benchTxnFlags) error {
	if err := bf.validate(1); err != nil {
		return err
	}
	if err := tf.validate(cmd, bf); err != nil {
		return err
	}
	rate, _ := parseThroughput(bf.throughput, bf.recordSize)
	batches := &batchCounter{}
	clients, partitions, err := g.benchProducers(cmd, bf, func(p int) []kgo.Opt {
		return append(tf.clientOpts(p, bf.producers), kgo.WithHooks(batches))
	})
	if err != nil {
		return err
	}
	defer closeAll(clients)
	var txn *txnRun
	if tf.txnID != "" {
		txn = &txnRun{every: tf.txnRecords, commits: newLatencyHist()}
	}

	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	m := newMeter(time.Now())
	lat := newLatencyHist()
	go watch(ctx, cancel, cmd.ErrOrStderr(), "produced", m, bf.progress, bf.stallTimeout)

	vals := newBenchValues(bf.recordSize)
	value := func(i int, _ time.Time) []byte { return vals.at(i) }
	if err := produceAll(ctx, cancel, clients, bf.records, rate, value, m, lat, txn); err != nil {
		return g.explain(cmd, err, "produce to "+bf.topic, bf.topic)
	}
	cancel(nil)
	r := newBenchReport("produce", bf.topic, partitions, bf.describe(partitions)+tf.describe(bf), m)
	s := lat.summary()
	r.AckLatency = &s
	r.Batches = batches.wait(r.Records, 2*time.Second)
	if txn != nil {
		cs := txn.commits.summary()
		r.CommitLatency, r.Transactions = &cs, cs.Count
		if r.Seconds > 0 {
			r.TxnPerS = float64(cs.Count) / r.Seconds
		}
	}
	return r.print(cmd.OutOrStdout(), bf.json)
}

// batchCounter counts the record batches the brokers acknowledged, and the records in
// them, as a kgo hook. The client calls the hook from its own goroutine after the records'
// callbacks may have run, so a reader waits for the records to add up (wait). Safe for
// concurrent use by any number of clients.
type batchCounter struct{ batches, records atomic.Int64 }

func (b *batchCounter) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, _ int32, m kgo.ProduceBatchMetrics) {
	b.records.Add(int64(m.NumRecords))
	b.batches.Add(1)
}

// wait returns the batch count once the batches hold records records, or 0 if they do
// not within timeout (with acks 0 the client may not report batches at all).
func (b *batchCounter) wait(records int64, timeout time.Duration) int64 {
	deadline := time.Now().Add(timeout)
	for b.records.Load() != records {
		if time.Now().After(deadline) {
			return 0
		}
		time.Sleep(time.Millisecond)
	}
	return b.batches.Load()
}

// benchProducers connects --producers clients after making sure the topic exists, and
// returns them with the topic's partition count. perClient, if not nil, gives producer
// p's options beyond the shared ones.
func (g *globals) benchProducers(cmd *cobra.Command, bf *benchFlags, perClient func(p int) []kgo.Opt) ([]*kgo.Client, int32, error) {
	opts, err := bf.producerOpts()
	if err != nil {
		return nil, 0, err
	}
	optsOf := func(p int) []kgo.Opt {
		if perClient == nil {
			return opts
		}
		return append(slices.Clip(opts), perClient(p)...)
	}
	first, err := g.newClient(cmd, optsOf(0)...)
	if err != nil {
		return nil, 0, err
	}
	clients := []*kgo.Client{first}
	partitions, err := g.ensureBenchTopic(cmd, first, bf.topic, bf.partitions, cmd.Flags().Changed("partitions"))
	for err == nil && len(clients) < bf.producers {
		var cl *kgo.Client
		if cl, err = g.newClient(cmd, optsOf(len(clients))...); err == nil {
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

// txnRun makes produceAll wrap every `every` records of each client in a transaction
// and record each commit's latency in commits. The clients must be transactional.
type txnRun struct {
	every   int
	commits *latencyHist
}

// produceAll sends total records, split evenly over the clients, each client from its own
// goroutine; with rate > 0 the clients together send at most rate records per second,
// each pacing its share against its own start. value(i, sent) is record i's value, i
// unique across clients. Every acknowledgement is counted in m and its latency, from the
// produce call, recorded in lat. With txn, each client begins a transaction before every
// txn.every of its records (and its last, shorter share), flushes them and commits; m's
// elapsed time then runs to the last commit. The first failed record or commit cancels ctx
// with its error; produceAll returns that error, or ctx's cause, or nil once every record
// is acknowledged (and committed).
func produceAll(ctx context.Context, cancel context.CancelCauseFunc, clients []*kgo.Client, total int, rate float64,
	value func(i int, sent time.Time) []byte, m *meter, lat *latencyHist, txn *txnRun) error {
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
				if txn != nil && k%txn.every == 0 {
					if err := cl.BeginTransaction(); err != nil {
						cancel(fmt.Errorf("begin transaction: %w", err))
						break
					}
				}
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
				if txn != nil && ((k+1)%txn.every == 0 || k+1 == n) {
					if !commitTxn(ctx, cancel, cl, txn, m) {
						break
					}
				}
			}
			// Flush returns early only when ctx ends; every callback has then run or will
			// run with the cancellation.
			_ = cl.Flush(ctx)
			if txn != nil && ctx.Err() != nil {
				abortTxn(cl)
			}
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

// commitTxn flushes the open transaction's records and commits it, recording the commit
// call's latency; the meter's clock advances to the commit's end. It reports success; on
// failure ctx is cancelled with the cause. Without txn it does nothing.
func commitTxn(ctx context.Context, cancel context.CancelCauseFunc, cl *kgo.Client, txn *txnRun, m *meter) bool {
	if txn == nil {
		return true
	}
	if err := cl.Flush(ctx); err != nil {
		return false // ctx ended: its cause is the error
	}
	if ctx.Err() != nil {
		return false // a record failed: committing would keep the rest
	}
	start := time.Now()
	// Not ctx: cancelling an EndTransaction in flight leaves its outcome unknown.
	if err := cl.EndTransaction(context.WithoutCancel(ctx), kgo.TryCommit); err != nil {
		cancel(fmt.Errorf("commit transaction: %w", err))
		return false
	}
	now := time.Now()
	txn.commits.record(now.Sub(start))
	m.add(0, 0, now)
	return true
}

// abortTxn ends a transaction a failed run left open, so that the broker need not wait for
// its timeout; the run has failed already, so the outcome is only best effort.
func abortTxn(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.AbortBufferedRecords(ctx); err == nil {
		_ = cl.EndTransaction(ctx, kgo.TryAbort)
	}
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
