package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/poste-io/poste/bench/internal/procstat"
	"github.com/poste-io/poste/pkg/streams"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// errRun means a measured run did not do the whole job: a record was lost,
// a transaction aborted, or the application stopped on an error.
var errRun = errors.New("streamsbench: run failed")

// env is what every run needs: the broker, the workload and where to put
// state. It is built once and read by one goroutine.
type env struct {
	brokers    []string
	brokerPid  int
	input      string
	partitions int32
	records    int64
	valueBytes int64 // sum of input value and key bytes, the MB/s numerator
	window     time.Duration
	grace      time.Duration
	stateDir   string
	dataDir    string
	profileDir string // non-empty: write a CPU profile of this run there
	// truth is the true count of every (key, window) of the input, keyed by
	// the windowed key bytes the count writes; set by prefill.
	truth map[string]int64
	// changelogs caches the records and bytes of a changelog read back after
	// its pkg/streams run, for the restore that follows.
	changelogs map[string][2]int64
}

// result is one measured run.
type result struct {
	Kind      string  `json:"kind"`
	Round     int     `json:"round"`
	Load1     float64 `json:"load1"`
	Records   int64   `json:"records"`
	Seconds   float64 `json:"seconds"`
	RecPerS   float64 `json:"records_per_s"`
	MBPerS    float64 `json:"mb_per_s"`
	BrokerCPU float64 `json:"broker_cpu_s"`
	ClientCPU float64 `json:"client_cpu_s"`
	Output    int64   `json:"output_records"` // read back with read_committed
	// Stop is, for pkg/streams runs, the part of Seconds after the last input
	// record was seen: the final flush and commit (at_least_once: and the
	// shutdown).
	Stop float64 `json:"stop_seconds,omitempty"`
	// Restore runs only: the changelog read and its size.
	ChangelogBytes int64  `json:"changelog_bytes,omitempty"`
	Partitions     int    `json:"partitions_restored,omitempty"`
	Err            string `json:"error,omitempty"`
}

// upper is the stateless map of both the loop and pkg/streams: the value in
// ASCII upper case, in a new slice.
func upper(v []byte) []byte { return bytes.ToUpper(v) }

// windowKey is the loop's count key: the record key and its window's start.
type windowKey struct {
	key   string
	start int64
}

// windowedKey is the output key of a windowed count in the time-windowed
// format pkg/streams writes: the key bytes, then the window start in
// milliseconds as 8 big-endian bytes.
func windowedKey(key []byte, start int64) []byte {
	b := make([]byte, len(key)+8)
	copy(b, key)
	binary.BigEndian.PutUint64(b[len(key):], uint64(start))
	return b
}

func count8(n int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b[:]
}

func clientCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure wraps one run: load average, broker and client CPU, optional CPU
// profile. body returns the records it processed and the time it took.
func (e *env) measure(ctx context.Context, k kind, round int, body func(context.Context) (int64, time.Duration, error)) result {
	r := result{Kind: k.String(), Round: round}
	r.Load1, _ = procstat.LoadAvg(procstat.Proc)
	b0, _ := procstat.CPU(procstat.Proc, e.brokerPid)
	c0 := clientCPU()
	if e.profileDir != "" {
		f, err := os.Create(filepath.Join(e.profileDir, k.String()+".pprof"))
		if err == nil {
			if err := pprof.StartCPUProfile(f); err == nil {
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			} else {
				f.Close()
			}
		}
	}
	n, took, err := body(ctx)
	b1, _ := procstat.CPU(procstat.Proc, e.brokerPid)
	r.BrokerCPU = (b1 - b0).Seconds()
	r.ClientCPU = (clientCPU() - c0).Seconds()
	r.Records, r.Seconds = n, took.Seconds()
	r.RecPerS = rate(float64(n), took)
	r.MBPerS = rate(float64(e.valueBytes)*float64(n)/float64(e.records), took) / 1e6
	if err != nil {
		r.Err = err.Error()
	}
	return r
}

// prefill creates the input topic and writes e.records records: keys over
// keys distinct values, values of valueSize bytes, timestamps spread evenly
// over span ending now. It sets e.valueBytes.
func (e *env) prefill(ctx context.Context, keys int, valueSize int, span time.Duration) error {
	if err := e.createTopic(ctx, e.input); err != nil {
		return err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.input),
		kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedBytes(32<<20), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	base := time.Now().Add(-span).UnixMilli()
	val := make([]byte, valueSize)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	var firstErr atomic.Value
	var total int64
	e.truth = map[string]int64{}
	windowMs := e.window.Milliseconds()
	for i := int64(0); i < e.records; i++ {
		key := []byte("key-" + strconv.Itoa(int(i%int64(keys))))
		total += int64(len(key) + len(val))
		ts := base + int64(float64(i)*float64(span.Milliseconds())/float64(e.records))
		e.truth[string(windowedKey(key, ts-ts%windowMs))]++
		cl.Produce(ctx, &kgo.Record{Key: key, Value: val, Timestamp: time.UnixMilli(ts)}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if v := firstErr.Load(); v != nil {
		return v.(error)
	}
	e.valueBytes = total
	return nil
}

func (e *env) admin() (*kgo.Client, *kadm.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		return nil, nil, err
	}
	return cl, kadm.NewClient(cl), nil
}

func (e *env) createTopic(ctx context.Context, topic string) error {
	cl, adm, err := e.admin()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := adm.CreateTopic(ctx, e.partitions, -1, nil, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// deleteTopics removes a run's output and internal topics to keep the disk small.
func (e *env) deleteTopics(ctx context.Context, topics ...string) {
	cl, adm, err := e.admin()
	if err != nil {
		return
	}
	defer cl.Close()
	_, _ = adm.DeleteTopics(ctx, topics...)
}

// committed is the sum of group's committed offsets on the input topic.
func (e *env) committed(ctx context.Context, group string) (int64, error) {
	cl, adm, err := e.admin()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == e.input && o.Err == nil {
			n += o.At
		}
	})
	return n, nil
}

// runLoop is the hand-written processor: one kgo client in a fresh group
// consumes the input, applies the same map or windowed count as the topology
// (count state in a Go map) and produces the results to out.
//
// The map and the count without a cache (countall) produce every result:
// under alo each poll's results are flushed and acknowledged, then its offsets
// committed; under eos each poll is one transaction of a
// GroupTransactSession carrying the results and the offsets.
//
// The count with a cache (count) does what pkg/streams' record cache does: it
// remembers the windows updated since its last commit and, at each commit,
// produces the latest count of each, then flushes and commits the offsets
// (alo) or ends the transaction carrying both (eos). It commits on
// pkg/streams' default schedule: every 30 s under alo (so at the end of the
// input, for a run this short), every 100 ms under eos, and at the end.
//
// Timing runs from the first poll that returns records to the last commit.
func (e *env) runLoop(ctx context.Context, k kind, group, out string) (int64, time.Duration, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(e.brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(e.input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DefaultProduceTopic(out),
		kgo.ProducerLinger(5 * time.Millisecond), kgo.MaxBufferedBytes(32 << 20),
	}
	var (
		poll    func(context.Context) kgo.Fetches
		produce func(context.Context, *kgo.Record, func(*kgo.Record, error))
		begin   func() error
		end     func(context.Context) error
		closeFn func()
	)
	interval := 30 * time.Second
	if k.Guarantee == "eos" {
		interval = 100 * time.Millisecond
		opts = append(opts, kgo.TransactionalID(group+"-txn"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets())
		s, err := kgo.NewGroupTransactSession(opts...)
		if err != nil {
			return 0, 0, err
		}
		poll, produce, begin, closeFn = s.PollFetches, s.Produce, s.Begin, s.Close
		end = func(ctx context.Context) error {
			committed, err := s.End(ctx, kgo.TryCommit)
			if err == nil && !committed {
				err = fmt.Errorf("%w: transaction aborted", errRun)
			}
			return err
		}
	} else {
		opts = append(opts, kgo.DisableAutoCommit())
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return 0, 0, err
		}
		poll, produce, closeFn = cl.PollFetches, cl.Produce, cl.Close
		begin = func() error { return nil }
		end = func(ctx context.Context) error {
			if err := cl.Flush(ctx); err != nil {
				return err
			}
			return cl.CommitUncommittedOffsets(ctx)
		}
	}
	defer closeFn()

	var (
		done     int64
		start    time.Time
		last     time.Time // the last commit (cached count)
		prodErr  atomic.Value
		counts   = map[windowKey]windowCount{}
		dirty    = map[windowKey]struct{}{} // updated since the last commit (cached count)
		cached   = k.Op == "count"
		windowMs = e.window.Milliseconds()
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			prodErr.CompareAndSwap(nil, err)
		}
	}
	count := func(r *kgo.Record) windowKey {
		ts := r.Timestamp.UnixMilli()
		wk := windowKey{string(r.Key), ts - ts%windowMs}
		c := counts[wk]
		c.n++
		c.ts = max(c.ts, ts)
		counts[wk] = c
		return wk
	}
	commit := func() error {
		if err := end(ctx); err != nil {
			return err
		}
		if v := prodErr.Load(); v != nil {
			return v.(error)
		}
		return nil
	}
	for done < e.records {
		fs := poll(ctx)
		if err := ctx.Err(); err != nil {
			return done, time.Since(start), err
		}
		if err := fs.Err0(); err != nil {
			return done, time.Since(start), err
		}
		if fs.NumRecords() == 0 {
			continue
		}
		if start.IsZero() {
			start, last = time.Now(), time.Now()
		}
		if cached {
			fs.EachRecord(func(r *kgo.Record) {
				dirty[count(r)] = struct{}{}
				done++
			})
			if done < e.records && time.Since(last) < interval {
				continue
			}
			if err := begin(); err != nil {
				return done, time.Since(start), err
			}
			for wk := range dirty {
				c := counts[wk]
				produce(ctx, &kgo.Record{Key: windowedKey([]byte(wk.key), wk.start), Value: count8(c.n),
					Timestamp: time.UnixMilli(c.ts)}, promise)
			}
			clear(dirty)
			if err := commit(); err != nil {
				return done, time.Since(start), err
			}
			last = time.Now()
			continue
		}
		if err := begin(); err != nil {
			return done, time.Since(start), err
		}
		fs.EachRecord(func(r *kgo.Record) {
			out := &kgo.Record{Key: r.Key, Timestamp: r.Timestamp}
			if k.Op == "map" {
				out.Value = upper(r.Value)
			} else {
				wk := count(r)
				out.Key, out.Value = windowedKey(r.Key, wk.start), count8(counts[wk].n)
			}
			produce(ctx, out, promise)
			done++
		})
		if err := commit(); err != nil {
			return done, time.Since(start), err
		}
	}
	return done, time.Since(start), nil
}

// windowCount is the loop's state of one (key, window): its count and the
// latest timestamp counted, which a cached count's output carries.
type windowCount struct {
	n, ts int64
}

// The stores of the stateful runs; their changelogs are
// "<application>-<store>-changelog".
const (
	countStore = "counts"
	tableStore = "table"
)

// storeOf is the store of pkg/streams run k ("" for the stateless map).
func storeOf(k kind) string {
	switch k.Op {
	case "count", "countall":
		return countStore
	case "table":
		return tableStore
	}
	return ""
}

// topology builds the pkg/streams twin of runLoop's work, calling seen for
// every input record: inside the map's function, from a Peek on the count's
// source, or for the table from a Peek on the stream of its updates (one per
// input record, the table having no cache).
func (e *env) topology(k kind, out string, seen func()) *streams.Topology {
	t := streams.NewTopology()
	if k.Op == "table" {
		tb := streams.TableFrom(t, e.input, tableStore, streams.Bytes(), streams.Bytes())
		tb.ToStream().Peek(func([]byte, []byte) { seen() })
		t.SetStoreType(tableStore, streams.Persistent)
		return t
	}
	if k.Op == "map" {
		// The map itself counts, as the loop's body does: no extra node.
		in := streams.From(t, e.input, streams.Bytes(), streams.Bytes())
		streams.MapValues(in, func(_, v []byte) []byte { seen(); return upper(v) }).To(out)
		return t
	}
	src := streams.From(t, e.input, streams.Bytes(), streams.Bytes()).Peek(func([]byte, []byte) { seen() })
	w := streams.TumblingWindows(e.window, e.grace)
	streams.WindowedCount(src.GroupByKey().WindowedBy(w), countStore).ToStream().To(out)
	t.SetStoreType(countStore, streams.Persistent)
	return t
}

// config is the application's configuration for pkg/streams run k: the
// defaults, but for the record cache, off (every update written and
// forwarded) for countall and table.
func (e *env) config(app string, k kind, stateDir string) streams.Config {
	g := streams.AtLeastOnce
	if k.Guarantee == "eos" {
		g = streams.ExactlyOnceV2
	}
	cfg := streams.Config{
		ApplicationID:       app,
		Brokers:             e.brokers,
		ProcessingGuarantee: g,
		StateDir:            stateDir,
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if k.Op == "countall" || k.Op == "table" {
		cfg.CacheMaxBytes = -1
	}
	return cfg
}

// runStreams runs the topology once over the whole input in a fresh
// application (its own group, state directory and changelog). Timing runs
// from the first record processed until every output is acknowledged and
// every input offset committed:
//   - at_least_once: Run is cancelled once the last input record passed the
//     source, and returns after its final commit (which waits for the acks);
//   - exactly_once_v2: a cancelled Run aborts its open transaction, so the
//     end is when the group's committed offsets (committed by the transaction
//     that carried the last outputs) reach the end of the input, polled every
//     20 ms; Run is cancelled after that.
//
// stop receives the part of the time after the last record was seen.
func (e *env) runStreams(ctx context.Context, k kind, app, out string, stop *time.Duration) (int64, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		n     atomic.Int64
		first atomic.Int64
		last  atomic.Int64
		end   atomic.Int64
		all   = make(chan struct{})
	)
	seen := func() {
		if c := n.Add(1); c == 1 {
			first.Store(time.Now().UnixNano())
		} else if c == e.records {
			last.Store(time.Now().UnixNano())
			close(all)
		}
	}
	a, err := streams.New(e.topology(k, out, seen), e.config(app, k, filepath.Join(e.stateDir, app)))
	if err != nil {
		return 0, 0, err
	}
	go func() {
		select {
		case <-all:
		case <-ctx.Done():
			return
		}
		if k.Guarantee == "eos" {
			for ctx.Err() == nil {
				if c, err := e.committed(ctx, app); err == nil && c >= e.records {
					end.Store(time.Now().UnixNano())
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		cancel()
	}()
	err = a.Run(ctx)
	if end.Load() == 0 {
		end.Store(time.Now().UnixNano())
	}
	took := time.Duration(end.Load() - first.Load())
	if first.Load() == 0 {
		took = 0
	}
	if last.Load() != 0 {
		*stop = time.Duration(end.Load() - last.Load())
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return n.Load(), took, err
	}
	if n.Load() < e.records {
		return n.Load(), took, fmt.Errorf("%w: processed %d of %d records", errRun, n.Load(), e.records)
	}
	if d := a.DroppedRecords(); d != 0 {
		return n.Load(), took, fmt.Errorf("%w: %d records dropped as late", errRun, d)
	}
	return n.Load(), took, nil
}

// changelogSize reads topic from the start to its end offsets, read_committed,
// and returns its records and their key plus value bytes.
func (e *env) changelogSize(ctx context.Context, topic string) (int64, int64, error) {
	return e.readTopic(ctx, topic, nil)
}

// readTopic reads topic from the start to its end offsets, read_committed,
// calls each (if not nil) for every record, and returns the records and their
// key plus value bytes.
func (e *env) readTopic(ctx context.Context, topic string, each func(*kgo.Record)) (int64, int64, error) {
	cl, adm, err := e.admin()
	if err != nil {
		return 0, 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	cl.Close()
	if err != nil {
		return 0, 0, err
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	c, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	var recs, byts int64
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	idle := 0
	for len(want) > 0 {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		fs := c.PollFetches(pctx)
		pcancel()
		if err := ctx.Err(); err != nil {
			return recs, byts, err
		}
		if fs.NumRecords() == 0 {
			// Transaction markers end a partition without a record to see: after
			// a few empty polls, what was read is all there is.
			if idle++; idle >= 3 {
				break
			}
			continue
		}
		idle = 0
		fs.EachRecord(func(r *kgo.Record) {
			recs++
			byts += int64(len(r.Key) + len(r.Value))
			if each != nil {
				each(r)
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return recs, byts, nil
}

// latestCounts checks a cached count's output, given the last count read for
// each windowed key: every window's last count must be at most its true
// count, and the last counts must add up to the input's records (every input
// counted, the final state emitted). It returns "" or what is wrong.
func latestCounts(last, truth map[string]int64, records int64) string {
	var sum int64
	over, unknown := 0, 0
	for k, c := range last {
		sum += c
		t, ok := truth[k]
		switch {
		case !ok:
			unknown++
		case c > t:
			over++
		}
	}
	switch {
	case unknown > 0:
		return fmt.Sprintf("%d output keys are no window of the input", unknown)
	case over > 0:
		return fmt.Sprintf("%d windows counted past their true count", over)
	case sum != records:
		return fmt.Sprintf("the last counts of %d windows add up to %d, not %d", len(last), sum, records)
	}
	return ""
}

// runRestore starts a fresh instance of app (the pkg/streams run src) with an
// empty state directory and times the restore of its store from the
// changelog, from the start of the earliest partition's restore to the end of
// the last.
func (e *env) runRestore(ctx context.Context, src kind, app, out string) (int64, time.Duration, int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		infos []streams.RestoreInfo
		ends  []time.Time
	)
	cfg := e.config(app, src, filepath.Join(e.stateDir, app+"-restore"))
	cfg.OnRestored = func(ri streams.RestoreInfo) {
		mu.Lock()
		defer mu.Unlock()
		infos = append(infos, ri)
		ends = append(ends, time.Now())
		if len(infos) == int(e.partitions) {
			cancel()
		}
	}
	a, err := streams.New(e.topology(src, out, func() {}), cfg)
	if err != nil {
		return 0, 0, 0, err
	}
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Minute)
	defer tcancel()
	err = a.Run(tctx)
	mu.Lock()
	defer mu.Unlock()
	var recs int64
	took := make([]time.Duration, len(infos))
	for i, ri := range infos {
		recs += ri.Records
		took[i] = ri.Took
	}
	span := restoreSpan(ends, took)
	if err != nil && !errors.Is(err, context.Canceled) {
		return recs, span, len(infos), err
	}
	if len(infos) < int(e.partitions) {
		return recs, span, len(infos), fmt.Errorf("%w: %d of %d partitions restored", errRun, len(infos), e.partitions)
	}
	return recs, span, len(infos), nil
}
