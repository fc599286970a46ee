package main

import (
	"math"
	"time"

	"github.com/poste-io/poste/pkg/streams"
)

const (
	inputTopic  = "anomaly-input"
	alertsTopic = "anomaly-alerts"
	windowStore = "anomaly-window"
)

// Sample is one reading kept in a key's window.
type Sample struct {
	TS int64   `json:"ts"` // milliseconds since the epoch
	V  float64 `json:"v"`
}

// Anomaly is written to anomaly-alerts for a value more than K standard deviations from the
// mean of its key's window.
type Anomaly struct {
	Key       string    `json:"key"`
	Value     float64   `json:"value"`
	Mean      float64   `json:"mean"`
	StdDev    float64   `json:"stddev"`
	Sigmas    float64   `json:"sigmas"` // |value - mean| / stddev
	Samples   int       `json:"samples"`
	Timestamp time.Time `json:"timestamp"`
}

// params are the knobs of the detector.
type params struct {
	k          float64       // flag values more than k standard deviations from the mean
	window     time.Duration // a value is compared with its key's values of the window before it
	minSamples int           // fewer earlier values than this in the window: too little to judge
}

// detector keeps, per key, the values of the last window in a logged key-value store and
// compares each new value with the mean and (population) standard deviation of the values
// that came before it within the window (its sliding window (t-window, t]). The new value
// then joins the window, so a lasting shift of level stops being flagged once the window
// has adapted to it. A window without variation (stddev 0) flags nothing: how many standard
// deviations away a value is is undefined there.
type detector struct {
	p     params
	ctx   *streams.ProcessorContext[string, Anomaly]
	store streams.KeyValueStore[string, []Sample]
}

func (d *detector) Init(ctx *streams.ProcessorContext[string, Anomaly]) (err error) {
	d.ctx = ctx
	d.store, err = streams.GetKeyValueStore[string, []Sample](ctx, windowStore)
	return err
}

func (d *detector) Close() {}

func (d *detector) Process(r streams.Record[string, float64]) error {
	if math.IsNaN(r.Value) || math.IsInf(r.Value, 0) {
		return nil
	}
	ts := r.Timestamp.UnixMilli()
	old, _, err := d.store.Get(r.Key)
	if err != nil {
		return err
	}
	from := ts - d.p.window.Milliseconds() // exclusive
	kept := old[:0:0]
	for _, s := range old {
		if s.TS > from {
			kept = append(kept, s)
		}
	}
	if a, ok := judge(kept, r.Value, d.p); ok {
		a.Key, a.Timestamp = r.Key, r.Timestamp.UTC()
		if err := d.ctx.Forward(streams.Record[string, Anomaly]{Key: r.Key, Value: a, Timestamp: r.Timestamp}); err != nil {
			return err
		}
	}
	return d.store.Put(r.Key, append(kept, Sample{TS: ts, V: r.Value}))
}

// judge compares v with the statistics of window.
func judge(window []Sample, v float64, p params) (Anomaly, bool) {
	n := len(window)
	if n == 0 || n < p.minSamples {
		return Anomaly{}, false
	}
	var sum float64
	for _, s := range window {
		sum += s.V
	}
	mean := sum / float64(n)
	var sq float64
	for _, s := range window {
		sq += (s.V - mean) * (s.V - mean)
	}
	std := math.Sqrt(sq / float64(n))
	if std == 0 {
		return Anomaly{}, false
	}
	sigmas := math.Abs(v-mean) / std
	if sigmas <= p.k {
		return Anomaly{}, false
	}
	return Anomaly{Value: v, Mean: mean, StdDev: std, Sigmas: sigmas, Samples: n}, true
}

// topology: readings (key: sensor id as a string; value: a float64 as Kafka's
// DoubleSerializer writes it) → detector with its window store → anomalies as JSON.
func topology(p params) *streams.Topology {
	t := streams.NewTopology()
	readings := streams.From(t, inputTopic, streams.String(), streams.Float64())
	det := streams.Process(readings, func() streams.Processor[string, float64, string, Anomaly] { return &detector{p: p} })
	streams.AddKeyValueStore(t, streams.StoreSpec[string, []Sample]{Name: windowStore, Keys: streams.String(),
		Values: streams.JSON[[]Sample](), Logging: true}, det.Name())
	det.ToWith(alertsTopic, streams.Produced[string, Anomaly]{Keys: streams.String(), Values: streams.JSON[Anomaly]()})
	return t
}
