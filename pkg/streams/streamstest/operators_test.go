package streamstest_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
	"github.com/poste-io/poste/pkg/streams/streamstest"
)

type kv = streams.KeyValue[string, string]

// TestStatelessOperators pipes the same input through one operator per case and checks the
// output topic.
func TestStatelessOperators(t *testing.T) {
	input := []kv{{Key: "a", Value: "one two"}, {Key: "b", Value: ""}, {Key: "c", Value: "Three"}}
	cases := []struct {
		name  string
		build func(s streams.Stream[string, string])
		want  []kv
	}{
		{"filter", func(s streams.Stream[string, string]) {
			s.Filter(func(_, v string) bool { return v != "" }).To("out")
		}, []kv{{Key: "a", Value: "one two"}, {Key: "c", Value: "Three"}}},
		{"filterNot", func(s streams.Stream[string, string]) {
			s.FilterNot(func(_, v string) bool { return v != "" }).To("out")
		}, []kv{{Key: "b", Value: ""}}},
		{"map", func(s streams.Stream[string, string]) {
			streams.Map(s, func(k, v string) (string, string) { return v, k }).To("out")
		}, []kv{{Key: "one two", Value: "a"}, {Key: "", Value: "b"}, {Key: "Three", Value: "c"}}},
		{"mapValues", func(s streams.Stream[string, string]) {
			streams.MapValues(s, func(k, v string) string { return strings.ToUpper(v) }).To("out")
		}, []kv{{Key: "a", Value: "ONE TWO"}, {Key: "b", Value: ""}, {Key: "c", Value: "THREE"}}},
		{"flatMap", func(s streams.Stream[string, string]) {
			streams.FlatMap(s, func(k, v string) []kv {
				var out []kv
				for _, w := range strings.Fields(v) {
					out = append(out, streams.KV(w, k))
				}
				return out
			}).To("out")
		}, []kv{{Key: "one", Value: "a"}, {Key: "two", Value: "a"}, {Key: "Three", Value: "c"}}},
		{"flatMapValues", func(s streams.Stream[string, string]) {
			streams.FlatMapValues(s, func(_, v string) []string { return strings.Fields(v) }).To("out")
		}, []kv{{Key: "a", Value: "one"}, {Key: "a", Value: "two"}, {Key: "c", Value: "Three"}}},
		{"selectKey", func(s streams.Stream[string, string]) {
			streams.SelectKey(s, func(k, v string) string { return k + k }).To("out")
		}, []kv{{Key: "aa", Value: "one two"}, {Key: "bb", Value: ""}, {Key: "cc", Value: "Three"}}},
		{"split first match wins", func(s streams.Stream[string, string]) {
			br := s.Split(func(k, _ string) bool { return k == "a" }, func(k, _ string) bool { return k <= "b" })
			streams.MapValues(br[0], func(_, v string) string { return "0:" + v }).To("out")
			streams.MapValues(br[1], func(_, v string) string { return "1:" + v }).To("out")
		}, []kv{{Key: "a", Value: "0:one two"}, {Key: "b", Value: "1:"}}},
		{"merge", func(s streams.Stream[string, string]) {
			x := s.Filter(func(k, _ string) bool { return k == "a" })
			y := streams.MapValues(s.Filter(func(k, _ string) bool { return k == "c" }), func(_, v string) string { return "y" })
			x.Merge(y).To("out")
		}, []kv{{Key: "a", Value: "one two"}, {Key: "c", Value: "y"}}},
		{"repartition", func(s streams.Stream[string, string]) {
			streams.SelectKey(s, func(_, v string) string { return v }).Repartition("by-value", nil, nil).To("out")
		}, []kv{{Key: "one two", Value: "one two"}, {Key: "", Value: ""}, {Key: "Three", Value: "Three"}}},
		{"to with partitioner", func(s streams.Stream[string, string]) {
			s.ToWith("out", streams.Produced[string, string]{Partitioner: func(_ string, _, _ string, n int32) int32 { return n - 1 }})
		}, input},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			c.build(streams.From(tp, "in", streams.String(), streams.String()))
			d := streamstest.New(t, tp, streamstest.Config{})
			in := streamstest.Input(d, "in", streams.String(), streams.String())
			for _, r := range input {
				in.Pipe(r.Key, r.Value)
			}
			got := streamstest.Output(d, "out", streams.String(), streams.String()).ReadKeyValues()
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestPeekAndForeach(t *testing.T) {
	tp := streams.NewTopology()
	var peeked, each []string
	s := streams.From(tp, "in", streams.String(), streams.Int64())
	s.Peek(func(k string, v int64) { peeked = append(peeked, fmt.Sprint(k, v)) }).To("out")
	s.Foreach(func(k string, v int64) { each = append(each, fmt.Sprint(k, v)) })
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.Int64())
	in.Pipe("x", 1)
	in.Pipe("y", 2)
	if want := []string{"x1", "y2"}; !reflect.DeepEqual(peeked, want) || !reflect.DeepEqual(each, want) {
		t.Fatalf("peek %v foreach %v, want %v", peeked, each, want)
	}
	if got := streamstest.Output(d, "out", streams.String(), streams.Int64()).ReadKeyValues(); len(got) != 2 {
		t.Fatalf("peek must pass records on: %v", got)
	}
}

func TestWordCountThroughRepartition(t *testing.T) {
	tp := streams.NewTopology()
	lines := streams.From(tp, "streams-plaintext-input", streams.String(), streams.String())
	words := streams.FlatMapValues(lines, func(_, v string) []string { return strings.Fields(strings.ToLower(v)) })
	streams.GroupBy(words, func(_, w string) string { return w }, streams.String(), nil).Count("counts").ToStream().To("counts-out")
	d := streamstest.New(t, tp, streamstest.Config{ApplicationID: "wc"})
	in := streamstest.Input(d, "streams-plaintext-input", streams.String(), streams.String())
	in.Pipe("", "all streams lead")
	in.Pipe("", "to Kafka streams")
	out := streamstest.Output(d, "counts-out", streams.String(), streams.Int64())
	got := out.ReadKeyValues()
	want := []streams.KeyValue[string, int64]{streams.KV("all", int64(1)), streams.KV("streams", int64(1)), streams.KV("lead", int64(1)), streams.KV("to", int64(1)), streams.KV("kafka", int64(1)), streams.KV("streams", int64(2))}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	store := streamstest.KeyValueStore[string, int64](d, "counts")
	if v, ok, err := store.Get("streams"); err != nil || !ok || v != 2 {
		t.Fatalf("store streams = %d %v %v", v, ok, err)
	}
	if n := len(d.Runner().Changelog("counts")); n != 6 {
		t.Fatalf("changelog writes = %d, want 6", n)
	}
	if out := d.Runner().Output("wc-counts-repartition"); len(out) != 0 {
		t.Fatalf("internal topics must not show as output: %v", out)
	}
}

func TestAggregations(t *testing.T) {
	type sum = streams.KeyValue[string, int64]
	cases := []struct {
		name  string
		build func(g streams.Grouped[string, int64]) streams.Table[string, int64]
		want  []sum
	}{
		{"count", func(g streams.Grouped[string, int64]) streams.Table[string, int64] { return g.Count("st") },
			[]sum{streams.KV("a", int64(1)), streams.KV("b", int64(1)), streams.KV("a", int64(2))}},
		{"reduce", func(g streams.Grouped[string, int64]) streams.Table[string, int64] {
			return g.Reduce(func(a, v int64) int64 { return max(a, v) }, "st")
		}, []sum{streams.KV("a", int64(5)), streams.KV("b", int64(7)), streams.KV("a", int64(5))}},
		{"aggregate", func(g streams.Grouped[string, int64]) streams.Table[string, int64] {
			return streams.Aggregate(g, func() int64 { return 100 }, func(_ string, v, a int64) int64 { return a + v }, "st", streams.Int64())
		}, []sum{streams.KV("a", int64(105)), streams.KV("b", int64(107)), streams.KV("a", int64(108))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			c.build(streams.From(tp, "in", streams.String(), streams.Int64()).GroupByKey()).ToStream().To("out")
			d := streamstest.New(t, tp, streamstest.Config{})
			in := streamstest.Input(d, "in", streams.String(), streams.Int64())
			in.Pipe("a", 5)
			in.Pipe("b", 7)
			in.Pipe("a", 3)
			if err := in.PipeRawErr(nil, []byte{0, 0, 0, 0, 0, 0, 0, 1}, time.UnixMilli(1), nil); err != nil {
				t.Fatal(err) // a null key is skipped, not an error
			}
			got := streamstest.Output(d, "out", streams.String(), streams.Int64()).ReadKeyValues()
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			if v, _, _ := streamstest.KeyValueStore[string, int64](d, "st").Get("a"); v != c.want[2].Value {
				t.Fatalf("store a = %d", v)
			}
		})
	}
}

func TestTableFromTopic(t *testing.T) {
	tp := streams.NewTopology()
	tb := streams.TableFrom(tp, "users", "users-store", streams.String(), streams.String())
	tb.Filter(func(_, v string) bool { return v != "banned" }).ToStream().To("visible")
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "users", streams.String(), streams.String())
	in.Pipe("u1", "alice")
	in.Pipe("u2", "banned")
	in.PipeTombstone("u1", d.Runner().Now())
	store := streamstest.KeyValueStore[string, string](d, "users-store")
	if _, ok, _ := store.Get("u1"); ok {
		t.Fatal("tombstone must delete u1")
	}
	if v, _, _ := store.Get("u2"); v != "banned" {
		t.Fatalf("u2 = %q", v)
	}
	var got []string
	out := streamstest.Output(d, "visible", streams.String(), streams.String())
	for {
		r, ok := out.ReadRecord()
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s=%s/%v", r.Key, r.Value, r.Tombstone))
	}
	if want := []string{"u1=alice/false", "u2=/true", "u1=/true"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// dedup is a Processor API node: it forwards a key the first time it is seen, remembers
// keys in a store, and on each stream-time punctuation forwards how many keys it knows.
type dedup struct {
	ctx   *streams.ProcessorContext[string, string]
	seen  streams.KeyValueStore[string, int64]
	fired []time.Time
}

func (p *dedup) Init(ctx *streams.ProcessorContext[string, string]) error {
	p.ctx = ctx
	var err error
	p.seen, err = streams.GetKeyValueStore[string, int64](ctx, "seen")
	ctx.Schedule(10*time.Second, streams.StreamTime, func(now time.Time) error {
		p.fired = append(p.fired, now)
		return ctx.ForwardTo(ctx.ApplicationID()+"-never", streams.Record[string, string]{})
	})
	return err
}

func (p *dedup) Process(r streams.Record[string, string]) error {
	if _, ok, err := p.seen.Get(r.Key); err != nil || ok {
		return err
	}
	if err := p.seen.Put(r.Key, r.Timestamp.UnixMilli()); err != nil {
		return err
	}
	return p.ctx.Forward(r)
}

func (p *dedup) Close() {}

func TestProcessorAPIWithStoreAndStreamTimePunctuation(t *testing.T) {
	tp := streams.NewTopology()
	var inst *dedup
	streams.AddSource(tp, "src", streams.String(), streams.String(), "in")
	streams.AddProcessor(tp, "dedup", func() streams.Processor[string, string, string, string] {
		inst = &dedup{}
		return inst
	}, "src")
	streams.AddKeyValueStore(tp, streams.StoreSpec[string, int64]{Name: "seen", Keys: streams.String(), Values: streams.Int64(), Logging: true}, "dedup")
	streams.AddSink(tp, "sink", "out", streams.String(), streams.String(), "dedup")
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.String())
	base := time.UnixMilli(1_000_000)
	in.PipeAt("a", "1", base)
	in.PipeAt("a", "2", base.Add(5*time.Second))
	in.PipeAt("b", "3", base.Add(9*time.Second))
	if len(inst.fired) != 0 {
		t.Fatalf("punctuation fired early: %v", inst.fired)
	}
	// The punctuation forwards to a child that does not exist: its error must surface.
	err := in.PipeErr(streams.Record[string, string]{Key: "c", Value: "4", Timestamp: base.Add(25 * time.Second)})
	if !errors.Is(err, streams.ErrTopology) {
		t.Fatalf("punctuation error = %v, want ErrTopology", err)
	}
	if want := []time.Time{base.Add(25 * time.Second)}; !reflect.DeepEqual(inst.fired, want) {
		t.Fatalf("fired %v, want %v (once, at stream time, missed intervals skipped)", inst.fired, want)
	}
	got := streamstest.Output(d, "out", streams.String(), streams.String()).ReadKeyValues()
	if want := []kv{{Key: "a", Value: "1"}, {Key: "b", Value: "3"}, {Key: "c", Value: "4"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if n := len(d.Runner().Changelog("seen")); n != 3 {
		t.Fatalf("changelog writes = %d, want 3", n)
	}
}

func TestWallClockPunctuationMixedWithDSL(t *testing.T) {
	tp := streams.NewTopology()
	counts := streams.From(tp, "in", streams.String(), streams.String()).GroupByKey().Count("counts")
	// A processor downstream of the DSL table emits a snapshot of the store every minute.
	snap := streams.Process(counts.ToStream(), func() streams.Processor[string, int64, string, int64] {
		return &snapshot{}
	}, "counts")
	snap.ToWith("snapshots", streams.Produced[string, int64]{Keys: streams.String(), Values: streams.Int64()})
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.String())
	in.Pipe("x", "")
	in.Pipe("y", "")
	in.Pipe("x", "")
	out := streamstest.Output(d, "snapshots", streams.String(), streams.Int64())
	d.AdvanceWallClock(59 * time.Second)
	if !out.IsEmpty() {
		t.Fatal("wall-clock punctuation fired before its interval")
	}
	d.AdvanceWallClock(time.Second)
	got := out.ReadKeyValues()
	if want := []streams.KeyValue[string, int64]{streams.KV("x", int64(2)), streams.KV("y", int64(1))}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	d.AdvanceWallClock(3 * time.Minute)
	if n := len(out.ReadKeyValues()); n != 2 {
		t.Fatalf("missed intervals must fire once: %d records", n)
	}
}

type snapshot struct{}

func (s *snapshot) Init(ctx *streams.ProcessorContext[string, int64]) error {
	store, err := streams.GetKeyValueStore[string, int64](ctx, "counts")
	if err != nil {
		return err
	}
	ctx.Schedule(time.Minute, streams.WallClockTime, func(now time.Time) error {
		return store.All(func(k string, v int64) bool {
			return ctx.Forward(streams.Record[string, int64]{Key: k, Value: v, Timestamp: now}) == nil
		})
	})
	return nil
}
func (s *snapshot) Process(streams.Record[string, int64]) error { return nil }
func (s *snapshot) Close()                                      {}

func TestUserPanicBecomesError(t *testing.T) {
	tp := streams.NewTopology()
	streams.MapValues(streams.From(tp, "in", streams.String(), streams.String()), func(_, v string) string {
		if v == "boom" {
			panic("bad value")
		}
		return v
	}).To("out")
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.String())
	if err := in.PipeErr(streams.Record[string, string]{Key: "k", Value: "boom"}); !errors.Is(err, streams.ErrProcessing) {
		t.Fatalf("got %v, want ErrProcessing", err)
	}
	in.Pipe("k", "fine")
	if got := streamstest.Output(d, "out", streams.String(), streams.String()).ReadKeyValues(); len(got) != 1 {
		t.Fatalf("processing must continue after an error: %v", got)
	}
}

func TestDeserializationErrorIsReported(t *testing.T) {
	tp := streams.NewTopology()
	streams.From(tp, "in", streams.String(), streams.Int64()).To("out")
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.Int64())
	if err := in.PipeRawErr([]byte("k"), []byte{1, 2}, time.UnixMilli(5), nil); !errors.Is(err, streams.ErrSerde) {
		t.Fatalf("got %v, want ErrSerde", err)
	}
}
