package streams

import (
	"bytes"
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
