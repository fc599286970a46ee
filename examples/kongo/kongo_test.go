package main

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/poste-io/poste/pkg/streams"
	"github.com/poste-io/poste/pkg/streams/streamstest"
)

func TestKongoTopology(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	type in struct {
		minute int
		e      Event
	}
	viol := func(truck, wh, goods string, kg int64, startMin int) Violation {
		return Violation{Truck: truck, Warehouse: wh, Goods: goods, Kg: kg, LimitKg: 1000,
			WindowStart: at(startMin), WindowEnd: at(startMin + 60)}
	}
	tests := []struct {
		name    string
		in      []in
		want    []Violation
		dropped int64
	}{
		{
			name: "load under the limit raises nothing",
			in:   []in{{0, Event{"t1", "Sydney", "fish", "load", 600}}, {1, Event{"t1", "Perth", "toys", "load", 400}}},
		},
		{
			name: "the load that crosses the limit alerts",
			in: []in{
				{0, Event{"t1", "Sydney", "fish", "load", 600}},
				{1, Event{"t1", "Perth", "steel", "load", 500}},
				{2, Event{"t1", "Perth", "toys", "load", 100}},
			},
			want: []Violation{viol("t1", "Perth", "steel", 1100, 0), viol("t1", "Perth", "toys", 1200, 0)},
		},
		{
			name: "unloads lower the weight and never alert",
			in: []in{
				{0, Event{"t1", "Sydney", "fish", "load", 900}},
				{1, Event{"t1", "Hobart", "steel", "load", 200}},
				{2, Event{"t1", "Hobart", "steel", "unload", 50}},
				{3, Event{"t1", "Hobart", "fish", "unload", 500}},
				{4, Event{"t1", "Darwin", "cement", "load", 300}},
			},
			want: []Violation{viol("t1", "Hobart", "steel", 1100, 0)},
		},
		{
			name: "trucks are weighed apart",
			in: []in{
				{0, Event{"t1", "Sydney", "fish", "load", 700}},
				{1, Event{"t2", "Sydney", "pianos", "load", 700}},
				{2, Event{"t2", "Perth", "books", "load", 400}},
			},
			want: []Violation{viol("t2", "Perth", "books", 1100, 0)},
		},
		{
			name: "a new window starts from zero",
			in: []in{
				{10, Event{"t1", "Sydney", "fish", "load", 800}},
				{70, Event{"t1", "Perth", "steel", "load", 800}},
				{71, Event{"t1", "Perth", "toys", "load", 300}},
			},
			want: []Violation{viol("t1", "Perth", "toys", 1100, 60)},
		},
		{
			name: "late events past grace are dropped and counted",
			in: []in{
				{0, Event{"t1", "Sydney", "fish", "load", 800}},
				{70, Event{"t1", "Perth", "steel", "load", 10}},
				{30, Event{"t1", "Perth", "steel", "load", 800}}, // window [0,60) closed at 61
			},
			dropped: 1,
		},
		{
			name: "invalid events are ignored",
			in: []in{
				{0, Event{"t1", "Sydney", "fish", "load", 1500}},
				{1, Event{"t2", "Sydney", "fish", "teleport", 1500}},
				{2, Event{"t3", "Sydney", "fish", "load", -5}},
			},
			want: []Violation{viol("t1", "Sydney", "fish", 1500, 0)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := streamstest.New(t, topology(params{limitKg: 1000, window: time.Hour, grace: time.Minute}), streamstest.Config{})
			events := streamstest.Input(d, eventsTopic, streams.String(), streams.JSON[Event]())
			for _, r := range tc.in {
				events.PipeAt(r.e.Truck, r.e, at(r.minute))
			}
			out := streamstest.Output(d, alertsTopic, streams.String(), streams.JSON[Violation]())
			var got []Violation
			for _, kv := range out.ReadKeyValues() {
				if kv.Key != kv.Value.Truck {
					t.Errorf("alert keyed %q for truck %q", kv.Key, kv.Value.Truck)
				}
				got = append(got, kv.Value)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("alerts:\n got %+v\nwant %+v", got, tc.want)
			}
			if n := d.DroppedRecords(); n != tc.dropped {
				t.Errorf("dropped %d, want %d", n, tc.dropped)
			}
		})
	}
}

func TestKongoStoreHoldsRunningWeight(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	d := streamstest.New(t, topology(params{limitKg: 1000, window: time.Hour}), streamstest.Config{})
	events := streamstest.Input(d, eventsTopic, streams.String(), streams.JSON[Event]())
	events.PipeAt("t1", Event{"t1", "Sydney", "fish", "load", 700}, base)
	events.PipeAt("t1", Event{"t1", "Perth", "fish", "unload", 200}, base.Add(time.Minute))
	l, ok, err := streamstest.WindowStore[string, Load](d, loadStore).Fetch("t1", base)
	if err != nil || !ok || l.Kg != 500 || l.Events != 2 {
		t.Fatalf("t1 window at %v: %+v %v %v, want 500 kg after 2 events", base, l, ok, err)
	}
}

func TestSimulateNeverUnloadsMoreThanCarried(t *testing.T) {
	events := simulateEvents(rand.New(rand.NewPCG(1, 2)), 2000, 4, 1000)
	if len(events) != 2000 {
		t.Fatalf("got %d events", len(events))
	}
	carried := map[string]int64{}
	var loads, unloads int
	for _, e := range events {
		switch e.Op {
		case "load":
			loads++
			carried[e.Truck] += e.Kg
		case "unload":
			unloads++
			carried[e.Truck] -= e.Kg
		default:
			t.Fatalf("bad op %q", e.Op)
		}
		if e.Kg <= 0 || carried[e.Truck] < 0 {
			t.Fatalf("event %+v leaves %s carrying %d", e, e.Truck, carried[e.Truck])
		}
	}
	if loads == 0 || unloads == 0 {
		t.Fatalf("loads %d unloads %d: want both", loads, unloads)
	}
}
