package streams

import (
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Record is a typed record as processors see it. A zero Timestamp on a forwarded record
// means "the timestamp of the record (or punctuation) being processed".
type Record[K, V any] struct {
	Key       K
	Value     V
	Timestamp time.Time
	Headers   []kgo.RecordHeader
}

// RecordMetadata says where the record being processed was read from.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    int64
}

// Processor is a node of the Processor API. One instance is made per task (from the supplier
// given to AddProcessor or Process); its methods are called only from that task's goroutine:
// Init once, after the task's stores are restored; Process once per record; Close once when
// the task is closed (shutdown, or the partition moving to another instance). An error from
// Init or Process goes to the application's error handler.
type Processor[KIn, VIn, KOut, VOut any] interface {
	Init(ctx *ProcessorContext[KOut, VOut]) error
	Process(r Record[KIn, VIn]) error
	Close()
}

// ProcessorFunc adapts a function to a Processor with nothing to initialize or close; the
// function receives the context with each record.
type ProcessorFunc[KIn, VIn, KOut, VOut any] func(ctx *ProcessorContext[KOut, VOut], r Record[KIn, VIn]) error

// Processor returns a supplier of processors that call f.
func (f ProcessorFunc[KIn, VIn, KOut, VOut]) Processor() func() Processor[KIn, VIn, KOut, VOut] {
	return func() Processor[KIn, VIn, KOut, VOut] { return &funcProcessor[KIn, VIn, KOut, VOut]{f: f} }
}

type funcProcessor[KIn, VIn, KOut, VOut any] struct {
	f   ProcessorFunc[KIn, VIn, KOut, VOut]
	ctx *ProcessorContext[KOut, VOut]
}

func (p *funcProcessor[KIn, VIn, KOut, VOut]) Init(ctx *ProcessorContext[KOut, VOut]) error {
	p.ctx = ctx
	return nil
}
func (p *funcProcessor[KIn, VIn, KOut, VOut]) Process(r Record[KIn, VIn]) error { return p.f(p.ctx, r) }
func (p *funcProcessor[KIn, VIn, KOut, VOut]) Close()                           {}

// ProcessorContext is a processor's handle on its task: forward records, schedule
// punctuations, reach connected stores. Valid only on the task's goroutine, from Init until
// Close returns.
type ProcessorContext[KOut, VOut any] struct{ c *nodeCtx }

// Forward sends r to every child node.
func (c *ProcessorContext[KOut, VOut]) Forward(r Record[KOut, VOut]) error {
	return c.c.forward(c.toRec(r))
}

// ForwardTo sends r to the named child only.
func (c *ProcessorContext[KOut, VOut]) ForwardTo(child string, r Record[KOut, VOut]) error {
	return c.c.forwardTo(c.toRec(r), child)
}

func (c *ProcessorContext[KOut, VOut]) toRec(r Record[KOut, VOut]) rec {
	out := rec{key: r.Key, value: r.Value, headers: r.Headers}
	if r.Timestamp.IsZero() {
		out.ts = c.c.t.nowMs()
	} else {
		out.ts = r.Timestamp.UnixMilli()
	}
	return out
}

// Schedule calls fn every interval of the given clock, with the time that triggered it.
// Stream-time punctuations need records to advance; wall-clock ones run between records.
func (c *ProcessorContext[KOut, VOut]) Schedule(interval time.Duration, typ PunctuationType, fn func(now time.Time) error) *Schedule {
	return c.c.schedule(interval, typ, fn)
}

// TaskID is the id of the task running this processor.
func (c *ProcessorContext[KOut, VOut]) TaskID() TaskID { return c.c.t.id }

// ApplicationID is the application id (consumer group and internal topic prefix).
func (c *ProcessorContext[KOut, VOut]) ApplicationID() string { return c.c.t.app }

// StreamTime is the largest record timestamp the task has seen (zero time before any).
func (c *ProcessorContext[KOut, VOut]) StreamTime() time.Time {
	if c.c.t.streamTime == math.MinInt64 {
		return time.Time{}
	}
	return time.UnixMilli(c.c.t.streamTime)
}

// RecordMetadata describes the record being processed; false inside a punctuation.
func (c *ProcessorContext[KOut, VOut]) RecordMetadata() (RecordMetadata, bool) {
	t := c.c.t
	if !t.inRec {
		return RecordMetadata{}, false
	}
	cur := &t.cur
	return RecordMetadata{Topic: cur.topic, Partition: cur.partition, Offset: cur.offset}, true
}

func (c *ProcessorContext[KOut, VOut]) rawStore(name string) (*storeInst, error) {
	return c.c.rawStore(name)
}

// userProc runs a typed Processor as a node.
type userProc[KIn, VIn, KOut, VOut any] struct {
	p Processor[KIn, VIn, KOut, VOut]
}

func (u *userProc[KIn, VIn, KOut, VOut]) init(c *nodeCtx) error {
	return u.p.Init(&ProcessorContext[KOut, VOut]{c: c})
}

func (u *userProc[KIn, VIn, KOut, VOut]) process(r rec) error { return u.p.Process(typed[KIn, VIn](r)) }
func (u *userProc[KIn, VIn, KOut, VOut]) close()              { u.p.Close() }

// as converts an untyped key or value; Kafka's null becomes the zero value.
func as[T any](x any) T {
	v, _ := x.(T)
	return v
}

func typed[K, V any](r rec) Record[K, V] {
	return Record[K, V]{Key: as[K](r.key), Value: as[V](r.value), Timestamp: time.UnixMilli(r.ts), Headers: r.headers}
}

// AddSource adds a source node reading topics with the given serdes.
func AddSource[K, V any](t *Topology, name string, keys Serde[K], values Serde[V], topics ...string) {
	if keys == nil || values == nil || len(topics) == 0 {
		t.fail("source %q: serdes and at least one topic are required", name)
		return
	}
	t.addNode(&node{name: name, kind: kindSource, topics: topics, decode: decoder(keys, values, nil),
		transient: concreteKV[K, V]()})
}

// decoder deserializes key and value; a nil byte slice stays nil (Kafka's null), and the
// optional extractor picks the event time. Byte-slice keys and values are boxed through the
// task's slab.
func decoder[K, V any](keys Serde[K], values Serde[V], ts func(K, V, time.Time) time.Time) func(*boxSlab, string, []byte, []byte, int64) (any, any, int64, error) {
	boxK, boxV := boxer[K](), boxer[V]()
	_, rawK := any(keys).(bytesSerde) // Bytes() returns its input: box it without the calls
	_, rawV := any(values).(bytesSerde)
	return func(slab *boxSlab, topic string, kb, vb []byte, recTs int64) (any, any, int64, error) {
		var key, val any
		switch {
		case kb == nil:
		case rawK:
			key = slab.box(kb)
		default:
			k, err := keys.Deserialize(topic, kb)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("key: %w", err)
			}
			key = boxK(slab, k)
		}
		switch {
		case vb == nil:
		case rawV:
			val = slab.box(vb)
		default:
			v, err := values.Deserialize(topic, vb)
			if err != nil {
				return nil, nil, 0, fmt.Errorf("value: %w", err)
			}
			val = boxV(slab, v)
		}
		if ts != nil {
			recTs = ts(as[K](key), as[V](val), time.UnixMilli(recTs)).UnixMilli()
		}
		return key, val, recTs, nil
	}
}

// AddProcessor adds a Processor API node under parents; supplier makes one per task.
func AddProcessor[KIn, VIn, KOut, VOut any](t *Topology, name string, supplier func() Processor[KIn, VIn, KOut, VOut], parents ...string) {
	if supplier == nil || len(parents) == 0 {
		t.fail("processor %q: a supplier and at least one parent are required", name)
		return
	}
	t.addNode(&node{name: name, kind: kindProcessor, parents: parents,
		newProc:   func() procNode { return &userProc[KIn, VIn, KOut, VOut]{p: supplier()} },
		transient: concreteKV[KIn, VIn]() && concreteKV[KOut, VOut]()})
}

// AddSink adds a sink node writing its parents' records to topic with the given serdes and
// the producer's default partitioner.
func AddSink[K, V any](t *Topology, name, topic string, keys Serde[K], values Serde[V], parents ...string) {
	if keys == nil || values == nil || len(parents) == 0 {
		t.fail("sink %q: serdes and at least one parent are required", name)
		return
	}
	t.addNode(&node{name: name, kind: kindSink, topic: topic, parents: parents, encode: encoder(keys, values),
		transient: concreteKV[K, V]()})
}

// encoder serializes key and value; nil (Kafka's null) stays nil.
func encoder[K, V any](keys Serde[K], values Serde[V]) func(string, any, any) ([]byte, []byte, error) {
	_, rawK := any(keys).(bytesSerde) // Bytes() returns its input: unbox it without the calls
	_, rawV := any(values).(bytesSerde)
	return func(topic string, k, v any) ([]byte, []byte, error) {
		var kb, vb []byte
		var err error
		switch {
		case k == nil:
		case rawK:
			kb, _ = k.([]byte)
		default:
			if kb, err = keys.Serialize(topic, as[K](k)); err != nil {
				return nil, nil, fmt.Errorf("key: %w", err)
			}
		}
		switch {
		case v == nil:
		case rawV:
			vb, _ = v.([]byte)
		default:
			if vb, err = values.Serialize(topic, as[V](v)); err != nil {
				return nil, nil, fmt.Errorf("value: %w", err)
			}
		}
		return kb, vb, nil
	}
}
