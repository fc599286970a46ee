package compat

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cleanerIntervalMs is the suite broker's log.retention.check.interval.ms: how often the
// background cleaner rolls aged segments and compacts.
const cleanerIntervalMs = 200

// compactSegmentMs is segment.ms of the compacted topics: each produce round, sent more
// than this apart, lands in its own segment, and the cleaner seals the last one soon after.
const compactSegmentMs = 100

// compactedTopic writes keyed records and tombstones with franz-go to compacted topics, waits
// for the broker's cleaner to leave exactly one record per key, and has every client read
// them back. Expectations, per topic:
//
//   - compacted (delete.retention.ms=0): each live key's latest value, at the offset it was
//     produced at; tombstoned keys are absent (their tombstone goes on the pass after the one
//     that first kept it, as its delete horizon is then past).
//   - compacted-tombstones (delete.retention.ms=1h): the same, and each tombstoned key is
//     present once more, as its tombstone (a null value) at the offset it was produced at.
//
// Clients must read exactly what franz-go reads, offset gaps included.
func (s *suite) compactedTopic(t *testing.T) {
	for _, tc := range []struct {
		topic          string
		deleteRetainMs int64
		keepTombstones bool
	}{
		{"compacted", 0, false},
		{"compacted-tombstones", 3_600_000, true},
	} {
		t.Run(tc.topic, func(t *testing.T) {
			s.checkCompaction(t, tc.topic, tc.deleteRetainMs, tc.keepTombstones)
		})
	}
}

// compactWant is what a compacted topic must hold for one key.
type compactWant struct {
	partition int32
	offset    int64
	value     *string // nil: a tombstone
}

func (s *suite) checkCompaction(t *testing.T, topic string, deleteRetainMs int64, keepTombstones bool) {
	const (
		keys   = 12
		rounds = 4
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	configs := map[string]*string{
		"cleanup.policy":            ptr("compact"),
		"segment.ms":                ptr(strconv.Itoa(compactSegmentMs)),
		"min.cleanable.dirty.ratio": ptr("0.01"),
		"delete.retention.ms":       ptr(strconv.FormatInt(deleteRetainMs, 10)),
	}
	if _, err := s.b.admin(t).CreateTopic(ctx, 2, 1, configs, topic); err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
	key := func(i int) string { return fmt.Sprintf("key-%02d", i) }
	tombstoned := func(i int) bool { return i%3 == 0 }

	cl := s.b.franz(t, kgo.DefaultProduceTopic(topic))
	want := map[string]compactWant{}
	for r := range rounds {
		var recs []*kgo.Record
		last := r == rounds-1
		// The last round sends its tombstones first, so that each partition ends with a live
		// value: the tail of a partition is never compacted away, and readers that stop at
		// the end offset reach it.
		for pass := range 2 {
			for i := range keys {
				switch {
				case !last && pass == 0:
					recs = append(recs, &kgo.Record{Key: []byte(key(i)), Value: []byte(value(franzName, key(i), r))})
				case last && pass == 0 && tombstoned(i):
					recs = append(recs, &kgo.Record{Key: []byte(key(i))}) // nil Value: a tombstone
				case last && pass == 1 && !tombstoned(i):
					recs = append(recs, &kgo.Record{Key: []byte(key(i)), Value: []byte(value(franzName, key(i), r))})
				}
			}
		}
		results := cl.ProduceSync(ctx, recs...)
		if err := results.FirstErr(); err != nil {
			t.Fatalf("produce round %d: %v", r, err)
		}
		for _, res := range results {
			w := compactWant{partition: res.Record.Partition, offset: res.Record.Offset}
			if res.Record.Value != nil {
				w.value = ptr(string(res.Record.Value))
			}
			want[string(res.Record.Key)] = w
		}
		// Rounds more than segment.ms apart roll the segment: compaction has several sealed
		// segments to merge.
		time.Sleep(3 * compactSegmentMs / 2 * time.Millisecond)
	}
	if !keepTombstones {
		for k, w := range want {
			if w.value == nil {
				delete(want, k)
			}
		}
	}
	// Each partition must end with a live value (see above); the key placement is fixed, so
	// this checks the scenario, not the broker.
	lastOf := map[int32]compactWant{}
	for _, w := range want {
		if w.offset >= lastOf[w.partition].offset {
			lastOf[w.partition] = w
		}
	}
	for p, w := range lastOf {
		if w.value == nil {
			t.Fatalf("%s[%d] ends with a tombstone: pick other keys", topic, p)
		}
	}

	// The cleaner runs every cleanerIntervalMs; a handful of passes suffice.
	var ref []*kgo.Record
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		ref, err = s.readTopic(ctx, topic)
		if err != nil {
			t.Fatalf("franz-go reading %s: %v", topic, err)
		}
		diffs := diffCompacted(want, ref)
		if len(diffs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not compacted 10s after the last produce (cleaner every %d ms); franz-go reads:\n  %s",
				topic, cleanerIntervalMs, joinFirst(diffs, 10))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, c := range s.clients {
		got, err := c.consume(t, topic)
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			continue
		}
		compareRecords(t, c.name(), ref, got)
	}
}

// diffCompacted lists how the records read differ from the one record per key of want.
func diffCompacted(want map[string]compactWant, got []*kgo.Record) []string {
	var diffs []string
	seen := map[string]bool{}
	for _, r := range got {
		k := string(r.Key)
		w, ok := want[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("[%d]@%d key %q (value %s), a key that should be gone", r.Partition, r.Offset, k, describeOpt(r.Value)))
		case seen[k]:
			diffs = append(diffs, fmt.Sprintf("[%d]@%d key %q a second time (value %s)", r.Partition, r.Offset, k, describeOpt(r.Value)))
		case r.Partition != w.partition || r.Offset != w.offset || describeOpt(r.Value) != describeOpt(w.value):
			diffs = append(diffs, fmt.Sprintf("[%d]@%d key %q value %s, want [%d]@%d value %s",
				r.Partition, r.Offset, k, describeOpt(r.Value), w.partition, w.offset, describeOpt(w.value)))
		}
		seen[k] = true
	}
	for k, w := range want {
		if !seen[k] {
			diffs = append(diffs, fmt.Sprintf("key %q missing, want [%d]@%d value %s", k, w.partition, w.offset, describeOpt(w.value)))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func joinFirst(lines []string, n int) string {
	if len(lines) > n {
		lines = append(slices.Clone(lines[:n]), fmt.Sprintf("… %d more", len(lines)-n))
	}
	out := ""
	for i, l := range lines {
		if i > 0 {
			out += "\n  "
		}
		out += l
	}
	return out
}

// readTopic is readAll for polling: it reports failures instead of ending the test and
// closes its client before returning.
func (s *suite) readTopic(ctx context.Context, topic string) ([]*kgo.Record, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(kgo.SeedBrokers(s.b.addr))
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return nil, err
	}
	want := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	var lerr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			lerr = o.Err
		}
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
			start[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	if lerr != nil || len(want) == 0 {
		return nil, lerr
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.b.addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w; still reading partitions %v", err, want)
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) { ferr = fmt.Errorf("partition %d: %w", p, err) })
		if ferr != nil {
			return nil, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			if end, ok := want[r.Partition]; ok && r.Offset < end {
				recs = append(recs, r)
				if r.Offset+1 >= end {
					delete(want, r.Partition)
				}
			}
		})
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return recs, nil
}

// TestCompactionLoad measures produce and consume throughput on a compacted topic with the
// cleaner running continuously, and the same workload on a broker whose cleaner never runs
// (log.retention.check.interval.ms of an hour). It runs only with POSTE_COMPACTION_LOAD set
// (it takes about a minute and wants an otherwise idle machine); the figures are logged.
//
// Workload of one run, on a fresh broker: a topic of 4 partitions, cleanup.policy=compact,
// segment.bytes 4 MiB, min.cleanable.dirty.ratio 0.1; one franz-go producer sends
// loadRecords records of 1 KiB incompressible values keyed over loadKeys keys (so almost
// all of the log is obsolete and every cleaner pass has work), while one franz-go consumer
// reads the topic from offset 0 until it reaches the last record produced.
func TestCompactionLoad(t *testing.T) {
	if os.Getenv("POSTE_COMPACTION_LOAD") == "" {
		t.Skip("set POSTE_COMPACTION_LOAD=1 to measure produce and consume with and without the cleaner")
	}
	if os.Getenv("POSTE_COMPAT_BINARY") == "" {
		bin := filepath.Join(t.TempDir(), "poste")
		if out, err := exec.Command("go", "build", "-o", bin, "github.com/poste-io/poste/cmd/poste").CombinedOutput(); err != nil {
			t.Fatalf("go build poste: %v\n%s", err, out)
		}
		t.Setenv("POSTE_COMPAT_BINARY", bin)
	}
	runs, _ := strconv.Atoi(os.Getenv("POSTE_COMPACTION_LOAD_RUNS"))
	if runs <= 0 {
		runs = 3
	}
	results := map[bool][]loadResult{}
	for i := range runs {
		for _, cleaner := range []bool{true, false} {
			name := fmt.Sprintf("run%d/cleaner=%v", i+1, cleaner)
			t.Run(name, func(t *testing.T) {
				res := runCompactionLoad(t, cleaner)
				t.Logf("%s: produce %.1f MB/s, consume %.1f MB/s (%d records read), cleaner %d passes over %.1f MB, log %.1f MB on disk at the end, load1 %s",
					name, res.produceMBs, res.consumeMBs, res.consumed, res.passes, float64(res.cleanedBytes)/1e6, float64(res.diskBytes)/1e6, loadAvg())
				results[cleaner] = append(results[cleaner], res)
			})
		}
	}
	med := func(cleaner bool, f func(loadResult) float64) float64 {
		var xs []float64
		for _, r := range results[cleaner] {
			xs = append(xs, f(r))
		}
		if len(xs) == 0 {
			return 0
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	prodOn, prodOff := med(true, func(r loadResult) float64 { return r.produceMBs }), med(false, func(r loadResult) float64 { return r.produceMBs })
	consOn, consOff := med(true, func(r loadResult) float64 { return r.consumeMBs }), med(false, func(r loadResult) float64 { return r.consumeMBs })
	t.Logf("medians: produce %.1f MB/s with the cleaner, %.1f without (%.0f %%); consume %.1f with, %.1f without (%.0f %%)",
		prodOn, prodOff, 100*prodOn/prodOff, consOn, consOff, 100*consOn/consOff)
}

const (
	loadRecords    = 500_000
	loadValueBytes = 1024
	loadKeys       = 10_000
	loadPartitions = 4
)

type loadResult struct {
	produceMBs, consumeMBs float64
	consumed               int
	passes                 int   // compaction passes that rewrote segments during the run
	cleanedBytes           int64 // log bytes those passes read
	diskBytes              int64 // size of the topic's log at the end
}

// compactedLogLine is the broker's log line for a compaction pass that did work.
var compactedLogLine = regexp.MustCompile(`msg="compacted log".*bytes_read=(\d+)`)

func runCompactionLoad(t *testing.T, cleaner bool) loadResult {
	interval := "100"
	if !cleaner {
		interval = "3600000"
	}
	b := startBroker(t, "--override", "log.retention.check.interval.ms="+interval)
	const topic = "load"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	configs := map[string]*string{
		"cleanup.policy":            ptr("compact"),
		"segment.bytes":             ptr(strconv.Itoa(4 << 20)),
		"min.cleanable.dirty.ratio": ptr("0.1"),
	}
	adm := b.admin(t)
	if _, err := adm.CreateTopic(ctx, loadPartitions, 1, configs, topic); err != nil {
		t.Fatal(err)
	}

	// Incompressible values: each record's value is a window of one random buffer.
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]byte, 4<<20)
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}
	prod := b.franz(t, kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedBytes(32<<20))
	cons := b.franz(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {
		0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(), 3: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxBytes(50<<20), kgo.FetchMaxPartitionBytes(1<<20))

	// The consumer stops once it has read each partition's last produced record; those
	// offsets are known when the producer is done.
	var (
		mu       sync.Mutex
		lastOff  = map[int32]int64{}
		produced atomic.Bool
	)
	consDone := make(chan struct{})
	var consumed int
	var consBytes int64
	var consEnd time.Time // when the last record arrived
	start := time.Now()
	seen := map[int32]int64{} // highest offset read per partition
	go func() {
		defer close(consDone)
		for ctx.Err() == nil {
			// Short polls: the consumer may have read everything before the producer's
			// last acknowledgement tells it where the end is.
			pctx, pcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			fs := cons.PollFetches(pctx)
			pcancel()
			fs.EachRecord(func(r *kgo.Record) {
				consumed++
				consBytes += int64(len(r.Value))
				seen[r.Partition] = max(seen[r.Partition], r.Offset)
				consEnd = time.Now()
			})
			if !produced.Load() {
				continue
			}
			mu.Lock()
			done := true
			for p, o := range lastOff {
				if s, ok := seen[p]; !ok || s < o {
					done = false
				}
			}
			mu.Unlock()
			if done {
				return
			}
		}
	}()

	var wg sync.WaitGroup
	var perr atomic.Pointer[error]
	for i := range loadRecords {
		off := (i * 4099) % (len(pool) - loadValueBytes)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%05d", i%loadKeys)), Value: pool[off : off+loadValueBytes]}
		wg.Add(1)
		prod.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				perr.CompareAndSwap(nil, &err)
				return
			}
			mu.Lock()
			lastOff[r.Partition] = max(lastOff[r.Partition], r.Offset)
			mu.Unlock()
		})
	}
	wg.Wait()
	prodEnd := time.Now()
	produced.Store(true)
	if p := perr.Load(); p != nil {
		t.Fatalf("produce: %v", *p)
	}
	t.Logf("produced %d records in %v", loadRecords, prodEnd.Sub(start))
	<-consDone
	if ctx.Err() != nil {
		t.Fatalf("consumer did not reach the end: %v; read up to offsets %v, last produced %v", ctx.Err(), seen, lastOff)
	}
	res := loadResult{
		produceMBs: float64(loadRecords*loadValueBytes) / 1e6 / prodEnd.Sub(start).Seconds(),
		consumeMBs: float64(consBytes) / 1e6 / consEnd.Sub(start).Seconds(),
		consumed:   consumed,
	}
	logText, err := os.ReadFile(b.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range compactedLogLine.FindAllSubmatch(logText, -1) {
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		res.passes++
		res.cleanedBytes += n
	}
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			if p.Topic == topic {
				res.diskBytes += p.Size
			}
		})
	})
	if cleaner && res.passes == 0 {
		t.Error("the cleaner did not compact during the run")
	}
	if !cleaner && res.passes > 0 {
		t.Errorf("the cleaner compacted %d times with an hour's interval", res.passes)
	}
	return res
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil || len(b) < 4 {
		return "?"
	}
	f := regexp.MustCompile(`^\S+`).Find(b)
	return string(f)
}
