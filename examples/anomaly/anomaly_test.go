package main

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
	"github.com/poste-io/poste/pkg/streams/streamstest"
)

func TestAnomalyTopology(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	type in struct {
		sec int
		key string
		v   float64
	}
	type out struct {
		key            string
		v, mean, sigma float64
		n              int
	}
	steady := []in{{0, "a", 10}, {1, "a", 12}, {2, "a", 10}, {3, "a", 12}} // mean 11, stddev 1
	tests := []struct {
		name string
		in   []in
		want []out
	}{
		{name: "a value within k deviations passes", in: append(steady[:4:4], in{4, "a", 13})},
		{name: "a value beyond k deviations is flagged", in: append(steady[:4:4], in{4, "a", 14}),
			want: []out{{"a", 14, 11, 3, 4}}},
		{name: "low values are flagged too", in: append(steady[:4:4], in{4, "a", 7.5}),
			want: []out{{"a", 7.5, 11, 3.5, 4}}},
		{name: "too few samples: nothing is judged", in: []in{{0, "a", 10}, {1, "a", 12}, {2, "a", 100}}},
		{name: "no variation: nothing is judged", in: []in{{0, "a", 5}, {1, "a", 5}, {2, "a", 5}, {3, "a", 50}}},
		{name: "values that left the window do not count",
			// at 14 s the window (4 s, 14 s] holds nothing of a's first four values
			in: append(steady[:4:4], in{14, "a", 100})},
		{name: "keys have their own windows",
			in:   append(steady[:4:4], in{4, "b", 14}, in{5, "b", 10}, in{6, "a", 14}),
			want: []out{{"a", 14, 11, 3, 4}}},
		{name: "a flagged value joins the window",
			in: append(steady[:4:4], in{4, "a", 14}, in{5, "a", 14}),
			// second 14 against {10,12,10,12,14}: mean 11.6, stddev 1.496: 1.6 deviations
			want: []out{{"a", 14, 11, 3, 4}}},
	}
	p := params{k: 2, window: 10 * time.Second, minSamples: 3}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := streamstest.New(t, topology(p), streamstest.Config{})
			readings := streamstest.Input(d, inputTopic, streams.String(), streams.Float64())
			for _, r := range tc.in {
				readings.PipeAt(r.key, r.v, base.Add(time.Duration(r.sec)*time.Second))
			}
			got := streamstest.Output(d, alertsTopic, streams.String(), streams.JSON[Anomaly]()).ReadKeyValues()
			if len(got) != len(tc.want) {
				t.Fatalf("got %d anomalies %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				a := got[i].Value
				if got[i].Key != w.key || a.Key != w.key || a.Value != w.v || a.Samples != w.n ||
					math.Abs(a.Mean-w.mean) > 1e-9 || math.Abs(a.Sigmas-w.sigma) > 1e-9 {
					t.Errorf("anomaly %d: got %s %+v, want %+v", i, got[i].Key, a, w)
				}
			}
		})
	}
}

func TestAnomalyWindowStoreIsLoggedAndPruned(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	d := streamstest.New(t, topology(params{k: 3, window: 10 * time.Second, minSamples: 3}), streamstest.Config{})
	readings := streamstest.Input(d, inputTopic, streams.String(), streams.Float64())
	for i, v := range []float64{1, 2, 3, 4} {
		readings.PipeAt("a", v, base.Add(time.Duration(i*5)*time.Second))
	}
	w, _, err := streamstest.KeyValueStore[string, []Sample](d, windowStore).Get("a")
	if err != nil {
		t.Fatal(err)
	}
	// at 15 s the window (5 s, 15 s] keeps the values of 10 s and 15 s
	if len(w) != 2 || w[0].V != 3 || w[1].V != 4 {
		t.Fatalf("window of a: %+v, want the values 3 and 4", w)
	}
	if n := len(d.Runner().Changelog(windowStore)); n != 4 {
		t.Fatalf("%d changelog writes, want 4", n)
	}
}

// The simulation's spikes are 8 to 12 deviations from the level; with k = 4 every spike must be
// flagged once its sensor has enough history, and very few normal values.
func TestSimulatedSpikesAreFound(t *testing.T) {
	readings := simulateReadings(rand.New(rand.NewPCG(7, 9)), 4000, 3)
	p := params{k: 4, window: time.Minute, minSamples: 10}
	d := streamstest.New(t, topology(p), streamstest.Config{})
	in := streamstest.Input(d, inputTopic, streams.String(), streams.Float64())
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	seen := map[string]int{}
	wantSpikes := map[float64]bool{}
	spikes := 0
	for i, r := range readings {
		if r.spike {
			spikes++
			if seen[r.sensor] >= p.minSamples {
				wantSpikes[r.value] = true
			}
		}
		seen[r.sensor]++
		in.PipeAt(r.sensor, r.value, base.Add(time.Duration(i)*100*time.Millisecond))
	}
	if spikes < 20 {
		t.Fatalf("simulation made only %d spikes", spikes)
	}
	falsePos := 0
	for _, kv := range streamstest.Output(d, alertsTopic, streams.String(), streams.JSON[Anomaly]()).ReadKeyValues() {
		if wantSpikes[kv.Value.Value] {
			delete(wantSpikes, kv.Value.Value)
		} else {
			falsePos++
		}
	}
	if len(wantSpikes) != 0 {
		t.Errorf("%d spikes not flagged: %v", len(wantSpikes), wantSpikes)
	}
	if falsePos > len(readings)/200 {
		t.Errorf("%d normal values flagged", falsePos)
	}
}
