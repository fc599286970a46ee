// Package workload is the produce-then-consume benchmark workload: one franz-go
// producer writes a fixed number of fixed-size records to one topic, measuring
// throughput and per-record latency from the Produce call to its acknowledgement;
// then one consumer reads every acknowledged record back from the beginning,
// measuring throughput and checking that each partition returns exactly the
// offsets that were acknowledged, once and in order.
//
// The workload speaks only the Kafka protocol, so it runs unchanged against
// Poste, the kfake peer or any other Kafka-compatible broker.
package workload

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrConfig means the Config is not runnable.
	ErrConfig = errors.New("workload: invalid config")
	// ErrTopic means the topic could not be created or never showed every partition with a leader.
	ErrTopic = errors.New("workload: topic not ready")
	// ErrProduce means at least one record was not acknowledged.
	ErrProduce = errors.New("workload: produce failed")
	// ErrStalled means no progress (acknowledgement or consumed record) for Config.StallTimeout.
	ErrStalled = errors.New("workload: stalled")
	// ErrMismatch means the consumer read back something other than what was acknowledged.
	ErrMismatch = errors.New("workload: consumed records do not match acknowledged ones")
)

// Config describes one workload run. The zero value is not usable; start from
// DefaultConfig. A Config is a plain value, safe to copy and share read-only.
type Config struct {
	Brokers     []string // seed brokers, host:port
	Topic       string
	Partitions  int32 // partitions the topic is created with (and must have)
	Records     int   // records to produce
	RecordBytes int   // value size of each record; records carry no key and no headers

	Linger           time.Duration // kgo.ProducerLinger
	BatchMaxBytes    int32         // kgo.ProducerBatchMaxBytes
	MaxBufferedBytes int           // kgo.MaxBufferedBytes: the client's produce buffer, the bound on in-flight data
	Compression      string        // none, gzip, snappy, lz4 or zstd
	NoIdempotence    bool          // kgo.DisableIdempotentWrite; by default the producer is idempotent, as kgo's default

	FetchMaxBytes          int32 // kgo.FetchMaxBytes
	FetchMaxPartitionBytes int32 // kgo.FetchMaxPartitionBytes

	// StallTimeout fails a phase that makes no progress for this long.
	StallTimeout time.Duration
}

// DefaultConfig is the workload of the throughput target: 1,000,000 records of
// 1 KiB to 8 partitions, acks=all, linger 5 ms, 1 MiB batches, no compression.
func DefaultConfig() Config {
	return Config{
		Brokers:                []string{"127.0.0.1:9092"},
		Topic:                  "bench",
		Partitions:             8,
		Records:                1_000_000,
		RecordBytes:            1024,
		Linger:                 5 * time.Millisecond,
		BatchMaxBytes:          1 << 20,
		MaxBufferedBytes:       32 << 20,
		Compression:            "none",
		FetchMaxBytes:          50 << 20, // kgo's default
		FetchMaxPartitionBytes: 1 << 20,  // kgo's default
		StallTimeout:           30 * time.Second,
	}
}

// Validate reports whether c can run, wrapping ErrConfig.
func (c Config) Validate() error {
	var bad []string
	if len(c.Brokers) == 0 {
		bad = append(bad, "no brokers")
	}
	if c.Topic == "" {
		bad = append(bad, "empty topic")
	}
	if c.Partitions < 1 {
		bad = append(bad, "partitions < 1")
	}
	if c.Records < 1 {
		bad = append(bad, "records < 1")
	}
	if c.RecordBytes < 1 {
		bad = append(bad, "record bytes < 1")
	}
	if c.Linger < 0 {
		bad = append(bad, "negative linger")
	}
	if c.BatchMaxBytes < int32(c.RecordBytes)+128 {
		bad = append(bad, "batch max bytes cannot hold one record")
	}
	if c.MaxBufferedBytes < int(c.BatchMaxBytes) {
		bad = append(bad, "max buffered bytes smaller than one batch")
	}
	if _, err := codec(c.Compression); err != nil {
		bad = append(bad, err.Error())
	}
	if c.FetchMaxBytes < 1 || c.FetchMaxPartitionBytes < 1 {
		bad = append(bad, "fetch sizes < 1")
	}
	if c.StallTimeout <= 0 {
		bad = append(bad, "stall timeout <= 0")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrConfig, strings.Join(bad, "; "))
	}
	return nil
}

func codec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "", "none":
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
	return kgo.CompressionCodec{}, fmt.Errorf("unknown compression %q", name)
}

// ProduceResult is what the producer measured. Latencies are from the Produce
// call (before any wait for buffer space) to the acknowledgement callback.
type ProduceResult struct {
	Records int64
	Bytes   int64         // value bytes acknowledged
	Elapsed time.Duration // first Produce call to the last acknowledgement
	P50     time.Duration
	P99     time.Duration
	Max     time.Duration
	// EndOffsets is, per partition, one past the highest acknowledged offset:
	// what a consumer from the beginning must read.
	EndOffsets map[int32]int64
}

// MBps is produce throughput in 10^6 bytes of record values per second.
func (r ProduceResult) MBps() float64 { return mbps(r.Bytes, r.Elapsed) }

// ConsumeResult is what the consumer measured.
type ConsumeResult struct {
	Records int64
	Bytes   int64         // value bytes consumed
	Elapsed time.Duration // first poll to the last expected record
}

// MBps is consume throughput in 10^6 bytes of record values per second.
func (r ConsumeResult) MBps() float64 { return mbps(r.Bytes, r.Elapsed) }

func mbps(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / 1e6 / d.Seconds()
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted,
// or 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// EnsureTopic creates the topic with c.Partitions partitions and replication
// factor 1 (an existing topic is fine) and waits until metadata shows exactly
// that many partitions, each with a leader.
func EnsureTopic(ctx context.Context, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTopic, err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, c.StallTimeout)
	defer cancel()

	resp, err := adm.CreateTopic(ctx, c.Partitions, 1, nil, c.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("%w: create %q: %v", ErrTopic, c.Topic, err)
	}
	var last string
	for {
		md, err := adm.Metadata(ctx, c.Topic)
		switch {
		case err != nil:
			last = err.Error()
		default:
			last = topicReady(md, c.Topic, c.Partitions)
			if last == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %q: %s", ErrTopic, c.Topic, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicReady returns "" when md shows topic with want partitions, each led, or
// else why not.
func topicReady(md kadm.Metadata, topic string, want int32) string {
	td, ok := md.Topics[topic]
	if !ok {
		return "topic missing from metadata"
	}
	if td.Err != nil {
		return td.Err.Error()
	}
	if int32(len(td.Partitions)) != want {
		return fmt.Sprintf("topic has %d partitions, want %d", len(td.Partitions), want)
	}
	for _, p := range td.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return fmt.Sprintf("partition %d has no leader (%v)", p.Partition, p.Err)
		}
	}
	return ""
}

// values hands out record values as windows into one random buffer, so the
// producer allocates nothing per value and the bytes do not compress.
type values struct {
	buf  []byte
	size int
}

func newValues(size int) values {
	const span = 4 << 20
	buf := make([]byte, span+size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(buf); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	return values{buf: buf, size: size}
}

// at returns the value of record i; neighbouring records start 4099 bytes apart.
func (v values) at(i int) []byte {
	off := (i * 4099) % (len(v.buf) - v.size)
	return v.buf[off : off+v.size : off+v.size]
}

// produceState is shared by the producer loop and kgo's promise callbacks.
type produceState struct {
	t0 time.Time
	mu struct {
		sync.Mutex
		lat      []time.Duration
		bytes    int64
		ends     map[int32]int64
		firstErr error
		errs     int
		lastAck  time.Duration // since t0
	}
}

// Produce runs the producer phase. It fails with ErrProduce if any record is
// not acknowledged and with ErrStalled if acknowledgements stop for
// c.StallTimeout.
func Produce(ctx context.Context, c Config) (ProduceResult, error) {
	if err := c.Validate(); err != nil {
		return ProduceResult{}, err
	}
	comp, _ := codec(c.Compression)
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(c.Linger),
		kgo.ProducerBatchMaxBytes(c.BatchMaxBytes),
		kgo.ProducerBatchCompression(comp),
		kgo.MaxBufferedBytes(c.MaxBufferedBytes),
		// The byte bound must be the one that binds, not kgo's default record count.
		kgo.MaxBufferedRecords(max(10_000, 2*c.MaxBufferedBytes/c.RecordBytes)),
	}
	if c.NoIdempotence {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("%w: %v", ErrProduce, err)
	}
	defer cl.Close()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	vals := newValues(c.RecordBytes)
	st := &produceState{t0: time.Now()}
	st.mu.lat = make([]time.Duration, 0, c.Records)
	st.mu.ends = make(map[int32]int64)

	watchDone := make(chan struct{})
	defer close(watchDone)
	go watchProgress(watchDone, c.StallTimeout, cancel, func() int64 {
		st.mu.Lock()
		defer st.mu.Unlock()
		return int64(len(st.mu.lat) + st.mu.errs)
	})

	for i := 0; i < c.Records && ctx.Err() == nil; i++ {
		start := time.Since(st.t0)
		cl.Produce(ctx, &kgo.Record{Value: vals.at(i)}, func(r *kgo.Record, err error) {
			now := time.Since(st.t0)
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				st.mu.errs++
				if st.mu.firstErr == nil {
					st.mu.firstErr = err
					cancel(fmt.Errorf("%w: partition %d: %v", ErrProduce, r.Partition, err))
				}
				return
			}
			st.mu.lat = append(st.mu.lat, now-start)
			st.mu.bytes += int64(len(r.Value))
			st.mu.ends[r.Partition] = max(st.mu.ends[r.Partition], r.Offset+1)
			st.mu.lastAck = now
		})
	}
	// Flush returns early only if ctx is cancelled, and then every record's
	// callback has run or will run with the cancellation error.
	_ = cl.Flush(ctx)

	st.mu.Lock()
	defer st.mu.Unlock()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return ProduceResult{}, cause
	}
	if ctx.Err() != nil || st.mu.firstErr != nil || len(st.mu.lat) != c.Records {
		return ProduceResult{}, fmt.Errorf("%w: %d of %d acknowledged, %d failed, first error: %v",
			ErrProduce, len(st.mu.lat), c.Records, st.mu.errs, st.mu.firstErr)
	}
	lat := st.mu.lat
	slices.Sort(lat)
	return ProduceResult{
		Records:    int64(len(lat)),
		Bytes:      st.mu.bytes,
		Elapsed:    st.mu.lastAck,
		P50:        Percentile(lat, 50),
		P99:        Percentile(lat, 99),
		Max:        lat[len(lat)-1],
		EndOffsets: st.mu.ends,
	}, nil
}

// watchProgress cancels with ErrStalled when progress() has not changed for
// stall, checking a few times per stall period until done closes.
func watchProgress(done <-chan struct{}, stall time.Duration, cancel context.CancelCauseFunc, progress func() int64) {
	tick := time.NewTicker(max(stall/10, time.Millisecond))
	defer tick.Stop()
	last, lastChange := progress(), time.Now()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if p := progress(); p != last {
			last, lastChange = p, time.Now()
			continue
		}
		if time.Since(lastChange) >= stall {
			cancel(fmt.Errorf("%w: no progress for %v (at %d)", ErrStalled, stall, last))
			return
		}
	}
}

// Consume reads the topic from the beginning until every partition in ends has
// been read up to its end offset. Each partition must return offsets 0, 1, …
// end-1 exactly once, each value c.RecordBytes long; anything else is
// ErrMismatch. Records past an end offset are an error too.
func Consume(ctx context.Context, c Config, ends map[int32]int64) (ConsumeResult, error) {
	if err := c.Validate(); err != nil {
		return ConsumeResult{}, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.Brokers...),
		kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(c.FetchMaxBytes),
		kgo.FetchMaxPartitionBytes(c.FetchMaxPartitionBytes),
	)
	if err != nil {
		return ConsumeResult{}, fmt.Errorf("%w: %v", ErrMismatch, err)
	}
	defer cl.Close()

	var want, got, bytes int64
	remaining := 0
	next := make(map[int32]int64, len(ends))
	for p, e := range ends {
		want += e
		next[p] = 0
		if e > 0 {
			remaining++
		}
	}
	var mu sync.Mutex // guards got for the watchdog
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	watchDone := make(chan struct{})
	defer close(watchDone)
	go watchProgress(watchDone, c.StallTimeout, cancel, func() int64 {
		mu.Lock()
		defer mu.Unlock()
		return got
	})

	t0 := time.Now()
	var bad error
	for remaining > 0 && bad == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); errors.Is(cause, ErrStalled) {
				return ConsumeResult{}, fmt.Errorf("%w: %d of %d records read", cause, got, want)
			}
			return ConsumeResult{}, ctx.Err()
		}
		fs.EachError(func(t string, p int32, err error) {
			if bad == nil {
				bad = fmt.Errorf("%w: fetch %s/%d: %v", ErrMismatch, t, p, err)
			}
		})
		var n int64
		fs.EachRecord(func(r *kgo.Record) {
			n++
			bytes += int64(len(r.Value))
			exp, ok := next[r.Partition]
			switch {
			case bad != nil:
			case !ok:
				bad = fmt.Errorf("%w: record from unexpected partition %d", ErrMismatch, r.Partition)
			case r.Offset != exp:
				bad = fmt.Errorf("%w: partition %d: offset %d, want %d", ErrMismatch, r.Partition, r.Offset, exp)
			case r.Offset >= ends[r.Partition]:
				bad = fmt.Errorf("%w: partition %d: offset %d past acknowledged end %d", ErrMismatch, r.Partition, r.Offset, ends[r.Partition])
			case len(r.Value) != c.RecordBytes:
				bad = fmt.Errorf("%w: partition %d offset %d: value is %d bytes, want %d", ErrMismatch, r.Partition, r.Offset, len(r.Value), c.RecordBytes)
			default:
				next[r.Partition] = exp + 1
				if exp+1 == ends[r.Partition] {
					remaining--
				}
			}
		})
		mu.Lock()
		got += n
		mu.Unlock()
	}
	elapsed := time.Since(t0)
	if bad != nil {
		return ConsumeResult{}, bad
	}
	return ConsumeResult{Records: got, Bytes: bytes, Elapsed: elapsed}, nil
}

// RegisterFlags binds c's fields to flags on fs, with c's current values as
// defaults, so every program of the benchmark spells the workload the same way.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Func("brokers", "comma-separated seed brokers (default "+strings.Join(c.Brokers, ",")+")", func(s string) error {
		c.Brokers = strings.Split(s, ",")
		return nil
	})
	fs.StringVar(&c.Topic, "topic", c.Topic, "topic to produce to and consume from")
	fs.Func("partitions", fmt.Sprintf("partitions of the topic (default %d)", c.Partitions), func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		c.Partitions = int32(n)
		return err
	})
	fs.IntVar(&c.Records, "records", c.Records, "records to produce")
	fs.IntVar(&c.RecordBytes, "record-bytes", c.RecordBytes, "value size of each record")
	fs.DurationVar(&c.Linger, "linger", c.Linger, "producer linger")
	fs.Func("batch-bytes", fmt.Sprintf("producer batch max bytes (default %d)", c.BatchMaxBytes), func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		c.BatchMaxBytes = int32(n)
		return err
	})
	fs.IntVar(&c.MaxBufferedBytes, "buffer-bytes", c.MaxBufferedBytes, "producer buffer (MaxBufferedBytes): the bound on unacknowledged data")
	fs.StringVar(&c.Compression, "compression", c.Compression, "batch compression: none, gzip, snappy, lz4, zstd (values are random, so they do not shrink)")
	fs.BoolVar(&c.NoIdempotence, "no-idempotence", c.NoIdempotence, "disable the idempotent producer")
	fs.Func("fetch-bytes", fmt.Sprintf("consumer FetchMaxBytes (default %d)", c.FetchMaxBytes), func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		c.FetchMaxBytes = int32(n)
		return err
	})
	fs.Func("fetch-partition-bytes", fmt.Sprintf("consumer FetchMaxPartitionBytes (default %d)", c.FetchMaxPartitionBytes), func(s string) error {
		n, err := strconv.ParseInt(s, 10, 32)
		c.FetchMaxPartitionBytes = int32(n)
		return err
	})
	fs.DurationVar(&c.StallTimeout, "stall-timeout", c.StallTimeout, "fail a phase that makes no progress for this long")
}

// Describe is a one-line account of the workload, for reports.
func (c Config) Describe() string {
	idem := "idempotent"
	if c.NoIdempotence {
		idem = "not idempotent"
	}
	return fmt.Sprintf("%d records × %d B values (no key), %d partitions, acks=all, %s, linger %v, batch max %d B, "+
		"compression %s, producer buffer %d MiB; consumer fetch max %d MiB (%d MiB per partition)",
		c.Records, c.RecordBytes, c.Partitions, idem, c.Linger, c.BatchMaxBytes, c.Compression,
		c.MaxBufferedBytes>>20, c.FetchMaxBytes>>20, c.FetchMaxPartitionBytes>>20)
}
