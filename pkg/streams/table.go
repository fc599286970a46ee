package streams

import "fmt"

// Grouped is a stream grouped by key, ready to aggregate into a Table. The aggregation runs
// in the task that owns the key's partition; a stream whose key changed upstream is first
// repartitioned through "<application.id>-<store>-repartition".
type Grouped[K, V any] struct {
	s      Stream[K, V]
	keys   Serde[K]
	values Serde[V]
}

// GroupByKey groups by the current key, with the stream's serdes.
func (s Stream[K, V]) GroupByKey() Grouped[K, V] {
	return Grouped[K, V]{s: s, keys: serdeOf[K](s.keys), values: serdeOf[V](s.values)}
}

// GroupByKeyWith groups by the current key with explicit serdes (needed after a type change).
func (s Stream[K, V]) GroupByKeyWith(keys Serde[K], values Serde[V]) Grouped[K, V] {
	return Grouped[K, V]{s: s, keys: keys, values: values}
}

// GroupBy groups by a key computed from each record; values keep the stream's serde unless
// values is non-nil.
func GroupBy[K, V, KR any](s Stream[K, V], fn func(K, V) KR, keys Serde[KR], values Serde[V]) Grouped[KR, V] {
	if values == nil {
		values = serdeOf[V](s.values)
	}
	return Grouped[KR, V]{s: SelectKey(s, fn), keys: keys, values: values}
}

// Table is a changelog stream read as the latest value per key, materialized in a key-value
// store. Updates flow downstream as records carrying the new value; a deletion carries a nil
// (Kafka's null) value. Like Stream, it is a small value naming a node.
type Table[K, V any] struct {
	t      *Topology
	node   string
	store  string
	keys   Serde[K]
	values Serde[V]
	// windowed tables (keys are Windowed) know their grace period, for suppression.
	windowed bool
	grace    int64
	// storeNode is the node whose output the store holds; a table derived further (Filter,
	// TableMapValues) is materialized again before a join looks rows up.
	storeNode string
}

// StoreName is the name of the store holding the table (queryable by the test driver and by
// processors connected to it).
func (tb Table[K, V]) StoreName() string { return tb.store }

// Name is the name of the node the table ends at.
func (tb Table[K, V]) Name() string { return tb.node }

// ToStream turns the table's updates into a stream.
func (tb Table[K, V]) ToStream() Stream[K, V] {
	name := tb.t.addStreamFn("KTABLE-TOSTREAM", []string{tb.node}, true, func(c *nodeCtx, r rec) error { return c.forward(r) })
	return Stream[K, V]{t: tb.t, node: name, keys: tb.keys, values: tb.values}
}

// Filter keeps rows for which pred is true; a row that fails it is forwarded as a deletion,
// as Kafka's KTable.filter does, so downstream state forgets it.
func (tb Table[K, V]) Filter(pred func(K, V) bool) Table[K, V] {
	tb.node = tb.t.addFn("KTABLE-FILTER", []string{tb.node}, func(c *nodeCtx, r rec) error {
		if r.value != nil && !pred(as[K](r.key), as[V](r.value)) {
			r.value = nil
		}
		return c.forward(r)
	})
	return tb
}

// TableMapValues maps each row's value; deletions pass through as deletions.
func TableMapValues[K, V, VR any](tb Table[K, V], fn func(K, V) VR, values Serde[VR]) Table[K, VR] {
	name := tb.t.addFn("KTABLE-MAPVALUES", []string{tb.node}, func(c *nodeCtx, r rec) error {
		if r.value != nil {
			r.value = fn(as[K](r.key), as[V](r.value))
		}
		return c.forward(r)
	})
	return Table[K, VR]{t: tb.t, node: name, store: tb.store, keys: tb.keys, values: values, windowed: tb.windowed, grace: tb.grace, storeNode: tb.storeNode}
}

// TableFrom reads topic as a Table materialized in store (generated name if empty), logged to
// its changelog. A record with a nil value deletes its key.
func TableFrom[K, V any](t *Topology, topic, store string, keys Serde[K], values Serde[V]) Table[K, V] {
	src := t.nextName("KSTREAM-SOURCE")
	t.addNode(&node{name: src, kind: kindSource, topics: []string{topic}, decode: decoder(keys, values, nil)})
	if store == "" {
		store = t.nextName(topic + "-STATE-STORE")
	}
	AddKeyValueStore(t, StoreSpec[K, V]{Name: store, Keys: keys, Values: values, Logging: true})
	t.cacheStore(store)
	name := t.nextName("KTABLE-SOURCE")
	t.addNode(&node{name: name, kind: kindProcessor, parents: []string{src}, stores: []string{store},
		newProc: func() procNode { return &tableSourceProc[K, V]{store: store} }})
	return Table[K, V]{t: t, node: name, store: store, keys: keys, values: values, storeNode: name}
}

type tableSourceProc[K, V any] struct {
	ctx    *nodeCtx
	store  string
	kv     KeyValueStore[K, V]
	cached bool // the store's cache forwards the updates
}

func (p *tableSourceProc[K, V]) init(c *nodeCtx) (err error) {
	p.ctx = c
	if p.kv, err = GetKeyValueStore[K, V](c, p.store); err != nil {
		return err
	}
	p.cached = p.kv.s.onFlush(c, p.kv.decode)
	return nil
}

func (p *tableSourceProc[K, V]) process(r rec) error {
	if r.key == nil {
		return nil // a table row needs a key; Kafka drops these too
	}
	k := as[K](r.key)
	var err error
	if r.value == nil {
		err = p.kv.Delete(k)
	} else {
		err = p.kv.Put(k, as[V](r.value))
	}
	if err != nil || p.cached {
		return err
	}
	return p.ctx.forward(r)
}

func (p *tableSourceProc[K, V]) close() {}

// prepare returns the stream to aggregate: the grouped stream itself, or, after a key change,
// the stream read back from the repartition topic named after the store.
func (g Grouped[K, V]) prepare(store string) (Stream[K, V], bool) {
	if g.keys == nil || g.values == nil {
		g.s.t.fail("grouping into %q: key and value serdes are unknown after a type change; use GroupByKeyWith or GroupBy with serdes", store)
		return g.s, false
	}
	if !g.s.keyChanged {
		return g.s, true
	}
	// Records without a key cannot be routed by key; Kafka drops them before repartitioning.
	filtered := g.s.with(g.s.t.addFn("KSTREAM-FILTER", []string{g.s.node}, func(c *nodeCtx, r rec) error {
		if r.key == nil {
			return nil
		}
		return c.forward(r)
	}))
	return filtered.Repartition(store, g.keys, g.values), true
}

func (g Grouped[K, V]) storeName(store string) string {
	if store == "" {
		return g.s.t.nextName("KSTREAM-AGGREGATE-STATE-STORE")
	}
	return store
}

// Aggregate folds each key's values into an A, starting from init(), in the store (generated
// name if empty), and returns the running aggregate as a Table. Records with a nil key or
// value are skipped, as Kafka does.
func Aggregate[K, V, A any](g Grouped[K, V], init func() A, agg func(K, V, A) A, store string, aggSerde Serde[A]) Table[K, A] {
	store = g.storeName(store)
	return aggregate(g, store, aggSerde, "KSTREAM-AGGREGATE", func(k K, v V, old A, found bool) A {
		if !found {
			old = init()
		}
		return agg(k, v, old)
	})
}

// Count counts records per key into the store (generated name if empty).
func (g Grouped[K, V]) Count(store string) Table[K, int64] {
	store = g.storeName(store)
	return aggregate(g, store, Int64(), "KSTREAM-AGGREGATE", func(_ K, _ V, old int64, _ bool) int64 { return old + 1 })
}

// Reduce combines each key's values with fn (the first value is the initial aggregate).
func (g Grouped[K, V]) Reduce(fn func(agg, v V) V, store string) Table[K, V] {
	store = g.storeName(store)
	return aggregate(g, store, g.values, "KSTREAM-REDUCE", func(_ K, v V, old V, found bool) V {
		if !found {
			return v
		}
		return fn(old, v)
	})
}

func aggregate[K, V, A any](g Grouped[K, V], store string, aggSerde Serde[A], prefix string, step func(K, V, A, bool) A) Table[K, A] {
	t := g.s.t
	s, ok := g.prepare(store)
	if !ok || aggSerde == nil {
		if aggSerde == nil {
			t.fail("aggregate into %q: aggregate serde is required", store)
		}
		return Table[K, A]{t: t, node: s.node, store: store}
	}
	AddKeyValueStore(t, StoreSpec[K, A]{Name: store, Keys: g.keys, Values: aggSerde, Logging: true})
	t.cacheStore(store)
	name := t.nextName(prefix)
	t.addNode(&node{name: name, kind: kindProcessor, parents: []string{s.node}, stores: []string{store},
		newProc: func() procNode { return &aggProc[K, V, A]{store: store, step: step} }})
	return Table[K, A]{t: t, node: name, store: store, keys: g.keys, values: aggSerde, storeNode: name}
}

type aggProc[K, V, A any] struct {
	ctx    *nodeCtx
	store  string
	kv     KeyValueStore[K, A]
	step   func(K, V, A, bool) A
	cached bool // the store's cache forwards the updates
}

func (p *aggProc[K, V, A]) init(c *nodeCtx) (err error) {
	p.ctx = c
	p.kv, err = GetKeyValueStore[K, A](c, p.store)
	if err != nil {
		return fmt.Errorf("aggregate: %w", err)
	}
	p.cached = p.kv.s.onFlush(c, p.kv.decode)
	return nil
}

func (p *aggProc[K, V, A]) process(r rec) error {
	if r.key == nil || r.value == nil {
		return nil
	}
	k := as[K](r.key)
	old, found, err := p.kv.Get(k)
	if err != nil {
		return err
	}
	next := p.step(k, as[V](r.value), old, found)
	if err := p.kv.Put(k, next); err != nil || p.cached {
		return err
	}
	r.value = next
	return p.ctx.forward(r)
}

func (p *aggProc[K, V, A]) close() {}
