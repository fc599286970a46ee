package streamstest_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
	"github.com/poste-io/poste/pkg/streams/streamstest"
)

func sec(s float64) time.Time { return time.UnixMilli(int64(s * 1000)) }

type at struct {
	key string
	ms  int64
}

// windowsOut formats windowed updates as key@start-end=value (times in ms), deletions as =nil.
func windowsOut[V any](out *streamstest.OutputTopic[streams.Windowed[string], V]) []string {
	var got []string
	for {
		r, ok := out.ReadRecord()
		if !ok {
			return got
		}
		v := fmt.Sprint(r.Value)
		if r.Tombstone {
			v = "nil"
		}
		got = append(got, fmt.Sprintf("%s@%d-%d=%s", r.Key.Key, r.Key.Start.UnixMilli(), r.Key.End.UnixMilli(), v))
	}
}

// TestWindowedCounts pipes the same kind of input through each window type and checks every
// update, the records dropped as late, and what the store holds afterwards.
func TestWindowedCounts(t *testing.T) {
	cases := []struct {
		name    string
		build   func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64]
		serde   streams.Serde[streams.Windowed[string]]
		input   []at
		want    []string
		dropped int64
	}{
		{"tumbling boundaries", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.WindowedCount(g.WindowedBy(streams.TumblingWindows(10*time.Second, 0)), "w")
		}, streams.TimeWindowedSerde(streams.String(), 10*time.Second),
			[]at{{"a", 0}, {"a", 9999}, {"a", 10000}, {"b", 10001}},
			[]string{"a@0-10000=1", "a@0-10000=2", "a@10000-20000=1", "b@10000-20000=1"}, 0},
		{"tumbling grace then late", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.WindowedCount(g.WindowedBy(streams.TumblingWindows(10*time.Second, 5*time.Second)), "w")
		}, streams.TimeWindowedSerde(streams.String(), 10*time.Second),
			// 9000 arrives after 14000 but within grace (close time 9000 < end 10000); 8000
			// arrives once stream time 15000 closed [0,10000): dropped.
			[]at{{"a", 1000}, {"a", 14000}, {"a", 9000}, {"a", 15000}, {"a", 8000}},
			[]string{"a@0-10000=1", "a@10000-20000=1", "a@0-10000=2", "a@10000-20000=2"}, 1},
		{"hopping", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.WindowedCount(g.WindowedBy(streams.HoppingWindows(10*time.Second, 5*time.Second, 0)), "w")
		}, streams.TimeWindowedSerde(streams.String(), 10*time.Second),
			[]at{{"a", 3000}, {"a", 7000}, {"a", 12000}},
			[]string{"a@0-10000=1", "a@0-10000=2", "a@5000-15000=1", "a@5000-15000=2", "a@10000-20000=1"}, 0},
		{"sliding", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.WindowedCount(g.SlidingBy(streams.SlidingWindows{TimeDifference: 10 * time.Second, Grace: 30 * time.Second}), "w")
		}, streams.TimeWindowedSerde(streams.String(), 10*time.Second),
			// 15000: its left window [5000,15000] holds 10000 too; 10000's right window
			// [10001,20001] now holds 15000. 12000 (out of order) joins every window covering it
			// and opens its own right window over 15000.
			[]at{{"a", 10000}, {"a", 15000}, {"a", 12000}},
			[]string{"a@0-10000=1", "a@5000-15000=2", "a@10001-20001=1",
				"a@2000-12000=2", "a@5000-15000=3", "a@10001-20001=2", "a@12001-22001=1"}, 0},
		{"sliding late", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.WindowedCount(g.SlidingBy(streams.SlidingWindows{TimeDifference: 1 * time.Second}), "w")
		}, streams.TimeWindowedSerde(streams.String(), time.Second),
			[]at{{"a", 5000}, {"a", 1000}},
			[]string{"a@4000-5000=1"}, 1},
		{"session merge", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.SessionCount(g.SessionBy(streams.SessionWindows{Gap: 5 * time.Second, Grace: time.Minute}), "w")
		}, streams.SessionWindowedSerde(streams.String()),
			[]at{{"a", 0}, {"a", 3000}, {"a", 20000}, {"a", 10000}, {"a", 14000}, {"a", 17000}},
			[]string{"a@0-0=1", "a@0-0=nil", "a@0-3000=2", "a@20000-20000=1", "a@10000-10000=1",
				"a@10000-10000=nil", "a@10000-14000=2", "a@10000-14000=nil", "a@20000-20000=nil", "a@10000-20000=4"}, 0},
		{"session late", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.SessionCount(g.SessionBy(streams.SessionWindows{Gap: time.Second, Grace: time.Second}), "w")
		}, streams.SessionWindowedSerde(streams.String()),
			// 1000 would be a session ending at 1000, before close time 10000-1000.
			[]at{{"b", 10000}, {"a", 1000}, {"a", 9500}},
			[]string{"b@10000-10000=1", "a@9500-9500=1"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			c.build(streams.From(tp, "in", streams.String(), streams.String()).GroupByKey()).ToStream().To("out")
			d := streamstest.New(t, tp, streamstest.Config{})
			in := streamstest.Input(d, "in", streams.String(), streams.String())
			for _, r := range c.input {
				in.PipeAt(r.key, "x", time.UnixMilli(r.ms))
			}
			got := windowsOut(streamstest.Output(d, "out", c.serde, streams.Int64()))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("updates\n got %v\nwant %v", got, c.want)
			}
			if n := d.DroppedRecords(); n != c.dropped {
				t.Errorf("dropped = %d, want %d", n, c.dropped)
			}
		})
	}
}

// TestWindowStoreContents checks what a tumbling count leaves in its window store and
// changelog, and that windows past retention (size + grace) are purged with tombstones.
func TestWindowStoreContents(t *testing.T) {
	tp := streams.NewTopology()
	g := streams.From(tp, "in", streams.String(), streams.String()).GroupByKey()
	streams.WindowedCount(g.WindowedBy(streams.TumblingWindows(time.Minute, 0)), "w")
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.String())
	in.PipeAt("a", "x", sec(1))
	in.PipeAt("a", "x", sec(2))
	in.PipeAt("ab", "x", sec(30)) // a key that extends "a" must not show up in a's windows
	ws := streamstest.WindowStore[string, int64](d, "w")
	if n, ok, err := ws.Fetch("a", sec(0)); err != nil || !ok || n != 2 {
		t.Fatalf("fetch a@0 = %d %v %v", n, ok, err)
	}
	var got []string
	if err := ws.FetchRange("a", sec(0), sec(3600), func(w streams.Windowed[string], n int64) bool {
		got = append(got, fmt.Sprintf("%s@%d=%d", w.Key, w.Start.Unix(), n))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@0=2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("range = %v, want %v", got, want)
	}
	if n := len(d.Runner().Changelog("w")); n != 3 {
		t.Errorf("changelog has %d writes, want 3", n)
	}
	in.PipeAt("c", "x", sec(600)) // far past retention: earlier windows are purged
	if ws.Len() != 1 {
		t.Errorf("after purge the store holds %d windows, want 1", ws.Len())
	}
	cl := d.Runner().Changelog("w")
	tombs := 0
	for _, r := range cl {
		if r.Value == nil {
			tombs++
		}
	}
	if tombs != 2 {
		t.Errorf("changelog has %d tombstones, want 2", tombs)
	}
}

// TestSuppressUntilWindowCloses checks that only final results leave, once stream time passes
// window end plus grace, and that late records change nothing.
func TestSuppressUntilWindowCloses(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64]
		serde streams.Serde[streams.Windowed[string]]
		input []at
		want  []string
	}{
		{"tumbling", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.WindowedCount(g.WindowedBy(streams.TumblingWindows(10*time.Second, 2*time.Second)), "w")
		}, streams.TimeWindowedSerde(streams.String(), 10*time.Second),
			[]at{{"a", 1000}, {"a", 2000}, {"b", 5000}, {"a", 11000}, {"a", 9000}, {"b", 11999},
				{"b", 12000}, {"a", 1000}, {"a", 30000}},
			[]string{"a@0-10000=3", "b@0-10000=1", "a@10000-20000=1", "b@10000-20000=2"}},
		{"session", func(g streams.Grouped[string, string]) streams.Table[streams.Windowed[string], int64] {
			return streams.SessionCount(g.SessionBy(streams.SessionWindows{Gap: 5 * time.Second}), "w")
		}, streams.SessionWindowedSerde(streams.String()),
			[]at{{"a", 1000}, {"a", 4000}, {"a", 8000}, {"b", 20000}},
			[]string{"a@1000-8000=3"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			c.build(streams.From(tp, "in", streams.String(), streams.String()).GroupByKey()).
				SuppressUntilWindowCloses().ToStream().To("out")
			d := streamstest.New(t, tp, streamstest.Config{})
			in := streamstest.Input(d, "in", streams.String(), streams.String())
			out := streamstest.Output(d, "out", c.serde, streams.Int64())
			for _, r := range c.input {
				in.PipeAt(r.key, "x", time.UnixMilli(r.ms))
			}
			if got := windowsOut(out); !reflect.DeepEqual(got, c.want) {
				t.Errorf("emitted\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

// TestWindowedReduceAggregate covers reduce and aggregate over windows and sessions.
func TestWindowedReduceAggregate(t *testing.T) {
	tp := streams.NewTopology()
	s := streams.From(tp, "in", streams.String(), streams.Int64())
	streams.WindowedReduce(s.GroupByKey().WindowedBy(streams.TumblingWindows(10*time.Second, 0)),
		func(a, v int64) int64 { return max(a, v) }, "max").ToStream().To("max")
	streams.WindowedAggregate(s.GroupByKey().WindowedBy(streams.TumblingWindows(10*time.Second, 0)),
		func() string { return "" }, func(_ string, v int64, acc string) string { return acc + fmt.Sprint(v) }, "cat", streams.String()).
		ToStream().To("cat")
	streams.SessionAggregate(s.GroupByKey().SessionBy(streams.SessionWindows{Gap: 3 * time.Second}),
		func() int64 { return 0 }, func(_ string, v, acc int64) int64 { return acc + v },
		func(_ string, a, b int64) int64 { return a + b }, "sum", streams.Int64()).ToStream().To("sum")
	streams.SessionReduce(s.GroupByKey().SessionBy(streams.SessionWindows{Gap: 3 * time.Second}),
		func(a, v int64) int64 { return min(a, v) }, "min").ToStream().To("min")
	d := streamstest.New(t, tp, streamstest.Config{})
	in := streamstest.Input(d, "in", streams.String(), streams.Int64())
	for i, v := range []int64{5, 9, 2} {
		in.PipeAt("k", v, sec(float64(2*i)))
	}
	tw := streams.TimeWindowedSerde(streams.String(), 10*time.Second)
	sw := streams.SessionWindowedSerde(streams.String())
	check := func(name string, got, want []string) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s\n got %v\nwant %v", name, got, want)
		}
	}
	check("max", windowsOut(streamstest.Output(d, "max", tw, streams.Int64())), []string{"k@0-10000=5", "k@0-10000=9", "k@0-10000=9"})
	check("cat", windowsOut(streamstest.Output(d, "cat", tw, streams.String())), []string{"k@0-10000=5", "k@0-10000=59", "k@0-10000=592"})
	check("sum", windowsOut(streamstest.Output(d, "sum", sw, streams.Int64())),
		[]string{"k@0-0=5", "k@0-0=nil", "k@0-2000=14", "k@0-2000=nil", "k@0-4000=16"})
	check("min", windowsOut(streamstest.Output(d, "min", sw, streams.Int64())),
		[]string{"k@0-0=5", "k@0-0=nil", "k@0-2000=5", "k@0-2000=nil", "k@0-4000=2"})
	ss := streamstest.SessionStore[string, int64](d, "sum")
	var got []string
	_ = ss.FindSessions("k", sec(0), sec(100), func(w streams.Windowed[string], v int64) bool {
		got = append(got, fmt.Sprintf("%d-%d=%d", w.Start.UnixMilli(), w.End.UnixMilli(), v))
		return true
	})
	check("session store", got, []string{"0-4000=16"})
}

// TestWindowedSerdeFormat checks the byte layout of windowed keys (Kafka's).
func TestWindowedSerdeFormat(t *testing.T) {
	w := streams.Windowed[string]{Key: "k", Start: time.UnixMilli(1), End: time.UnixMilli(11)}
	b, _ := streams.TimeWindowedSerde(streams.String(), 10*time.Millisecond).Serialize("", w)
	if want := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 1}; !reflect.DeepEqual(b, want) {
		t.Errorf("time windowed = %v, want %v", b, want)
	}
	b, _ = streams.SessionWindowedSerde(streams.String()).Serialize("", w)
	if want := []byte{'k', 0, 0, 0, 0, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 1}; !reflect.DeepEqual(b, want) {
		t.Errorf("session windowed = %v, want %v", b, want)
	}
	back, err := streams.SessionWindowedSerde(streams.String()).Deserialize("", b)
	if err != nil || back != w {
		t.Errorf("round trip = %v %v", back, err)
	}
	if _, err := streams.TimeWindowedSerde(streams.String(), time.Second).Deserialize("", []byte{1}); err == nil {
		t.Error("short windowed key: want an error")
	}
}
