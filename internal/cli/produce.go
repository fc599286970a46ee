package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceFlags are the flags of `poste produce`.
type produceFlags struct {
	file        string
	key         string
	keySep      string
	headers     []string
	partition   int32
	partitioner string
	acks        string
	compression string
	linger      time.Duration
	verbose     bool
	txnID       string // produce the whole input in one transaction of this transactional id
	abort       bool   // abort that transaction instead of committing it
}

func newProduceCommand(g *globals) *cobra.Command {
	var pf produceFlags
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce one record per input line",
		Long: `Produce one record per line of stdin (or --file) to TOPIC. The line, without its
newline, is the record value; --key gives every record the same key, --key-separator
splits each line into key and value at the first separator.

Partitioners (ignored with --partition):
  murmur2      keyed records go to toPositive(murmur2(key)) % partitions, exactly as the
               Java client's default partitioner; unkeyed records stick to one partition
               per batch (default)
  round-robin  every record goes to the next partition, keys ignored
  sticky       records stick to one partition per batch, keys ignored

With --acks 1 or 0 the producer is not idempotent (Kafka requires acks=all for that).
The command exits 1 if any record failed; records are sent in input order.

With --transactional-id the whole input is produced in one transaction of that id, which
is committed once every record is acknowledged: read_committed consumers see all the
records or none. If a record fails the transaction is aborted and the command exits 1.
--abort aborts it even when every record succeeded. Starting the producer fences any
other producer with the same transactional id.`,
		Example: `  echo hello | poste produce parties
  poste produce parties --key-separator : <<EOF
Cool pool party:7pm
Horrible Halloween party:9pm
EOF
  poste produce parties --file events.txt --compression zstd --linger 20ms
  printf 'a\nb\n' | poste produce parties -p 3 -H source=cli -v
  poste produce orders --transactional-id orders-import --file orders.txt`,
		Args:              exactArgs(1),
		ValidArgsFunction: g.completeTopics,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProduce(cmd, g, &pf, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVarP(&pf.file, "file", "f", "", "read records from this file instead of stdin")
	f.StringVarP(&pf.key, "key", "k", "", "key for every record")
	f.StringVarP(&pf.keySep, "key-separator", "K", "", "split each line at the first SEP into key and value")
	f.StringArrayVarP(&pf.headers, "header", "H", nil, "record header KEY=VALUE (repeatable)")
	f.Int32VarP(&pf.partition, "partition", "p", -1, "produce every record to this partition")
	f.StringVar(&pf.partitioner, "partitioner", "murmur2", "murmur2, round-robin or sticky")
	f.StringVar(&pf.acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	f.StringVarP(&pf.compression, "compression", "z", "none", "none, gzip, snappy, lz4 or zstd")
	f.DurationVar(&pf.linger, "linger", 0, "how long to wait for more records before sending a batch")
	f.BoolVarP(&pf.verbose, "verbose", "v", false, "print the partition and offset of each record")
	f.StringVar(&pf.txnID, "transactional-id", "", "produce the input in one transaction of this transactional id")
	f.BoolVar(&pf.abort, "abort", false, "with --transactional-id: abort the transaction instead of committing it")
	return cmd
}

// producerOpts turns the produce flags into kgo options, rejecting invalid values.
func (pf *produceFlags) producerOpts(cmd *cobra.Command, topic string) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.DefaultProduceTopic(topic)}
	switch {
	case pf.partition >= 0:
		if cmd.Flags().Changed("partitioner") {
			return nil, usagef("--partition and --partitioner are exclusive")
		}
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	case pf.partition < -1:
		return nil, usagef("--partition must not be negative")
	default:
		switch pf.partitioner {
		case "murmur2":
			// nil hasher: murmur2, high bit masked, modulo partitions, as Java does.
			opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
		case "round-robin":
			opts = append(opts, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
		case "sticky":
			opts = append(opts, kgo.RecordPartitioner(kgo.StickyPartitioner()))
		default:
			return nil, usagef("--partitioner %q: want murmur2, round-robin or sticky", pf.partitioner)
		}
	}
	switch pf.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, usagef("--acks %q: want all, 1 or 0", pf.acks)
	}
	codec, ok := map[string]kgo.CompressionCodec{
		"none":   kgo.NoCompression(),
		"gzip":   kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(),
		"lz4":    kgo.Lz4Compression(),
		"zstd":   kgo.ZstdCompression(),
	}[pf.compression]
	if !ok {
		return nil, usagef("--compression %q: want none, gzip, snappy, lz4 or zstd", pf.compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	if pf.linger < 0 {
		return nil, usagef("--linger must not be negative")
	}
	if cmd.Flags().Changed("linger") {
		opts = append(opts, kgo.ProducerLinger(pf.linger))
	}
	if pf.key != "" && pf.keySep != "" {
		return nil, usagef("--key and --key-separator are exclusive")
	}
	if pf.abort && pf.txnID == "" {
		return nil, usagef("--abort needs --transactional-id")
	}
	if cmd.Flags().Changed("transactional-id") {
		if pf.txnID == "" {
			return nil, usagef("--transactional-id must not be empty")
		}
		if pf.acks != "all" && pf.acks != "-1" {
			return nil, usagef("--transactional-id needs --acks all")
		}
		opts = append(opts, kgo.TransactionalID(pf.txnID))
	}
	return opts, nil
}

func runProduce(cmd *cobra.Command, g *globals, pf *produceFlags, topic string) error {
	opts, err := pf.producerOpts(cmd, topic)
	if err != nil {
		return err
	}
	var headers []kgo.RecordHeader
	for _, h := range pf.headers {
		k, v, err := splitKV(h, "--header")
		if err != nil {
			return err
		}
		headers = append(headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	in := cmd.InOrStdin()
	if pf.file != "" {
		f, err := os.Open(pf.file)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		in = f
	}
	cl, err := g.newClient(cmd, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()

	ctx := cmd.Context()
	if pf.txnID != "" {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("begin transaction %s: %w", pf.txnID, err)
		}
	}
	out := newOrderedPrinter(cmd.OutOrStdout())
	// Failures are counted by the client's callbacks and by this loop.
	var res struct {
		sync.Mutex
		first   error
		nFailed int
	}
	fail := func(err error) {
		res.Lock()
		defer res.Unlock()
		if res.first == nil {
			res.first = err
		}
		res.nFailed++
	}
	failedYet := func() bool { res.Lock(); defer res.Unlock(); return res.first != nil }
	produced := 0 // records handed to the client
	r := bufio.NewReaderSize(in, 64<<10)
	for line := 1; !failedYet(); line++ {
		b, rerr := r.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("read input: %w", rerr)
		}
		if len(b) == 0 && rerr != nil {
			break // EOF after the last newline: no empty trailing record
		}
		b = bytes.TrimSuffix(b, []byte{'\n'})
		rec := &kgo.Record{Value: b, Headers: headers}
		switch {
		case pf.keySep != "":
			k, v, ok := bytes.Cut(b, []byte(pf.keySep))
			if !ok {
				fail(fmt.Errorf("line %d has no key separator %q", line, pf.keySep))
				continue
			}
			rec.Key, rec.Value = k, v
		case pf.key != "":
			rec.Key = []byte(pf.key)
		}
		if pf.partition >= 0 {
			rec.Partition = pf.partition
		}
		seq := produced
		produced++
		cl.Produce(ctx, rec, func(r *kgo.Record, err error) {
			if err != nil {
				fail(g.explain(cmd, err, fmt.Sprintf("produce to %q", topic), topic))
				out.done(seq, "")
				return
			}
			if !pf.verbose {
				return
			}
			if pf.acks == "0" {
				out.done(seq, fmt.Sprintf("topic=%s partition=%d offset=unknown\n", r.Topic, r.Partition))
				return
			}
			out.done(seq, fmt.Sprintf("topic=%s partition=%d offset=%d\n", r.Topic, r.Partition, r.Offset))
		})
		if rerr != nil {
			break
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	res.Lock()
	defer res.Unlock()
	if pf.txnID != "" {
		if err := pf.endTxn(cmd, g, cl, res.first == nil); err != nil {
			if res.first == nil {
				return err
			}
			res.first = fmt.Errorf("%w; %v", res.first, err)
		}
	}
	if res.first == nil {
		return nil
	}
	if res.nFailed == 1 && produced <= 1 {
		return res.first
	}
	return fmt.Errorf("%d record(s) failed, %d sent; first: %w", res.nFailed, produced, res.first)
}

// endTxn ends the transaction of --transactional-id after every record was acknowledged
// or failed: it commits when ok and --abort is not given, else aborts. Kafka's EndTxn
// outcome is final once answered, so an error here means the outcome is unknown or the
// producer was fenced.
func (pf *produceFlags) endTxn(cmd *cobra.Command, g *globals, cl *kgo.Client, ok bool) error {
	commit := kgo.TransactionEndTry(ok && !pf.abort)
	what := "commit"
	if !commit {
		what = "abort"
	}
	if err := cl.EndTransaction(cmd.Context(), commit); err != nil {
		return g.explain(cmd, err, what+" transaction "+pf.txnID, "")
	}
	return nil
}

// orderedPrinter prints per-record results in input order although the client completes
// records in per-partition order. done may be called from any goroutine; a result for
// seq is held until every earlier seq has been done. An empty line prints nothing but
// still releases the ones after it.
type orderedPrinter struct {
	w  io.Writer
	mu struct {
		sync.Mutex
		next    int            // the next seq to print
		pending map[int]string // results done but waiting for an earlier seq
	}
}

func newOrderedPrinter(w io.Writer) *orderedPrinter {
	p := &orderedPrinter{w: w}
	p.mu.pending = make(map[int]string)
	return p
}

func (p *orderedPrinter) done(seq int, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.pending[seq] = line
	for {
		l, ok := p.mu.pending[p.mu.next]
		if !ok {
			return
		}
		delete(p.mu.pending, p.mu.next)
		p.mu.next++
		if l != "" {
			io.WriteString(p.w, l)
		}
	}
}
