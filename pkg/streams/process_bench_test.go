package streams

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// nopCollector drops what a task writes (the producer is measured elsewhere).
type nopCollector struct{ n int }

func (c *nopCollector) send(string, int32, []byte, []byte, int64, []kgo.RecordHeader, *atomic.Int64) error {
	c.n++
	return nil
}
func (c *nopCollector) partitions(string) (int32, error) { return 1, nil }

// BenchmarkTaskMapValues is the per-record cost of pkg/streams itself for a stateless map:
// decode, the node chain and the sink's encoding, without the client.
func BenchmarkTaskMapValues(b *testing.B) {
	tp := NewTopology()
	MapValues(From(tp, "in", Bytes(), Bytes()), func(_, v []byte) []byte { return bytes.ToUpper(v) }).To("out")
	if err := tp.Validate(); err != nil {
		b.Fatal(err)
	}
	sub := tp.subtopologies()[0]
	tk, err := newTask(tp, sub, "app", 0, &nopCollector{}, time.Now, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := tk.init(); err != nil {
		b.Fatal(err)
	}
	src := tk.byTopic["in"]
	key, val := []byte("key-1234"), bytes.Repeat([]byte("abcdefghij"), 10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := tk.processFrom(src, "in", 0, int64(i), key, val, int64(i), nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTaskWindowedCount is the per-record cost of a cached tumbling-window count over
// 10,000 keys and 5 windows (the benchmark's workload), store in memory behind the cache.
func BenchmarkTaskWindowedCount(b *testing.B) {
	tp := NewTopology()
	g := From(tp, "in", Bytes(), Bytes()).GroupByKey()
	WindowedCount(g.WindowedBy(TumblingWindows(time.Minute, time.Minute)), "wc").ToStream().To("out")
	if err := tp.Validate(); err != nil {
		b.Fatal(err)
	}
	tk, err := newTask(tp, tp.subtopologies()[0], "app", 0, &nopCollector{}, time.Now, nil)
	if err != nil {
		b.Fatal(err)
	}
	tk.enableCache(&cacheBudget{max: 10 << 20})
	if err := tk.init(); err != nil {
		b.Fatal(err)
	}
	src := tk.byTopic["in"]
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte("key-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676)))
	}
	val := bytes.Repeat([]byte("abcdefghij"), 10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ts := int64(i%2000000) * 300000 / 2000000 // 5 minutes over 2,000,000 records
		if err := tk.processFrom(src, "in", 0, int64(i), keys[i%len(keys)], val, ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// benchFetches is one poll of the streams benchmark's workload: n records of 100 B with
// keys key-0 … over parts partitions of topic.
func benchFetches(topic string, n, parts int) kgo.Fetches {
	ft := kgo.FetchTopic{Topic: topic}
	val := bytes.Repeat([]byte("abcdefghij"), 10)
	base := time.Now().Add(-5 * time.Minute)
	for p := range parts {
		fp := kgo.FetchPartition{Partition: int32(p)}
		for i := range n / parts {
			fp.Records = append(fp.Records, &kgo.Record{
				Topic: topic, Partition: int32(p), Offset: int64(i),
				Key: []byte(fmt.Sprintf("key-%d", (i*parts+p)%10000)), Value: val,
				Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			})
		}
		ft.Partitions = append(ft.Partitions, fp)
	}
	return kgo.Fetches{{Topics: []kgo.FetchTopic{ft}}}
}

// ackAll stands in for the client: it acknowledges every record at once. A variable, so
// that records handed to it escape as they do into the client.
var ackAll = func(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) { promise(r, nil) }

// reportPerRecord reports the benchmark's time and allocations per record of a poll.
func reportPerRecord(b *testing.B, perOp int, mallocs0 uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	n := float64(b.N) * float64(perOp)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/record")
	b.ReportMetric(float64(ms.Mallocs-mallocs0)/n, "allocs/record")
}

// BenchmarkAppMapValues is the App's own cost per record for the streams benchmark's map:
// one poll of 10,000 records over 8 partitions through the function the poll loop calls
// (process, punctuate, hand-off), into a producer that acknowledges at once.
func BenchmarkAppMapValues(b *testing.B) {
	tp := NewTopology()
	MapValues(From(tp, "in", Bytes(), Bytes()), func(_, v []byte) []byte { return bytes.ToUpper(v) }).To("out")
	a, err := New(tp, Config{ApplicationID: "bench", Brokers: []string{"127.0.0.1:1"}, CacheMaxBytes: -1,
		StateDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	a.out = newOutRecords()
	a.prod = newProduceQueue(ackAll, a.producedErr)
	go a.prod.run()
	defer a.prod.close()
	const parts, perPoll = 8, 10000
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range int32(parts) {
		tk, err := a.newTask(TaskID{0, p})
		if err != nil {
			b.Fatal(err)
		}
		if err := tk.init(); err != nil {
			b.Fatal(err)
		}
		a.mu.tasks[tk.id] = tk
	}
	fetches := benchFetches("in", perPoll, parts)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for b.Loop() {
		if err := a.processBatchLocked(fetches, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	a.prod.drain()
	reportPerRecord(b, perPoll, ms.Mallocs)
	a.prodMu.Lock()
	err = a.prodErr
	a.prodMu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLoopMapValues is the floor BenchmarkAppMapValues compares with: the hand-written
// consume → upper-case → produce loop's work per record, into the same producer.
func BenchmarkLoopMapValues(b *testing.B) {
	const parts, perPoll = 8, 10000
	fetches := benchFetches("in", perPoll, parts)
	var failed atomic.Value
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, err)
		}
	}
	ctx := context.Background()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for b.Loop() {
		fetches.EachRecord(func(r *kgo.Record) {
			ackAll(ctx, &kgo.Record{Key: r.Key, Timestamp: r.Timestamp, Value: bytes.ToUpper(r.Value)}, promise)
		})
	}
	reportPerRecord(b, perPoll, ms.Mallocs)
}
