// Package streamstest runs a streams.Topology without a broker, deterministically, as Kafka's
// TopologyTestDriver does: pipe records with timestamps into input topics, advance the
// wall clock, read what the topology wrote to output topics and look into its stores.
//
// Every topic has a single partition, so each sub-topology runs as one task; records written
// to repartition topics (or to any topic the topology reads) are processed before Pipe
// returns. Punctuations by stream time fire as piped timestamps advance; those by wall-clock
// time fire only in AdvanceWallClock.
package streamstest

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/pkg/streams"
)

// Driver runs one topology for one test. Not safe for concurrent use. Errors from the
// topology fail the test through tb, except in the *Err variants, which return them.
type Driver struct {
	tb testing.TB
	r  *streams.LocalRunner
}

// Config sets the application id (default "streamstest", which prefixes internal topic
// names) and the initial wall-clock time (default 2024-01-01T00:00:00Z).
type Config struct {
	ApplicationID string
	WallClock     time.Time
}

// New builds a driver for t; it is closed when the test ends.
func New(tb testing.TB, t *streams.Topology, cfg Config) *Driver {
	tb.Helper()
	if cfg.ApplicationID == "" {
		cfg.ApplicationID = "streamstest"
	}
	if cfg.WallClock.IsZero() {
		cfg.WallClock = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	r, err := streams.NewLocalRunner(t, cfg.ApplicationID, cfg.WallClock)
	if err != nil {
		tb.Fatalf("streamstest: %v", err)
	}
	tb.Cleanup(r.Close)
	return &Driver{tb: tb, r: r}
}

// AdvanceWallClock moves the wall clock by d, firing due wall-clock punctuations.
func (d *Driver) AdvanceWallClock(dur time.Duration) {
	d.tb.Helper()
	if err := d.r.AdvanceWallClock(dur); err != nil {
		d.tb.Fatalf("streamstest: advance wall clock: %v", err)
	}
}

// Runner is the underlying streams.LocalRunner, for raw access.
func (d *Driver) Runner() *streams.LocalRunner { return d.r }

// KeyValueStore returns the typed store name; the test fails if it does not exist or has
// other types.
func KeyValueStore[K, V any](d *Driver, name string) streams.KeyValueStore[K, V] {
	d.tb.Helper()
	p, err := d.r.Store(name)
	if err != nil {
		d.tb.Fatalf("streamstest: %v", err)
	}
	s, err := streams.GetKeyValueStore[K, V](p, name)
	if err != nil {
		d.tb.Fatalf("streamstest: %v", err)
	}
	return s
}

// WindowStore returns the typed window store name; the test fails if it does not exist or
// has other types.
func WindowStore[K, V any](d *Driver, name string) streams.WindowStore[K, V] {
	d.tb.Helper()
	p, err := d.r.Store(name)
	if err != nil {
		d.tb.Fatalf("streamstest: %v", err)
	}
	s, err := streams.GetWindowStore[K, V](p, name)
	if err != nil {
		d.tb.Fatalf("streamstest: %v", err)
	}
	return s
}

// SessionStore returns the typed session store name; the test fails if it does not exist or
// has other types.
func SessionStore[K, V any](d *Driver, name string) streams.SessionStore[K, V] {
	d.tb.Helper()
	p, err := d.r.Store(name)
	if err != nil {
		d.tb.Fatalf("streamstest: %v", err)
	}
	s, err := streams.GetSessionStore[K, V](p, name)
	if err != nil {
		d.tb.Fatalf("streamstest: %v", err)
	}
	return s
}

// DroppedRecords counts records dropped by windowed operators for arriving after their
// windows closed.
func (d *Driver) DroppedRecords() int64 { return d.r.DroppedRecords() }

// InputTopic pipes typed records into one topic. Records piped without a timestamp get the
// topic's current time, which starts at the driver's wall clock and moves by Advance after
// each record.
type InputTopic[K, V any] struct {
	d       *Driver
	topic   string
	keys    streams.Serde[K]
	values  streams.Serde[V]
	now     time.Time
	Advance time.Duration
}

// Input returns an input topic.
func Input[K, V any](d *Driver, topic string, keys streams.Serde[K], values streams.Serde[V]) *InputTopic[K, V] {
	return &InputTopic[K, V]{d: d, topic: topic, keys: keys, values: values, now: d.r.Now()}
}

// Pipe sends key and value at the topic's current time.
func (in *InputTopic[K, V]) Pipe(k K, v V) {
	in.d.tb.Helper()
	in.PipeAt(k, v, in.now)
	in.now = in.now.Add(in.Advance)
}

// PipeAt sends key and value with timestamp ts.
func (in *InputTopic[K, V]) PipeAt(k K, v V, ts time.Time) {
	in.d.tb.Helper()
	if err := in.PipeErr(streams.Record[K, V]{Key: k, Value: v, Timestamp: ts}); err != nil {
		in.d.tb.Fatalf("streamstest: pipe to %s: %v", in.topic, err)
	}
}

// PipeTombstone sends a record with a null value (a deletion, for tables).
func (in *InputTopic[K, V]) PipeTombstone(k K, ts time.Time) {
	in.d.tb.Helper()
	kb, err := in.keys.Serialize(in.topic, k)
	if err == nil {
		err = in.d.r.Pipe(in.topic, kb, nil, ts, nil)
	}
	if err != nil {
		in.d.tb.Fatalf("streamstest: pipe tombstone to %s: %v", in.topic, err)
	}
}

// PipeErr sends r and returns the topology's error instead of failing the test.
func (in *InputTopic[K, V]) PipeErr(r streams.Record[K, V]) error {
	kb, err := in.keys.Serialize(in.topic, r.Key)
	if err != nil {
		return err
	}
	vb, err := in.values.Serialize(in.topic, r.Value)
	if err != nil {
		return err
	}
	if r.Timestamp.IsZero() {
		r.Timestamp = in.now
	}
	return in.d.r.Pipe(in.topic, kb, vb, r.Timestamp, r.Headers)
}

// PipeRawErr sends raw bytes (nil is Kafka's null) and returns the topology's error.
func (in *InputTopic[K, V]) PipeRawErr(key, value []byte, ts time.Time, headers []kgo.RecordHeader) error {
	return in.d.r.Pipe(in.topic, key, value, ts, headers)
}

// OutputTopic reads typed records the topology wrote to one topic, oldest first.
type OutputTopic[K, V any] struct {
	d       *Driver
	topic   string
	keys    streams.Serde[K]
	values  streams.Serde[V]
	pending []streams.RawRecord
}

// Output returns an output topic.
func Output[K, V any](d *Driver, topic string, keys streams.Serde[K], values streams.Serde[V]) *OutputTopic[K, V] {
	return &OutputTopic[K, V]{d: d, topic: topic, keys: keys, values: values}
}

// OutputRecord is a record read from an output topic; Tombstone is true for a null value.
type OutputRecord[K, V any] struct {
	streams.Record[K, V]
	Tombstone bool
}

func (out *OutputTopic[K, V]) fill() { out.pending = append(out.pending, out.d.r.Output(out.topic)...) }

// IsEmpty reports whether no unread record is waiting.
func (out *OutputTopic[K, V]) IsEmpty() bool { out.fill(); return len(out.pending) == 0 }

// ReadRecord removes and returns the oldest unread record; false if there is none.
func (out *OutputTopic[K, V]) ReadRecord() (OutputRecord[K, V], bool) {
	out.d.tb.Helper()
	out.fill()
	if len(out.pending) == 0 {
		return OutputRecord[K, V]{}, false
	}
	rr := out.pending[0]
	out.pending = out.pending[1:]
	k, err := out.keys.Deserialize(out.topic, rr.Key)
	if err != nil {
		out.d.tb.Fatalf("streamstest: read %s: key: %v", out.topic, err)
	}
	v, err := out.values.Deserialize(out.topic, rr.Value)
	if err != nil {
		out.d.tb.Fatalf("streamstest: read %s: value: %v", out.topic, err)
	}
	return OutputRecord[K, V]{Record: streams.Record[K, V]{Key: k, Value: v, Timestamp: rr.Timestamp, Headers: rr.Headers}, Tombstone: rr.Value == nil}, true
}

// ReadKeyValue removes and returns the oldest unread record as a KeyValue.
func (out *OutputTopic[K, V]) ReadKeyValue() (streams.KeyValue[K, V], bool) {
	out.d.tb.Helper()
	r, ok := out.ReadRecord()
	return streams.KV(r.Key, r.Value), ok
}

// ReadKeyValues removes and returns every unread record as KeyValues.
func (out *OutputTopic[K, V]) ReadKeyValues() []streams.KeyValue[K, V] {
	out.d.tb.Helper()
	var all []streams.KeyValue[K, V]
	for {
		kv, ok := out.ReadKeyValue()
		if !ok {
			return all
		}
		all = append(all, kv)
	}
}

// ReadToMap reads every unread record of out and keeps the last value per key, dropping keys
// whose last record is a tombstone.
func ReadToMap[K comparable, V any](out *OutputTopic[K, V]) map[K]V {
	out.d.tb.Helper()
	m := map[K]V{}
	for {
		r, ok := out.ReadRecord()
		if !ok {
			return m
		}
		if r.Tombstone {
			delete(m, r.Key)
		} else {
			m[r.Key] = r.Value
		}
	}
}
