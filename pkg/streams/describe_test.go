package streams

import (
	"errors"
	"strings"
	"testing"
)

// wordCount builds the quickstart topology used by several tests.
func wordCount() *Topology {
	t := NewTopology()
	lines := From(t, "streams-plaintext-input", String(), String())
	words := FlatMapValues(lines, func(_ string, v string) []string { return strings.Fields(strings.ToLower(v)) })
	counts := GroupBy(words, func(_ string, w string) string { return w }, String(), String()).Count("counts-store")
	counts.ToStream().To("streams-wordcount-output")
	return t
}

func TestDescribeWordCountShape(t *testing.T) {
	got := wordCount().Describe().String()
	want := `Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [streams-plaintext-input])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> KSTREAM-FILTER-0000000003
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FILTER-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: counts-store-repartition)
      <-- KSTREAM-FILTER-0000000003

   Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000005 (topics: [counts-store-repartition])
      --> KSTREAM-AGGREGATE-0000000006
    Processor: KSTREAM-AGGREGATE-0000000006 (stores: [counts-store])
      --> KTABLE-TOSTREAM-0000000007
      <-- KSTREAM-SOURCE-0000000005
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-AGGREGATE-0000000006
    Sink: KSTREAM-SINK-0000000008 (topic: streams-wordcount-output)
      <-- KTABLE-TOSTREAM-0000000007

`
	if got != want {
		t.Fatalf("describe:\n%s\nwant:\n%s", got, want)
	}
}

func TestDescribeRenderings(t *testing.T) {
	d := wordCount().Describe()
	for _, c := range []struct {
		name, out string
		want      []string
	}{
		{"mermaid", d.Mermaid(), []string{"flowchart TD", `subgraph sub1 ["Sub-topology 1"]`,
			`t_counts_store_repartition(["counts-store-repartition"])`, `s_counts_store[("counts-store")]`,
			"n_KSTREAM_SINK_0000000004 --> t_counts_store_repartition", "t_counts_store_repartition --> n_KSTREAM_SOURCE_0000000005",
			"n_KSTREAM_AGGREGATE_0000000006 -.- s_counts_store"}},
		{"dot", d.DOT(), []string{"digraph topology {", "subgraph cluster_0 {", `label="Sub-topology 1"`,
			`s_counts_store [label="counts-store", shape=cylinder];`, "t_streams_plaintext_input -> n_KSTREAM_SOURCE_0000000000;",
			"n_KTABLE_TOSTREAM_0000000007 -> n_KSTREAM_SINK_0000000008;"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.out, w) {
				t.Errorf("%s lacks %q:\n%s", c.name, w, c.out)
			}
		}
	}
}

func TestTopologyErrors(t *testing.T) {
	cases := []struct {
		name  string
		build func(t *Topology)
	}{
		{"unknown parent", func(t *Topology) { AddSink(t, "sink", "out", String(), String(), "nope") }},
		{"duplicate name", func(t *Topology) {
			AddSource(t, "src", String(), String(), "a")
			AddSource(t, "src", String(), String(), "b")
		}},
		{"missing serde after type change", func(t *Topology) {
			s := From(t, "in", String(), String())
			MapValues(s, func(_ string, v string) int { return len(v) }).To("out")
		}},
		{"unknown store", func(t *Topology) {
			s := From(t, "in", String(), String())
			Process(s, ProcessorFunc[string, string, string, string](func(*ProcessorContext[string, string], Record[string, string]) error { return nil }).Processor(), "missing")
		}},
	}
	for _, c := range cases {
		tp := NewTopology()
		c.build(tp)
		if err := tp.Validate(); !errors.Is(err, ErrTopology) {
			t.Errorf("%s: Validate = %v, want ErrTopology", c.name, err)
		}
	}
}
