package cli

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eStamp is the size of the header each end-to-end record value starts with: the send
// time in Unix nanoseconds and the record's index in the run, both big-endian.
const e2eStamp = 16

func newBenchE2ECommand(g *globals) *cobra.Command {
	var bf benchFlags
	cmd := &cobra.Command{
		Use:   "e2e",
		Short: "Produce at a fixed rate while consuming, and report produce-to-consume latency",
		Long: `Produce --records records to --topic at --throughput while one consumer (no group)
reads the topic from its end offsets at the start. Each record value begins with its
send time and index; the end-to-end latency of a record runs from its produce call to
the return of the consumer poll that delivered it, both measured in this process, so
no clock synchronisation is involved.

Reports the delivered records/s and MB/s (first send to last delivery), the end-to-end
latency distribution, the ack latency distribution of the same records, and the
consumer's poll wait. Every record must arrive exactly once (duplicates are tolerated,
and not counted, only with --acks 1 or 0). Keep the rate below what the cluster
sustains, or the latency measures a growing queue.`,
		Example: `  poste bench e2e --throughput 10MB/s --records 200000 --record-size 1024
  poste bench e2e --topic lat --throughput 1000 --records 10000 --acks 1 --linger 0s --json`,
		Args: noArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchE2E(cmd, g, &bf)
		},
	}
	bf.register(cmd, 100_000, "10MB/s")
	return cmd
}

func runBenchE2E(cmd *cobra.Command, g *globals, bf *benchFlags) error {
	if err := bf.validate(e2eStamp); err != nil {
		return err
	}
	rate, _ := parseThroughput(bf.throughput, bf.recordSize)
	clients, partitions, err := g.benchProducers(cmd, bf, nil)
	if err != nil {
		return err
	}
	defer closeAll(clients)
	adm, err := g.newAdmin(cmd)
	if err != nil {
		return err
	}
	defer adm.Close()
	_, ends, err := g.benchOffsets(cmd, adm, bf.topic)
	if err != nil {
		return err
	}
	// Starting at the end offsets listed before the first send, the consumer cannot miss a
	// record however long its first fetch takes.
	at := make(map[int32]kgo.Offset, len(ends))
	for p, o := range ends {
		at[p] = kgo.NewOffset().At(o)
	}
	consumer, err := g.newClient(cmd, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{bf.topic: at}))
	if err != nil {
		return err
	}
	defer consumer.Close()

	ctx, cancel := context.WithCancelCause(cmd.Context())
	defer cancel(nil)
	start := time.Now()
	delivered, acked := newMeter(start), newMeter(start)
	e2e, ack, wait := newLatencyHist(), newLatencyHist(), newLatencyHist()
	go watch(ctx, cancel, cmd.ErrOrStderr(), "delivered", delivered, bf.progress, bf.stallTimeout)

	seen := newE2ESeen(bf.records, bf.recordSize, bf.acks == "all" || bf.acks == "-1")
	consumed := make(chan error, 1)
	go func() {
		err := consumeN(ctx, consumer, int64(bf.records), delivered, wait, func(r *kgo.Record, now time.Time) (bool, error) {
			sent, ok, err := seen.check(r)
			if ok {
				e2e.record(now.Sub(sent))
			}
			return ok, err
		})
		if err != nil && ctx.Err() == nil {
			// A consumer failure stops the producers too, rather than after the whole run.
			err = fmt.Errorf("consume: %w", err)
			cancel(err)
		}
		consumed <- err
	}()

	vals := newBenchValues(bf.recordSize)
	value := func(i int, sent time.Time) []byte {
		v := make([]byte, bf.recordSize)
		copy(v, vals.at(i))
		binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
		binary.BigEndian.PutUint64(v[8:], uint64(i))
		return v
	}
	// Whichever side fails first cancels ctx with its error, so both then return it.
	err = produceAll(ctx, cancel, clients, bf.records, rate, value, acked, ack, nil)
	if err != nil {
		cancel(err)
	}
	if cerr := <-consumed; err == nil {
		err = cerr
	}
	if err != nil {
		return g.explain(cmd, err, "end-to-end run on "+bf.topic, bf.topic)
	}
	cancel(nil)
	r := newBenchReport("e2e", bf.topic, partitions, bf.describe(partitions), delivered)
	es, as, ws := e2e.summary(), ack.summary(), wait.summary()
	r.E2ELatency, r.AckLatency, r.PollLatency = &es, &as, &ws
	return r.print(cmd.OutOrStdout(), bf.json)
}

// e2eSeen checks records arriving at the end-to-end consumer against the run: each must
// be one this run sent, and arrive once. Only the consuming goroutine uses it.
type e2eSeen struct {
	total      int
	size       int
	strict     bool // duplicates are an error (idempotent producer), not skipped
	seen       []uint64
	duplicates int
}

func newE2ESeen(total, size int, strict bool) *e2eSeen {
	return &e2eSeen{total: total, size: size, strict: strict, seen: make([]uint64, (total+63)/64)}
}

// check returns the record's send time and whether it is a first delivery to count; a
// record this run did not send, or a duplicate when strict, is an error.
func (s *e2eSeen) check(r *kgo.Record) (time.Time, bool, error) {
	if len(r.Value) != s.size {
		return time.Time{}, false, fmt.Errorf("partition %d offset %d: a %d-byte value this run did not send (another producer on the topic?)",
			r.Partition, r.Offset, len(r.Value))
	}
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))
	i := binary.BigEndian.Uint64(r.Value[8:])
	if i >= uint64(s.total) {
		return time.Time{}, false, fmt.Errorf("partition %d offset %d: record index %d this run did not send (another producer on the topic?)",
			r.Partition, r.Offset, i)
	}
	word, bit := i/64, uint64(1)<<(i%64)
	if s.seen[word]&bit != 0 {
		s.duplicates++
		if s.strict {
			return time.Time{}, false, fmt.Errorf("partition %d offset %d: record %d delivered twice", r.Partition, r.Offset, i)
		}
		return sent, false, nil
	}
	s.seen[word] |= bit
	return sent, true, nil
}
