package streamstest_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
	"github.com/poste-io/poste/pkg/streams/streamstest"
)

// Orders on "left" (key: order id; value: customer id) join customers in the global table on
// "right" through a key mapper that reads the customer from the order.
func TestStreamGlobalTableJoins(t *testing.T) {
	steps := []step{{true, "c1", "Alice", 1}, {false, "o1", "c1", 2}, {false, "o2", "c2", 3}, {true, "c2", "Bob", 4},
		{false, "o3", "c2", 5}, {true, "c1", "", 6}, {false, "o4", "c1", 7}, {true, "c2", "Bobby", 8}, {false, "o5", "c2", 9}}
	for _, c := range []struct {
		name string
		left bool
		want []string
	}{
		{"inner", false, []string{"o1=c1+Alice@2", "o3=c2+Bob@5", "o5=c2+Bobby@9"}},
		{"left", true, []string{"o1=c1+Alice@2", "o2=c2+nil@3", "o3=c2+Bob@5", "o4=c1+nil@7", "o5=c2+Bobby@9"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			orders := streams.From(tp, "left", streams.String(), streams.String())
			customers := streams.GlobalTableFrom(tp, "right", "customers", streams.String(), streams.String())
			byCustomer := func(_, customer string) string { return customer }
			var j streams.Stream[string, string]
			if c.left {
				j = streams.LeftJoinStreamGlobalTable(orders, customers, byCustomer, func(_, v string, r *string) string { return v + "+" + opt(r) })
			} else {
				j = streams.JoinStreamGlobalTable(orders, customers, byCustomer, func(_, v, r string) string { return v + "+" + r })
			}
			j.To("out")
			if got := runJoin(t, tp, steps); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %v\nwant %v", got, c.want)
			}
		})
	}
}

// A stream whose key changed joins a global table without a repartition topic, and the
// global store is its own sub-topology in the description.
func TestGlobalJoinNeedsNoRepartition(t *testing.T) {
	tp := streams.NewTopology()
	s := streams.SelectKey(streams.From(tp, "left", streams.String(), streams.String()), func(k, _ string) string { return "x" + k })
	g := streams.GlobalTableFrom(tp, "right", "", streams.String(), streams.String())
	if !strings.HasPrefix(g.StoreName(), "right-STATE-STORE-") {
		t.Errorf("generated store name %q", g.StoreName())
	}
	streams.JoinStreamGlobalTable(s, g, func(_, v string) string { return v }, func(_, v, r string) string { return r }).
		ToWith("out", streams.Produced[string, string]{Keys: streams.String(), Values: streams.String()})
	desc := tp.Describe()
	if len(desc.Subtopologies) != 2 || desc.Subtopologies[0].Global || !desc.Subtopologies[1].Global {
		t.Fatalf("sub-topologies: %+v", desc.Subtopologies)
	}
	text := desc.String()
	for _, want := range []string{"Sub-topology: 1 for global store (will not generate tasks)", "(topics: [right])",
		"(stores: [" + g.StoreName() + "])"} {
		if !strings.Contains(text, want) {
			t.Errorf("description lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "repartition") {
		t.Errorf("description has a repartition topic:\n%s", text)
	}
	d := streamstest.New(t, tp, streamstest.Config{})
	streamstest.Input(d, "right", streams.String(), streams.String()).PipeAt("v", "row", time.UnixMilli(1))
	streamstest.Input(d, "left", streams.String(), streams.String()).PipeAt("k", "v", time.UnixMilli(2))
	got := streamstest.Output(d, "out", streams.String(), streams.String()).ReadKeyValues()
	if want := []streams.KeyValue[string, string]{streams.KV("xk", "row")}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Processors may read a global store they are connected to, never write it.
func TestGlobalStoreFromProcessor(t *testing.T) {
	tp := streams.NewTopology()
	g := streams.GlobalTableFrom(tp, "rates", "rates", streams.String(), streams.Int64())
	in := streams.From(tp, "in", streams.String(), streams.Int64())
	var writeErr error
	out := streams.Process(in, streams.ProcessorFunc[string, int64, string, int64](
		func(ctx *streams.ProcessorContext[string, int64], r streams.Record[string, int64]) error {
			st, err := streams.GetKeyValueStore[string, int64](ctx, "rates")
			if err != nil {
				return err
			}
			writeErr = st.Put(r.Key, 0)
			rate, ok, err := st.Get(r.Key)
			if err != nil || !ok {
				return err
			}
			return ctx.Forward(streams.Record[string, int64]{Key: r.Key, Value: r.Value * rate})
		}).Processor(), g.StoreName())
	out.ToWith("out", streams.Produced[string, int64]{Keys: streams.String(), Values: streams.Int64()})

	d := streamstest.New(t, tp, streamstest.Config{})
	rates := streamstest.Input(d, "rates", streams.String(), streams.Int64())
	rates.PipeAt("eur", 2, time.UnixMilli(1))
	rates.PipeAt("usd", 3, time.UnixMilli(1))
	rates.PipeTombstone("usd", time.UnixMilli(2))
	ins := streamstest.Input(d, "in", streams.String(), streams.Int64())
	ins.PipeAt("eur", 10, time.UnixMilli(3))
	ins.PipeAt("usd", 10, time.UnixMilli(4))
	if !errors.Is(writeErr, streams.ErrReadOnlyStore) {
		t.Errorf("write to global store: %v, want ErrReadOnlyStore", writeErr)
	}
	if got := streamstest.ReadToMap(streamstest.Output(d, "out", streams.String(), streams.Int64())); !reflect.DeepEqual(got, map[string]int64{"eur": 20}) {
		t.Errorf("out %v", got)
	}
	st := streamstest.KeyValueStore[string, int64](d, "rates")
	if v, ok, _ := st.Get("eur"); !ok || v != 2 || st.Len() != 1 {
		t.Errorf("global store: eur=%d %v, %d rows; want eur=2 and 1 row", v, ok, st.Len())
	}
}

func TestGlobalTableTopologyErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(tp *streams.Topology)
	}{
		{"topic read twice as global", func(tp *streams.Topology) {
			streams.GlobalTableFrom(tp, "g", "a", streams.String(), streams.String())
			streams.GlobalTableFrom(tp, "g", "b", streams.String(), streams.String())
		}},
		{"store name taken", func(tp *streams.Topology) {
			streams.TableFrom(tp, "t", "s", streams.String(), streams.String())
			streams.GlobalTableFrom(tp, "g", "s", streams.String(), streams.String())
		}},
		{"missing serde", func(tp *streams.Topology) {
			streams.GlobalTableFrom[string, string](tp, "g", "s", nil, streams.String())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tp := streams.NewTopology()
			c.build(tp)
			if err := tp.Validate(); !errors.Is(err, streams.ErrTopology) {
				t.Errorf("Validate: %v, want ErrTopology", err)
			}
		})
	}
	tp := streams.NewTopology()
	streams.GlobalTableFrom(tp, "g", "s", streams.String(), streams.String())
	streams.From(tp, "g", streams.String(), streams.String()).To("out")
	if _, err := streams.NewLocalRunner(tp, "app", time.Unix(0, 0)); !errors.Is(err, streams.ErrTopology) {
		t.Errorf("topic read as global table and stream: %v, want ErrTopology", err)
	}
}
