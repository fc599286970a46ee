package streams

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBoxSlabResetReusesSlotsAndReleaseForgets(t *testing.T) {
	var s boxSlab
	a := s.box([]byte("a"))
	_ = s.box([]byte("b"))
	s.reset()
	c := s.box([]byte("c"))
	if got := (*eface)(unsafe.Pointer(&c)).data; got != (*eface)(unsafe.Pointer(&a)).data {
		t.Fatalf("after reset the first box uses slot %p, want the first slot %p", got, (*eface)(unsafe.Pointer(&a)).data)
	}
	if string(c.([]byte)) != "c" {
		t.Fatalf("box after reset = %q", c)
	}
	s.release()
	for i, sl := range s.slots[:3] {
		if sl != nil {
			t.Fatalf("slot %d still holds %q after release", i, sl)
		}
	}
	if s.next != 0 || s.dirty != 0 {
		t.Fatalf("after release next=%d dirty=%d, want 0 0", s.next, s.dirty)
	}
	// Without a reset every box gets a slot of its own, across blocks.
	seen := map[unsafe.Pointer]bool{}
	for i := range 2*boxBlock + 3 {
		x := s.box([]byte{byte(i)})
		p := (*eface)(unsafe.Pointer(&x)).data
		if seen[p] {
			t.Fatalf("box %d reuses a slot without a reset", i)
		}
		seen[p] = true
	}
}

// TestTaskRecyclesBoxesOnlyWhenNothingKeepsThem checks which tasks reuse their boxes from
// one record to the next: only those whose nodes all let go of a record when they return
// and see keys and values only as concrete types.
func TestTaskRecyclesBoxesOnlyWhenNothingKeepsThem(t *testing.T) {
	upper := func(_, v []byte) []byte { return bytes.ToUpper(v) }
	for _, tc := range []struct {
		name  string
		build func(tp *Topology)
		want  bool
	}{
		{"map values to a sink", func(tp *Topology) {
			MapValues(From(tp, "in", Bytes(), Bytes()), upper).To("out")
		}, true},
		{"every stateless stream operator", func(tp *Topology) {
			s := From(tp, "in", Bytes(), String()).Filter(func(k []byte, _ string) bool { return len(k) > 0 })
			parts := s.Split(func(_ []byte, v string) bool { return v == "x" }, func([]byte, string) bool { return true })
			m := parts[0].Merge(parts[1]).Peek(func([]byte, string) {})
			kv := Map(m, func(k []byte, v string) (string, []byte) { return v, k })
			fm := FlatMap(kv, func(k string, v []byte) []KeyValue[string, []byte] { return []KeyValue[string, []byte]{KV(k, v)} })
			fv := FlatMapValues(fm, func(_ string, v []byte) [][]byte { return [][]byte{v} })
			SelectKey(fv, func(k string, _ []byte) []byte { return []byte(k) }).ToWith("out", Produced[[]byte, []byte]{Keys: Bytes(), Values: Bytes()})
		}, true},
		{"processor on concrete types", func(tp *Topology) {
			AddSource(tp, "src", Bytes(), Bytes(), "in")
			AddProcessor(tp, "p", ProcessorFunc[[]byte, []byte, []byte, []byte](func(c *ProcessorContext[[]byte, []byte], r Record[[]byte, []byte]) error {
				return c.Forward(r)
			}).Processor(), "src")
			AddSink(tp, "sink", "out", Bytes(), Bytes(), "p")
		}, true},
		{"processor seeing keys as interfaces", func(tp *Topology) {
			AddSource(tp, "src", Bytes(), Bytes(), "in")
			AddProcessor(tp, "p", ProcessorFunc[any, any, any, any](func(*ProcessorContext[any, any], Record[any, any]) error {
				return nil
			}).Processor(), "src")
		}, false},
		{"map values to an interface type", func(tp *Topology) {
			MapValues(From(tp, "in", Bytes(), Bytes()), func(_, v []byte) any { return v }).Foreach(func([]byte, any) {})
		}, false},
		{"processor with a store", func(tp *Topology) {
			AddSource(tp, "src", Bytes(), Bytes(), "in")
			AddProcessor(tp, "p", ProcessorFunc[[]byte, []byte, []byte, []byte](func(*ProcessorContext[[]byte, []byte], Record[[]byte, []byte]) error {
				return nil
			}).Processor(), "src")
			AddKeyValueStore(tp, StoreSpec[[]byte, []byte]{Name: "st", Keys: Bytes(), Values: Bytes()}, "p")
		}, true},
		{"count", func(tp *Topology) {
			From(tp, "in", Bytes(), Bytes()).GroupByKey().Count("counts").ToStream().To("out")
		}, false},
		{"windowed count", func(tp *Topology) {
			WindowedCount(From(tp, "in", Bytes(), Bytes()).GroupByKey().WindowedBy(TumblingWindows(time.Minute, time.Minute)), "counts").
				ToStream().To("out")
		}, true},
		{"sliding windowed count", func(tp *Topology) {
			WindowedCount(From(tp, "in", Bytes(), Bytes()).GroupByKey().SlidingBy(SlidingWindows{TimeDifference: time.Minute}), "counts").
				ToStream().To("out")
		}, false},
		{"join with a global table", func(tp *Topology) {
			g := GlobalTableFrom(tp, "g", "gs", Bytes(), Bytes())
			JoinStreamGlobalTable(From(tp, "in", Bytes(), Bytes()), g,
				func(k, _ []byte) []byte { return k }, func(_, v, _ []byte) []byte { return v }).To("out")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := NewTopology()
			tc.build(tp)
			if err := tp.Validate(); err != nil {
				t.Fatal(err)
			}
			var sub *subtopology
			for _, s := range tp.subtopologies() {
				if slices.Contains(s.topics, "in") {
					sub = s
				}
			}
			if sub == nil {
				t.Fatal("no sub-topology reads in")
			}
			tk, err := newTask(tp, sub, "app", 0, &nopCollector{}, time.Now, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tk.closeStores(false) }()
			if tk.recycle != tc.want {
				t.Fatalf("recycle = %v, want %v", tk.recycle, tc.want)
			}
		})
	}
}

// TestRecycledBoxesNeverChangeWhatWasKept pipes records through a recycling topology whose
// records fan out over several box blocks, and through one whose processor keeps the keys it
// sees as interfaces (so it must not recycle): every output and every kept key must be the
// one its record carried.
func TestRecycledBoxesNeverChangeWhatWasKept(t *testing.T) {
	tp := NewTopology()
	fan := FlatMapValues(From(tp, "in", Bytes(), Bytes()), func(k, v []byte) [][]byte {
		out := make([][]byte, boxBlock+5) // more boxes than a block holds, for one record
		for i := range out {
			out[i] = fmt.Appendf(nil, "%s/%s/%d", k, v, i)
		}
		return out
	})
	MapValues(fan, func(_, v []byte) []byte { return bytes.ToUpper(v) }).To("out")
	var kept []any
	AddSource(tp, "raw", Bytes(), Bytes(), "in2")
	AddProcessor(tp, "keep", ProcessorFunc[any, any, any, any](func(_ *ProcessorContext[any, any], r Record[any, any]) error {
		kept = append(kept, r.Key)
		return nil
	}).Processor(), "raw")

	r, err := NewLocalRunner(tp, "app", time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 3 {
		k, v := fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i)
		if err := r.Pipe("in", k, v, time.UnixMilli(int64(i)), nil); err != nil {
			t.Fatal(err)
		}
		if err := r.Pipe("in2", k, v, time.UnixMilli(int64(i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	out := r.Output("out")
	if len(out) != 3*(boxBlock+5) {
		t.Fatalf("%d outputs, want %d", len(out), 3*(boxBlock+5))
	}
	for j, o := range out {
		i, n := j/(boxBlock+5), j%(boxBlock+5)
		if want := fmt.Sprintf("k%d", i); string(o.Key) != want {
			t.Fatalf("output %d key %q, want %q", j, o.Key, want)
		}
		if want := fmt.Sprintf("K%d/V%d/%d", i, i, n); string(o.Value) != want {
			t.Fatalf("output %d value %q, want %q", j, o.Value, want)
		}
	}
	for i, k := range kept {
		if b, _ := k.([]byte); string(b) != fmt.Sprintf("k%d", i) {
			t.Fatalf("kept key %d = %q, want k%d: a box was reused while kept", i, k, i)
		}
	}
	if len(kept) != 3 {
		t.Fatalf("kept %d keys, want 3", len(kept))
	}
}

// TestProduceQueueKeepsOrderAcrossReusedChunks hands over several chunks' worth of records,
// in pushes of varied sizes: the client must get every record once, in order, and chunks
// must come back for reuse; a record added without a promise gets the queue's default.
func TestProduceQueueKeepsOrderAcrossReusedChunks(t *testing.T) {
	var got []int64
	acked, defaulted := 0, 0
	q := newProduceQueue(func(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
		got = append(got, r.Offset) // only the queue's goroutine calls this
		promise(r, nil)
	}, func(*kgo.Record, error) { defaulted++ })
	go q.run()
	promise := func(*kgo.Record, error) { acked++ }
	const total = 5*produceChunk + 7
	for i := range int64(total) {
		if i%3 == 0 {
			q.add(&kgo.Record{Offset: i}, nil)
		} else {
			q.add(&kgo.Record{Offset: i}, promise)
		}
		if i%1500 == 0 {
			q.push()
		}
	}
	q.drain() // got and acked are read after the queue's goroutine handed everything over
	if want := (total + 2) / 3; len(got) != total || defaulted != want || acked != total-want {
		t.Fatalf("produced %d, acknowledged %d by their own promise and %d by the default, want %d, %d and %d",
			len(got), acked, defaulted, total, total-want, want)
	}
	for i, off := range got {
		if off != int64(i) {
			t.Fatalf("record %d produced at position %d", off, i)
		}
	}
	if len(q.free) == 0 {
		t.Fatal("no chunk came back for reuse")
	}
	q.close()
}
