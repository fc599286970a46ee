package main

import (
	"time"

	"github.com/poste-io/poste/pkg/streams"
)

const (
	eventsTopic = "kongo-events"
	alertsTopic = "kongo-alerts"
	loadStore   = "truck-load"
)

// Event is one movement of goods between a warehouse and a truck, keyed by the truck's id.
// Op is "load" (goods go onto the truck) or "unload" (goods go into the warehouse).
type Event struct {
	Truck     string `json:"truck"`
	Warehouse string `json:"warehouse"`
	Goods     string `json:"goods"`
	Op        string `json:"op"`
	Kg        int64  `json:"kg"`
}

// Load is a truck's running weight within one window: the sum of what it loaded minus what it
// unloaded, and the last event that changed it.
type Load struct {
	Kg        int64  `json:"kg"`
	Events    int    `json:"events"`
	LastOp    string `json:"lastOp"`
	Warehouse string `json:"warehouse"`
	Goods     string `json:"goods"`
}

// Violation is written to kongo-alerts when a load puts a truck over its limit.
type Violation struct {
	Truck       string    `json:"truck"`
	Warehouse   string    `json:"warehouse"`
	Goods       string    `json:"goods"`
	Kg          int64     `json:"kg"`
	LimitKg     int64     `json:"limitKg"`
	WindowStart time.Time `json:"windowStart"`
	WindowEnd   time.Time `json:"windowEnd"`
}

// params are the knobs of the topology.
type params struct {
	limitKg int64
	window  time.Duration
	grace   time.Duration
}

// topology: events keyed by truck → tumbling windows per truck → running weight → every load
// that leaves a truck above the limit becomes a Violation on kongo-alerts. Unloads never
// raise an alert, even while a truck is still over the limit: only the load that caused it.
func topology(p params) *streams.Topology {
	t := streams.NewTopology()
	events := streams.From(t, eventsTopic, streams.String(), streams.JSON[Event]())
	moves := events.Filter(func(_ string, e Event) bool { return (e.Op == "load" || e.Op == "unload") && e.Kg > 0 })
	windows := moves.GroupByKey().WindowedBy(streams.TumblingWindows(p.window, p.grace))
	loads := streams.WindowedAggregate(windows,
		func() Load { return Load{} },
		func(_ string, e Event, l Load) Load {
			if e.Op == "load" {
				l.Kg += e.Kg
			} else {
				l.Kg -= e.Kg
			}
			l.Events++
			l.LastOp, l.Warehouse, l.Goods = e.Op, e.Warehouse, e.Goods
			return l
		}, loadStore, streams.JSON[Load]())
	over := loads.ToStream().Filter(func(_ streams.Windowed[string], l Load) bool {
		return l.LastOp == "load" && l.Kg > p.limitKg
	})
	alerts := streams.Map(over, func(w streams.Windowed[string], l Load) (string, Violation) {
		return w.Key, Violation{Truck: w.Key, Warehouse: l.Warehouse, Goods: l.Goods, Kg: l.Kg, LimitKg: p.limitKg,
			WindowStart: w.Start.UTC(), WindowEnd: w.End.UTC()}
	})
	alerts.ToWith(alertsTopic, streams.Produced[string, Violation]{Keys: streams.String(), Values: streams.JSON[Violation]()})
	return t
}
