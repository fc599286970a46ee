package streams

import (
	"reflect"
	"time"
)

// Stream is a typed record stream of the DSL: each record an independent event. A Stream is a
// small value naming a node of its Topology; operators add nodes and return new Streams.
// Operators that keep the key and value types are methods; those that change a type are
// functions (Go methods cannot have type parameters): Map, MapValues, FlatMap, FlatMapValues,
// SelectKey, GroupBy, Process.
//
// Serdes travel with a stream while its types stay the same; after a type change they are
// known only if the new type equals the old one, otherwise the operator that needs them
// (To, GroupBy, Repartition) takes them explicitly. Build a topology from one goroutine.
type Stream[K, V any] struct {
	t          *Topology
	node       string
	keys       any // Serde[K] or nil
	values     any // Serde[V] or nil
	keyChanged bool
}

// KeyValue is a key and value pair, as FlatMap returns them.
type KeyValue[K, V any] struct {
	Key   K
	Value V
}

// KV builds a KeyValue.
func KV[K, V any](k K, v V) KeyValue[K, V] { return KeyValue[K, V]{k, v} }

// Consumed configures a source: serdes and an optional event-time extractor (default: the
// record's timestamp). Records whose extracted time is negative are skipped.
type Consumed[K, V any] struct {
	Keys      Serde[K]
	Values    Serde[V]
	Timestamp func(key K, value V, recordTime time.Time) time.Time
}

// From reads topics as a Stream with the given serdes.
func From[K, V any](t *Topology, topic string, keys Serde[K], values Serde[V]) Stream[K, V] {
	return FromTopics(t, Consumed[K, V]{Keys: keys, Values: values}, topic)
}

// FromTopics reads one or more topics as one Stream.
func FromTopics[K, V any](t *Topology, c Consumed[K, V], topics ...string) Stream[K, V] {
	if c.Keys == nil || c.Values == nil || len(topics) == 0 {
		t.fail("stream source: serdes and at least one topic are required")
	}
	name := t.nextName("KSTREAM-SOURCE")
	t.addNode(&node{name: name, kind: kindSource, topics: topics, decode: decoder(c.Keys, c.Values, c.Timestamp),
		transient: concreteKV[K, V]()})
	return Stream[K, V]{t: t, node: name, keys: c.Keys, values: c.Values}
}

func serdeOf[T any](x any) Serde[T] {
	s, _ := x.(Serde[T])
	return s
}

// fnProc is a DSL node whose behaviour is one function of the record.
type fnProc struct {
	ctx *nodeCtx
	f   func(c *nodeCtx, r rec) error
}

func (p *fnProc) init(c *nodeCtx) error { p.ctx = c; return nil }
func (p *fnProc) process(r rec) error   { return p.f(p.ctx, r) }
func (p *fnProc) close()                {}

func (t *Topology) addFn(prefix string, parents []string, f func(c *nodeCtx, r rec) error) string {
	name := t.nextName(prefix)
	t.addNode(&node{name: name, kind: kindProcessor, parents: parents, newProc: func() procNode { return &fnProc{f: f} }})
	return name
}

// addStreamFn adds a node as addFn does, marked transient when its user code sees only
// concrete types (the caller says so): stream operators keep no record.
func (t *Topology) addStreamFn(prefix string, parents []string, transient bool, f func(c *nodeCtx, r rec) error) string {
	name := t.addFn(prefix, parents, f)
	if n := t.byName[name]; n != nil {
		n.transient = transient
	}
	return name
}

// concrete reports whether T is not an interface type: a value of T taken out of a box is
// a copy, never the box itself.
func concrete[T any]() bool { return reflect.TypeFor[T]().Kind() != reflect.Interface }

// concreteKV is concrete for a key and a value type.
func concreteKV[K, V any]() bool { return concrete[K]() && concrete[V]() }

func (s Stream[K, V]) with(node string) Stream[K, V] { s.node = node; return s }

// Filter keeps the records for which pred is true.
func (s Stream[K, V]) Filter(pred func(K, V) bool) Stream[K, V] {
	return s.with(s.t.addStreamFn("KSTREAM-FILTER", []string{s.node}, concreteKV[K, V](), func(c *nodeCtx, r rec) error {
		if pred(as[K](r.key), as[V](r.value)) {
			return c.forward(r)
		}
		return nil
	}))
}

// FilterNot drops the records for which pred is true.
func (s Stream[K, V]) FilterNot(pred func(K, V) bool) Stream[K, V] {
	return s.Filter(func(k K, v V) bool { return !pred(k, v) })
}

// Peek calls fn for each record and passes it on unchanged.
func (s Stream[K, V]) Peek(fn func(K, V)) Stream[K, V] {
	return s.with(s.t.addStreamFn("KSTREAM-PEEK", []string{s.node}, concreteKV[K, V](), func(c *nodeCtx, r rec) error {
		fn(as[K](r.key), as[V](r.value))
		return c.forward(r)
	}))
}

// Foreach calls fn for each record; it ends the stream.
func (s Stream[K, V]) Foreach(fn func(K, V)) {
	s.t.addStreamFn("KSTREAM-FOREACH", []string{s.node}, concreteKV[K, V](), func(_ *nodeCtx, r rec) error {
		fn(as[K](r.key), as[V](r.value))
		return nil
	})
}

// Merge interleaves the records of s and other (same topology) into one stream.
func (s Stream[K, V]) Merge(other Stream[K, V]) Stream[K, V] {
	if other.t != s.t {
		s.t.fail("merge: streams of different topologies")
	}
	out := s.with(s.t.addStreamFn("KSTREAM-MERGE", []string{s.node, other.node}, true, func(c *nodeCtx, r rec) error { return c.forward(r) }))
	out.keyChanged = s.keyChanged || other.keyChanged
	return out
}

// Split sends each record to the first branch whose predicate is true (records matching
// none are dropped) and returns one stream per predicate, as Kafka's split().branch().
func (s Stream[K, V]) Split(preds ...func(K, V) bool) []Stream[K, V] {
	var children []string
	name := s.t.addStreamFn("KSTREAM-BRANCH", []string{s.node}, concreteKV[K, V](), func(c *nodeCtx, r rec) error {
		k, v := as[K](r.key), as[V](r.value)
		for i, p := range preds {
			if p(k, v) {
				return c.forwardTo(r, children[i])
			}
		}
		return nil
	})
	out := make([]Stream[K, V], len(preds))
	for i := range preds {
		children = append(children, s.t.addStreamFn("KSTREAM-BRANCHCHILD", []string{name}, true, func(c *nodeCtx, r rec) error { return c.forward(r) }))
		out[i] = s.with(children[i])
	}
	return out
}

// Produced configures a sink: serdes (default: the stream's) and an optional partitioner
// choosing a partition in [0, n) (default: murmur2 of the serialized key, as Kafka's).
type Produced[K, V any] struct {
	Keys        Serde[K]
	Values      Serde[V]
	Partitioner func(topic string, key K, value V, n int32) int32
}

// To writes the stream to topic with the stream's serdes.
func (s Stream[K, V]) To(topic string) { s.ToWith(topic, Produced[K, V]{}) }

// ToWith writes the stream to topic as p says.
func (s Stream[K, V]) ToWith(topic string, p Produced[K, V]) {
	s.sink(topic, false, p)
}

func (s Stream[K, V]) sink(topic string, internal bool, p Produced[K, V]) {
	if p.Keys == nil {
		p.Keys = serdeOf[K](s.keys)
	}
	if p.Values == nil {
		p.Values = serdeOf[V](s.values)
	}
	if p.Keys == nil || p.Values == nil {
		s.t.fail("sink to %q: key and value serdes are unknown after a type change; pass them", topic)
		return
	}
	n := &node{name: s.t.nextName("KSTREAM-SINK"), kind: kindSink, topic: topic, internal: internal,
		parents: []string{s.node}, encode: encoder(p.Keys, p.Values), transient: concreteKV[K, V]()}
	if p.Partitioner != nil {
		n.partition = func(topic string, k, v any, np int32) int32 { return p.Partitioner(topic, as[K](k), as[V](v), np) }
	}
	s.t.addNode(n)
}

// Repartition writes the stream through the internal topic "<application.id>-<name>-repartition"
// (partitioned by key) and reads it back, so that records of one key meet in one task.
func (s Stream[K, V]) Repartition(name string, keys Serde[K], values Serde[V]) Stream[K, V] {
	if keys == nil {
		keys = serdeOf[K](s.keys)
	}
	if values == nil {
		values = serdeOf[V](s.values)
	}
	if keys == nil || values == nil {
		s.t.fail("repartition %q: serdes are unknown after a type change; pass them", name)
		return s
	}
	if name == "" {
		name = s.t.nextName("KSTREAM-REPARTITION")
	}
	topic := name + "-repartition"
	s.sink(topic, true, Produced[K, V]{Keys: keys, Values: values})
	src := s.t.nextName("KSTREAM-SOURCE")
	s.t.addNode(&node{name: src, kind: kindSource, topics: []string{topic}, internal: true, decode: decoder(keys, values, nil),
		transient: concreteKV[K, V]()})
	return Stream[K, V]{t: s.t, node: src, keys: keys, values: values}
}

// Map turns each record into a new key and value; the stream is repartitioned before a
// later grouping.
func Map[K, V, KR, VR any](s Stream[K, V], fn func(K, V) (KR, VR)) Stream[KR, VR] {
	boxK, boxV := boxer[KR](), boxer[VR]()
	name := s.t.addStreamFn("KSTREAM-MAP", []string{s.node}, concreteKV[K, V]() && concreteKV[KR, VR](), func(c *nodeCtx, r rec) error {
		k, v := fn(as[K](r.key), as[V](r.value))
		r.key, r.value = boxK(&c.t.slab, k), boxV(&c.t.slab, v)
		return c.forward(r)
	})
	return Stream[KR, VR]{t: s.t, node: name, keys: serdeOf[KR](s.keys), values: serdeOf[VR](s.values), keyChanged: true}
}

// MapValues turns each value into a new one, keeping the key (no repartition needed).
func MapValues[K, V, VR any](s Stream[K, V], fn func(K, V) VR) Stream[K, VR] {
	box := boxer[VR]()
	name := s.t.addStreamFn("KSTREAM-MAPVALUES", []string{s.node}, concreteKV[K, V]() && concrete[VR](), func(c *nodeCtx, r rec) error {
		r.value = box(&c.t.slab, fn(as[K](r.key), as[V](r.value)))
		return c.forward(r)
	})
	return Stream[K, VR]{t: s.t, node: name, keys: s.keys, values: serdeOf[VR](s.values), keyChanged: s.keyChanged}
}

// FlatMap turns each record into zero or more records.
func FlatMap[K, V, KR, VR any](s Stream[K, V], fn func(K, V) []KeyValue[KR, VR]) Stream[KR, VR] {
	boxK, boxV := boxer[KR](), boxer[VR]()
	name := s.t.addStreamFn("KSTREAM-FLATMAP", []string{s.node}, concreteKV[K, V]() && concreteKV[KR, VR](), func(c *nodeCtx, r rec) error {
		for _, kv := range fn(as[K](r.key), as[V](r.value)) {
			r.key, r.value = boxK(&c.t.slab, kv.Key), boxV(&c.t.slab, kv.Value)
			if err := c.forward(r); err != nil {
				return err
			}
		}
		return nil
	})
	return Stream[KR, VR]{t: s.t, node: name, keys: serdeOf[KR](s.keys), values: serdeOf[VR](s.values), keyChanged: true}
}

// FlatMapValues turns each value into zero or more values, keeping the key.
func FlatMapValues[K, V, VR any](s Stream[K, V], fn func(K, V) []VR) Stream[K, VR] {
	box := boxer[VR]()
	name := s.t.addStreamFn("KSTREAM-FLATMAPVALUES", []string{s.node}, concreteKV[K, V]() && concrete[VR](), func(c *nodeCtx, r rec) error {
		for _, v := range fn(as[K](r.key), as[V](r.value)) {
			r.value = box(&c.t.slab, v)
			if err := c.forward(r); err != nil {
				return err
			}
		}
		return nil
	})
	return Stream[K, VR]{t: s.t, node: name, keys: s.keys, values: serdeOf[VR](s.values), keyChanged: s.keyChanged}
}

// SelectKey gives each record a new key computed from it.
func SelectKey[K, V, KR any](s Stream[K, V], fn func(K, V) KR) Stream[KR, V] {
	box := boxer[KR]()
	name := s.t.addStreamFn("KSTREAM-KEY-SELECT", []string{s.node}, concreteKV[K, V]() && concrete[KR](), func(c *nodeCtx, r rec) error {
		r.key = box(&c.t.slab, fn(as[K](r.key), as[V](r.value)))
		return c.forward(r)
	})
	return Stream[KR, V]{t: s.t, node: name, keys: serdeOf[KR](s.keys), values: s.values, keyChanged: true}
}

// Process attaches a Processor API node to the stream (DSL and processors mix); stores
// names stores (added with AddKeyValueStore) the processor may use. The result is treated as
// key-changing: a later grouping repartitions.
func Process[K, V, KO, VO any](s Stream[K, V], supplier func() Processor[K, V, KO, VO], stores ...string) Stream[KO, VO] {
	name := s.t.nextName("KSTREAM-PROCESSOR")
	AddProcessor(s.t, name, supplier, s.node)
	for _, st := range stores {
		s.t.ConnectStore(name, st)
	}
	return Stream[KO, VO]{t: s.t, node: name, keys: serdeOf[KO](s.keys), values: serdeOf[VO](s.values), keyChanged: true}
}

// Name is the name of the node the stream ends at, for AddProcessor, AddSink or
// ConnectStore on the same topology.
func (s Stream[K, V]) Name() string { return s.node }
