package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errStalled ends a benchmark that made no progress for --stall-timeout.
var errStalled = errors.New("no progress")

func newBenchCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce, consume and end-to-end performance, and the machine's limits",
		Long: `Benchmarks for a Kafka-compatible cluster, run from this client:

  produce   produce fixed-size records as fast as allowed; throughput and ack latency
  consume   read a topic from the beginning; throughput
  e2e       produce at a fixed rate while consuming; produce-to-consume latency
  limits    this machine's loopback TCP, sequential write, write+fsync and fsync latency

Every benchmark prints a progress line to stderr every --progress, then a summary to
stdout, or one JSON object with --json. MB are 10^6 bytes of record values. Latency
percentiles come from an HDR histogram with three significant digits.`,
		Example: `  poste bench limits --dir /var/lib/poste
  poste bench produce --topic bench --records 1000000 --record-size 1024 --partitions 8
  poste bench consume --topic bench
  poste bench e2e --topic bench-e2e --throughput 10MB/s --records 200000 --json`,
		Args: cobra.ArbitraryArgs,
		RunE: runGroup,
	}
	cmd.AddCommand(
		newBenchProduceCommand(g),
		newBenchConsumeCommand(g),
		newBenchE2ECommand(g),
		newBenchLimitsCommand(),
	)
	return cmd
}

// benchFlags are the workload flags shared by `bench produce` and `bench e2e`.
type benchFlags struct {
	topic         string
	records       int
	recordSize    int
	partitions    int32
	acks          string
	linger        time.Duration
	batchMaxBytes int32
	compression   string
	producers     int
	throughput    string
	bufferBytes   int
	progress      time.Duration
	stallTimeout  time.Duration
	json          bool
}

// register binds the flags with defaults for the command: records and throughput differ
// between produce and e2e.
func (bf *benchFlags) register(cmd *cobra.Command, records int, throughput string) {
	f := cmd.Flags()
	f.StringVarP(&bf.topic, "topic", "t", "poste-bench", "topic to produce to; created if missing")
	f.IntVarP(&bf.records, "records", "n", records, "records to produce")
	f.IntVarP(&bf.recordSize, "record-size", "s", 1024, "bytes of each record value (no key, no headers)")
	f.Int32VarP(&bf.partitions, "partitions", "p", 8, "partitions of the topic when it is created (an existing topic must have as many if given)")
	f.StringVar(&bf.acks, "acks", "all", "acknowledgements to wait for: all, 1 or 0")
	f.DurationVar(&bf.linger, "linger", 5*time.Millisecond, "how long a batch waits for more records")
	f.Int32Var(&bf.batchMaxBytes, "batch-max-bytes", 1<<20, "largest record batch the producer sends")
	f.StringVarP(&bf.compression, "compression", "z", "none", "none, gzip, snappy, lz4 or zstd (values are random: they do not shrink)")
	f.IntVar(&bf.producers, "producers", 1, "concurrent producer clients, each sending an equal share")
	f.StringVar(&bf.throughput, "throughput", throughput, "cap on the total send rate: records/s (N) or bytes/s (10MB/s, 512KiB/s); 0 = no cap")
	f.IntVar(&bf.bufferBytes, "buffer-bytes", 32<<20, "each producer's buffer of unacknowledged record bytes")
	f.DurationVar(&bf.progress, "progress", 5*time.Second, "interval of the progress line on stderr (0: none)")
	f.DurationVar(&bf.stallTimeout, "stall-timeout", 30*time.Second, "fail when no record completes for this long")
	f.BoolVar(&bf.json, "json", false, "print the result as one JSON object")
}

// validate rejects flag values no run could use. minSize is the smallest record the command
// can carry.
func (bf *benchFlags) validate(minSize int) error {
	switch {
	case bf.topic == "":
		return usagef("--topic must not be empty")
	case bf.records < 1:
		return usagef("--records must be positive")
	case bf.recordSize < minSize:
		return usagef("--record-size must be at least %d", minSize)
	case bf.partitions < 1:
		return usagef("--partitions must be positive")
	case bf.linger < 0:
		return usagef("--linger must not be negative")
	case bf.batchMaxBytes < int32(min(bf.recordSize, math.MaxInt32-128))+128:
		return usagef("--batch-max-bytes %d cannot hold one %d-byte record", bf.batchMaxBytes, bf.recordSize)
	case bf.producers < 1:
		return usagef("--producers must be positive")
	case bf.bufferBytes < int(bf.batchMaxBytes):
		return usagef("--buffer-bytes must hold at least one batch (--batch-max-bytes)")
	case bf.progress < 0:
		return usagef("--progress must not be negative")
	case bf.stallTimeout <= 0:
		return usagef("--stall-timeout must be positive")
	}
	if _, err := benchCodec(bf.compression); err != nil {
		return err
	}
	if _, err := parseThroughput(bf.throughput, bf.recordSize); err != nil {
		return err
	}
	return nil
}

// producerOpts are the kgo options of one benchmark producer.
func (bf *benchFlags) producerOpts() ([]kgo.Opt, error) {
	codec, err := benchCodec(bf.compression)
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.DefaultProduceTopic(bf.topic),
		kgo.ProducerLinger(bf.linger),
		kgo.ProducerBatchMaxBytes(bf.batchMaxBytes),
		kgo.ProducerBatchCompression(codec),
		kgo.MaxBufferedBytes(bf.bufferBytes),
		// The byte bound must be the one that binds, not the client's default record count.
		kgo.MaxBufferedRecords(max(10_000, 2*bf.bufferBytes/bf.recordSize)),
		// Unkeyed records stick to one partition per batch, as the Java producer's default.
		kgo.RecordPartitioner(kgo.StickyPartitioner()),
	}
	switch bf.acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, usagef("--acks %q: want all, 1 or 0", bf.acks)
	}
	return opts, nil
}

// describe is the one-line account of the workload printed above the results.
func (bf *benchFlags) describe(partitions int32) string {
	rate := "no throughput cap"
	if bf.throughput != "" && bf.throughput != "0" {
		rate = "throughput cap " + bf.throughput
	}
	return fmt.Sprintf("%d records × %d B to %s (%d partitions), %d producer(s), acks=%s, linger %v, batch max %d B, compression %s, %s",
		bf.records, bf.recordSize, bf.topic, partitions, bf.producers, bf.acks, bf.linger, bf.batchMaxBytes, bf.compression, rate)
}

func benchCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usagef("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// byteUnits are the suffixes parseBytes accepts, longest first so "MiB" wins over "B".
var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// parseBytes reads a byte count: a plain number, or a number with a unit B, KB, MB, GB
// (powers of 10) or KiB, MiB, GiB (powers of 2).
func parseBytes(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	mult := 1.0
	for _, u := range byteUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v * mult, true
}

// parseThroughput turns --throughput into records per second; 0 means no cap. A plain
// number is records/s; a value ending in /s is bytes/s, divided by the record size.
func parseThroughput(s string, recordSize int) (float64, error) {
	bad := usagef("--throughput %q: want records/s (5000), bytes/s (10MB/s, 512KiB/s) or 0", s)
	if rate, ok := strings.CutSuffix(strings.TrimSpace(s), "/s"); ok {
		b, ok := parseBytes(rate)
		if !ok || recordSize < 1 {
			return 0, bad
		}
		return b / float64(recordSize), nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, bad
	}
	return max(v, 0), nil // a negative cap means none, as in Kafka's perf tools
}

// latencyHist records durations into an HDR histogram (microseconds, 1 µs to 1 h, three
// significant digits) and keeps the exact mean and maximum beside it. The zero value is
// not usable; call newLatencyHist. All methods are safe for concurrent use.
type latencyHist struct {
	mu struct {
		sync.Mutex
		h   *hdrhistogram.Histogram
		sum time.Duration
		max time.Duration
	}
}

const histMaxMicros = int64(time.Hour / time.Microsecond)

func newLatencyHist() *latencyHist {
	l := &latencyHist{}
	l.mu.h = hdrhistogram.New(1, histMaxMicros, 3)
	return l
}

func (l *latencyHist) record(d time.Duration) {
	d = max(d, 0)
	us := min(d.Microseconds(), histMaxMicros)
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.mu.h.RecordValue(us) // cannot fail: us is clamped into the trackable range
	l.mu.sum += d
	l.mu.max = max(l.mu.max, d)
}

// latencySummary is the distribution printed and emitted as JSON, in milliseconds.
type latencySummary struct {
	Count int64   `json:"count"`
	Avg   float64 `json:"avg"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

func (l *latencyHist) summary() latencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.mu.h.TotalCount()
	if n == 0 {
		return latencySummary{}
	}
	// A percentile is its bucket's highest value, which may lie above the exact maximum
	// kept beside the histogram: cap it there so p99.9 <= max always reads true.
	maxMS := float64(l.mu.max) / 1e6
	ms := func(p float64) float64 { return min(float64(l.mu.h.ValueAtPercentile(p))/1e3, maxMS) }
	return latencySummary{
		Count: n,
		Avg:   float64(l.mu.sum) / float64(n) / 1e6,
		P50:   ms(50),
		P95:   ms(95),
		P99:   ms(99),
		P999:  ms(99.9),
		Max:   maxMS,
	}
}

// meter counts completed records and their value bytes for throughput and progress. The
// elapsed time runs from start to the latest completion. All methods are safe for
// concurrent use.
type meter struct {
	start time.Time
	mu    struct {
		sync.Mutex
		records, bytes int64
		last           time.Time
	}
}

func newMeter(start time.Time) *meter { return &meter{start: start} }

// add counts n records of b value bytes completed at now.
func (m *meter) add(n, b int64, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.records += n
	m.mu.bytes += b
	if now.After(m.mu.last) {
		m.mu.last = now
	}
}

func (m *meter) counts() (records, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.records, m.mu.bytes
}

// elapsed is the time from start to the latest completion (0 before any).
func (m *meter) elapsed() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.last.IsZero() {
		return 0
	}
	return m.mu.last.Sub(m.start)
}

// benchReport is the result of one produce, consume or e2e run, printed as text or JSON.
// Throughput counts record values only (10^6 bytes per MB).
type benchReport struct {
	Command     string  `json:"command"` // produce, consume or e2e
	Topic       string  `json:"topic"`
	Partitions  int32   `json:"partitions"`
	Workload    string  `json:"workload"`
	Records     int64   `json:"records"`
	Bytes       int64   `json:"bytes"`
	Seconds     float64 `json:"seconds"`
	RecordsPerS float64 `json:"records_per_s"`
	MBPerS      float64 `json:"mb_per_s"`
	// Latencies in milliseconds, by what they measure: the produce call to its
	// acknowledgement, the produce call to the record's arrival at the consumer, and each
	// consumer poll's wait for records.
	AckLatency  *latencySummary `json:"ack_latency_ms,omitempty"`
	E2ELatency  *latencySummary `json:"e2e_latency_ms,omitempty"`
	PollLatency *latencySummary `json:"poll_wait_ms,omitempty"`
	// Produce only: the record batches the brokers acknowledged and, with transactions,
	// the committed transactions, their rate over the run's seconds and the latency of
	// each commit (EndTransaction) call.
	Batches       int64           `json:"batches,omitempty"`
	Transactions  int64           `json:"transactions,omitempty"`
	TxnPerS       float64         `json:"transactions_per_s,omitempty"`
	CommitLatency *latencySummary `json:"commit_latency_ms,omitempty"`
}

func newBenchReport(command, topic string, partitions int32, workload string, m *meter) *benchReport {
	n, b := m.counts()
	el := m.elapsed()
	r := &benchReport{Command: command, Topic: topic, Partitions: partitions, Workload: workload,
		Records: n, Bytes: b, Seconds: el.Seconds()}
	if el > 0 {
		r.RecordsPerS = float64(n) / el.Seconds()
		r.MBPerS = float64(b) / 1e6 / el.Seconds()
	}
	return r
}

// print writes the report as one JSON object, or as text: the workload line, the totals
// and one row per latency distribution.
func (r *benchReport) print(w io.Writer, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "poste bench %s: %s\n", r.Command, r.Workload)
	fmt.Fprintf(tw, "records\t%d\n", r.Records)
	fmt.Fprintf(tw, "MB\t%.3f\n", float64(r.Bytes)/1e6)
	fmt.Fprintf(tw, "seconds\t%.3f\n", r.Seconds)
	fmt.Fprintf(tw, "records/s\t%.1f\n", r.RecordsPerS)
	fmt.Fprintf(tw, "MB/s\t%.2f\n", r.MBPerS)
	if r.Batches > 0 {
		fmt.Fprintf(tw, "batches\t%d\n", r.Batches)
	}
	if r.Transactions > 0 {
		fmt.Fprintf(tw, "transactions\t%d\n", r.Transactions)
		fmt.Fprintf(tw, "transactions/s\t%.1f\n", r.TxnPerS)
	}
	fmt.Fprintf(tw, "\nlatency ms\tavg\tp50\tp95\tp99\tp99.9\tmax\n")
	for _, l := range []struct {
		name string
		s    *latencySummary
	}{{"ack", r.AckLatency}, {"end-to-end", r.E2ELatency}, {"poll-wait", r.PollLatency}, {"commit", r.CommitLatency}} {
		if l.s != nil {
			fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\n", l.name, l.s.Avg, l.s.P50, l.s.P95, l.s.P99, l.s.P999, l.s.Max)
		}
	}
	return tw.Flush()
}

// progressLine formats one progress line: totals so far and the rates over the last
// interval (records and bytes completed during it).
func progressLine(what string, elapsed, interval time.Duration, records, dRecords, dBytes int64) string {
	secs := interval.Seconds()
	if secs <= 0 {
		secs = math.SmallestNonzeroFloat64
	}
	return fmt.Sprintf("%7.1fs  %s %d records  %.0f records/s  %.2f MB/s\n",
		elapsed.Seconds(), what, records, float64(dRecords)/secs, float64(dBytes)/1e6/secs)
}

// watch runs until ctx ends: every progress interval (if positive) it writes a progress
// line for m to w, and when m has not advanced for stall it cancels with errStalled.
func watch(ctx context.Context, cancel context.CancelCauseFunc, w io.Writer, what string, m *meter, progress, stall time.Duration) {
	tick := min(stall/10, time.Second)
	if progress > 0 {
		tick = min(tick, progress)
	}
	t := time.NewTicker(max(tick, time.Millisecond))
	defer t.Stop()
	lastN, lastB := m.counts()
	lastPrint, lastMove := time.Now(), time.Now()
	printedN, printedB := lastN, lastB
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, b := m.counts()
			if n != lastN {
				lastN, lastB, lastMove = n, b, now
			} else if now.Sub(lastMove) >= stall {
				cancel(fmt.Errorf("%w for %v after %d records", errStalled, stall, n))
				return
			}
			if progress > 0 && now.Sub(lastPrint) >= progress {
				io.WriteString(w, progressLine(what, now.Sub(m.start), now.Sub(lastPrint), n, n-printedN, lastB-printedB))
				lastPrint, printedN, printedB = now, n, lastB
			}
		}
	}
}

// benchValues hands out incompressible record values as windows into one random buffer,
// so producing allocates nothing per value. Immutable; safe for concurrent use.
type benchValues struct {
	buf  []byte
	size int
}

func newBenchValues(size int) benchValues {
	const span = 4 << 20
	buf := make([]byte, span+size)
	rng := rand.New(rand.NewPCG(0x706f737465, uint64(size)))
	for i := 0; i+8 <= len(buf); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	return benchValues{buf: buf, size: size}
}

// at returns record i's value; consecutive records start 4099 bytes apart (a prime, so
// values do not repeat with a short period that a compressor could find).
func (v benchValues) at(i int) []byte {
	off := (i * 4099) % (len(v.buf) - v.size + 1)
	return v.buf[off : off+v.size : off+v.size]
}

// ensureBenchTopic returns the topic's partition count, creating it with partitions
// partitions if it does not exist, and waits until every partition has a leader. With
// mustMatch an existing topic must have exactly that many partitions.
func (g *globals) ensureBenchTopic(cmd *cobra.Command, cl *kgo.Client, topic string, partitions int32, mustMatch bool) (int32, error) {
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(min(g.timeout, time.Hour).Milliseconds()))
	ctx, cancel := g.ctx(cmd)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return 0, g.explain(cmd, err, "look up topic", topic)
	}
	td, ok := md.Topics[topic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		resp, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, g.explainResult(cmd, err, resp.ErrMessage, "create topic "+topic, topic)
		}
	} else if td.Err != nil {
		return 0, g.explain(cmd, td.Err, "look up topic "+topic, topic)
	} else if n := int32(len(td.Partitions)); mustMatch && n != partitions {
		return 0, fmt.Errorf("topic %q has %d partitions, not the %d of --partitions: use another --topic", topic, n, partitions)
	}
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			if n, ready := topicLed(md, topic); ready {
				return n, nil
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("not every partition has a leader after %v", g.timeout)
			}
			return 0, g.explain(cmd, err, "wait for topic "+topic, topic)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicLed reports the topic's partition count and whether every partition has a leader.
func topicLed(md kadm.Metadata, topic string) (int32, bool) {
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return 0, false
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return 0, false
		}
	}
	return int32(len(td.Partitions)), true
}
