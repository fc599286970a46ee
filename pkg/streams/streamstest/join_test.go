package streamstest_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
	"github.com/poste-io/poste/pkg/streams/streamstest"
)

func opt[T any](p *T) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}

// step is one input of a join test: a record (or tombstone) on the left or right topic.
type step struct {
	right bool
	key   string
	value string // "" is a tombstone (tables)
	ms    int64
}

func runJoin(t *testing.T, tp *streams.Topology, steps []step) []string {
	t.Helper()
	got, _ := runJoinDropped(t, tp, steps)
	return got
}

func runJoinDropped(t *testing.T, tp *streams.Topology, steps []step) ([]string, int64) {
	t.Helper()
	d := streamstest.New(t, tp, streamstest.Config{})
	l := streamstest.Input(d, "left", streams.String(), streams.String())
	r := streamstest.Input(d, "right", streams.String(), streams.String())
	for _, s := range steps {
		in := l
		if s.right {
			in = r
		}
		if s.value == "" {
			in.PipeTombstone(s.key, time.UnixMilli(s.ms))
		} else {
			in.PipeAt(s.key, s.value, time.UnixMilli(s.ms))
		}
	}
	var got []string
	out := streamstest.Output(d, "out", streams.String(), streams.String())
	for {
		rec, ok := out.ReadRecord()
		if !ok {
			return got, d.DroppedRecords()
		}
		v := rec.Value
		if rec.Tombstone {
			v = "<del>"
		}
		got = append(got, fmt.Sprintf("%s=%s@%d", rec.Key, v, rec.Timestamp.UnixMilli()))
	}
}

func TestStreamTableJoins(t *testing.T) {
	steps := []step{{false, "a", "s1", 1}, {true, "a", "t1", 2}, {false, "a", "s2", 3}, {false, "b", "s3", 4},
		{true, "a", "", 5}, {false, "a", "s4", 6}}
	for _, c := range []struct {
		name string
		left bool
		want []string
	}{
		{"inner", false, []string{"a=s2+t1@3"}},
		{"left", true, []string{"a=s1+nil@1", "a=s2+t1@3", "b=s3+nil@4", "a=s4+nil@6"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			s := streams.From(tp, "left", streams.String(), streams.String())
			tb := streams.TableFrom(tp, "right", "rt", streams.String(), streams.String())
			var j streams.Stream[string, string]
			if c.left {
				j = streams.LeftJoinStreamTable(s, tb, func(_ string, v string, r *string) string { return v + "+" + opt(r) })
			} else {
				j = streams.JoinStreamTable(s, tb, func(_, v, r string) string { return v + "+" + r })
			}
			j.To("out")
			if got := runJoin(t, tp, steps); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestTableTableJoins(t *testing.T) {
	steps := []step{{false, "a", "l1", 1}, {true, "a", "r1", 2}, {true, "b", "r2", 3}, {false, "a", "l2", 4},
		{false, "a", "", 5}, {true, "b", "", 6}, {true, "a", "", 7}}
	for _, c := range []struct {
		name string
		want []string
	}{
		{"inner", []string{"a=l1+r1@2", "a=l2+r1@4", "a=<del>@5"}},
		{"left", []string{"a=l1+nil@1", "a=l1+r1@2", "a=l2+r1@4", "a=<del>@5"}},
		{"outer", []string{"a=l1+nil@1", "a=l1+r1@2", "b=nil+r2@3", "a=l2+r1@4", "a=nil+r1@5", "b=<del>@6", "a=<del>@7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			l := streams.TableFrom(tp, "left", "lt", streams.String(), streams.String())
			r := streams.TableFrom(tp, "right", "rt", streams.String(), streams.String())
			var j streams.Table[string, string]
			switch c.name {
			case "inner":
				j = streams.JoinTables(l, r, func(_, a, b string) string { return a + "+" + b }, "j", streams.String())
			case "left":
				j = streams.LeftJoinTables(l, r, func(_ string, a string, b *string) string { return a + "+" + opt(b) }, "j", streams.String())
			default:
				j = streams.OuterJoinTables(l, r, func(_ string, a, b *string) string { return opt(a) + "+" + opt(b) }, "j", streams.String())
			}
			j.ToStream().To("out")
			if got := runJoin(t, tp, steps); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

// TestTableJoinDerived joins a filtered table: the join must see the filter, not the source.
func TestTableJoinDerived(t *testing.T) {
	tp := streams.NewTopology()
	s := streams.From(tp, "left", streams.String(), streams.String())
	tb := streams.TableFrom(tp, "right", "rt", streams.String(), streams.String()).
		Filter(func(_, v string) bool { return v != "hidden" })
	streams.JoinStreamTable(s, tb, func(_, v, r string) string { return v + "+" + r }).To("out")
	got := runJoin(t, tp, []step{{true, "a", "hidden", 1}, {false, "a", "s1", 2}, {true, "a", "shown", 3}, {false, "a", "s2", 4}})
	if want := []string{"a=s2+shown@4"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestStreamStreamJoins(t *testing.T) {
	// Window ±10ms, grace 0. l1@0 meets r1@5; l2@100 finds nobody; r2@30 is within 10ms of
	// nobody; r3@95 meets l2@100 (arrives later, out of order but not late); l3@300 moves stream
	// time so every earlier window closes (r2 leaves the outer join unmatched); r4@50 is late
	// by then; l4@400 closes l3's window, so left and outer joins emit l3 unmatched.
	steps := []step{{false, "a", "l1", 0}, {true, "a", "r1", 5}, {true, "a", "r2", 30}, {false, "a", "l2", 100},
		{true, "a", "r3", 95}, {false, "b", "l3", 300}, {true, "a", "r4", 50}, {false, "c", "l4", 400}}
	for _, c := range []struct {
		name    string
		want    []string
		dropped int64
	}{
		{"inner", []string{"a=l1+r1@5", "a=l2+r3@100"}, 1},
		{"left", []string{"a=l1+r1@5", "a=l2+r3@100", "b=l3+nil@300"}, 1},
		{"outer", []string{"a=l1+r1@5", "a=nil+r2@30", "a=l2+r3@100", "b=l3+nil@300"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			l := streams.From(tp, "left", streams.String(), streams.String())
			r := streams.From(tp, "right", streams.String(), streams.String())
			w := streams.JoinWindowsOf(10*time.Millisecond, 0)
			var j streams.Stream[string, string]
			switch c.name {
			case "inner":
				j = streams.JoinStreams(l, r, w, func(_, a, b string) string { return a + "+" + b })
			case "left":
				j = streams.LeftJoinStreams(l, r, w, func(_ string, a string, b *string) string { return a + "+" + opt(b) })
			default:
				j = streams.OuterJoinStreams(l, r, w, func(_ string, a, b *string) string { return opt(a) + "+" + opt(b) })
			}
			streams.MapValues(j, func(_, v string) string { return v }).ToWith("out", streams.Produced[string, string]{Keys: streams.String(), Values: streams.String()})
			got, dropped := runJoinDropped(t, tp, steps)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
			if dropped != c.dropped {
				t.Errorf("dropped = %d, want %d", dropped, c.dropped)
			}
		})
	}
}
