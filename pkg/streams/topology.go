package streams

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Topology is a graph of sources (topics read), processors, sinks (topics written) and the
// state stores processors use. The DSL (From, Stream, Table …) and the Processor API
// (AddSource, AddProcessor, AddSink, AddKeyValueStore) both add to it, and they mix freely.
//
// Invariants: node and store names are unique; a node's parents are added before it; a
// topology is only built from one goroutine and is read-only once handed to New or to a
// test driver (building more afterwards is a bug). Internal topics (repartition, changelog)
// are named here without the application id, which the runtime prefixes
// ("<application.id>-<name>").
type Topology struct {
	nodes   []*node
	byName  map[string]*node
	stores  map[string]*storeSpec
	storeOr []string
	globals []*globalSpec
	counter int
	err     error // first build error; reported by Validate, New and the test driver
}

// NewTopology returns an empty topology.
func NewTopology() *Topology {
	return &Topology{byName: map[string]*node{}, stores: map[string]*storeSpec{}}
}

type nodeKind int

const (
	kindSource nodeKind = iota
	kindProcessor
	kindSink
)

// rec is a record as it flows between nodes: key and value already deserialized (nil is
// Kafka's null), timestamp in milliseconds. Where the record being processed was read from
// is the task's (recCtx), not each rec's: recs are copied at every node, so they stay small.
type rec struct {
	key, value any
	ts         int64
	headers    []kgo.RecordHeader
}

// procNode is one node instance inside one task.
type procNode interface {
	init(ctx *nodeCtx) error
	process(r rec) error
	close()
}

type node struct {
	name     string
	kind     nodeKind
	parents  []string
	children []string
	stores   []string
	globals  []string // global stores it reads; they belong to no sub-topology

	// source: topics read and how bytes become a rec.
	topics   []string
	internal bool // topics/topic are internal (prefixed by application id at runtime)
	decode   func(slab *boxSlab, topic string, k, v []byte, ts int64) (any, any, int64, error)

	// processor
	newProc func() procNode

	// transient: the node keeps no record, key or value past its process call, and hands keys
	// and values to user code (functions, serdes, processors) only as concrete types, never
	// as an interface that could be kept. A task made only of transient nodes reuses its
	// boxes (boxSlab) from one record to the next.
	transient bool

	// sink
	topic     string
	encode    func(topic string, k, v any) ([]byte, []byte, error)
	partition func(topic string, k, v any, n int32) int32 // nil: the client's default (murmur2 on the key)
}

// nextName returns Kafka-style generated names such as KSTREAM-FILTER-0000000003.
func (t *Topology) nextName(prefix string) string {
	n := fmt.Sprintf("%s-%010d", prefix, t.counter)
	t.counter++
	return n
}

func (t *Topology) fail(format string, args ...any) {
	if t.err == nil {
		t.err = fmt.Errorf("%w: "+format, append([]any{ErrTopology}, args...)...)
	}
}

// Validate reports the first error made while building the topology, if any.
func (t *Topology) Validate() error { return t.err }

func (t *Topology) addNode(n *node) {
	if _, dup := t.byName[n.name]; dup {
		t.fail("duplicate node name %q", n.name)
		return
	}
	for _, p := range n.parents {
		pn, ok := t.byName[p]
		if !ok {
			t.fail("node %q: unknown parent %q", n.name, p)
			return
		}
		if pn.kind == kindSink {
			t.fail("node %q: parent %q is a sink", n.name, p)
			return
		}
		pn.children = append(pn.children, n.name)
	}
	for _, s := range n.stores {
		if _, ok := t.stores[s]; !ok {
			t.fail("node %q: unknown store %q", n.name, s)
			return
		}
	}
	t.nodes = append(t.nodes, n)
	t.byName[n.name] = n
}

// ConnectStore gives processor proc access to an already added store.
func (t *Topology) ConnectStore(proc, store string) {
	n, ok := t.byName[proc]
	if !ok || n.kind != kindProcessor {
		t.fail("connect store %q: %q is not a processor", store, proc)
		return
	}
	spec, ok := t.stores[store]
	if !ok {
		t.fail("connect store: unknown store %q", store)
		return
	}
	if spec.global {
		if !slices.Contains(n.globals, store) {
			n.globals = append(n.globals, store)
		}
		return
	}
	if !slices.Contains(n.stores, store) {
		n.stores = append(n.stores, store)
	}
}

// sourceTopics lists every topic read (internal ones unprefixed), in first-seen order.
func (t *Topology) sourceTopics() []string {
	var out []string
	for _, n := range t.nodes {
		if n.kind == kindSource {
			out = append(out, n.topics...)
		}
	}
	return out
}

// subtopology is a connected part of the graph (nodes linked by edges or by a shared store);
// one task per partition runs it.
type subtopology struct {
	id     int
	nodes  []*node // in insertion order
	topics []string
	stores []string
}

// subtopologies splits the graph into connected components, numbered by first node.
func (t *Topology) subtopologies() []*subtopology {
	parent := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if parent[x] == "" || parent[x] == x {
			parent[x] = x
			return x
		}
		r := find(parent[x])
		parent[x] = r
		return r
	}
	union := func(a, b string) { parent[find(a)] = find(b) }
	storeOwner := map[string]string{}
	for _, n := range t.nodes {
		find(n.name)
		for _, p := range n.parents {
			union(n.name, p)
		}
		for _, s := range n.stores {
			if o, ok := storeOwner[s]; ok {
				union(n.name, o)
			} else {
				storeOwner[s] = n.name
			}
		}
	}
	var subs []*subtopology
	byRoot := map[string]*subtopology{}
	for _, n := range t.nodes {
		r := find(n.name)
		s, ok := byRoot[r]
		if !ok {
			s = &subtopology{id: len(subs)}
			subs = append(subs, s)
			byRoot[r] = s
		}
		s.nodes = append(s.nodes, n)
		if n.kind == kindSource {
			s.topics = append(s.topics, n.topics...)
		}
		for _, st := range n.stores {
			if !slices.Contains(s.stores, st) {
				s.stores = append(s.stores, st)
			}
		}
	}
	return subs
}

// NodeDescription describes one node of a sub-topology.
type NodeDescription struct {
	Name         string
	Kind         string   // "Source", "Processor" or "Sink"
	Topics       []string // Source: topics read; Sink: the one topic written
	Stores       []string // Processor: stores it uses
	Predecessors []string
	Successors   []string
}

// SubtopologyDescription is one connected part of a topology.
type SubtopologyDescription struct {
	ID    int
	Nodes []NodeDescription
	// Global marks a global table's store: its source and the processor filling the store,
	// run by every instance outside the task model ("will not generate tasks").
	Global bool
}

// TopologyDescription is the shape Kafka Streams' TopologyDescription prints: sub-topologies
// with their sources, processors, stores and sinks. String, Mermaid and DOT render it.
type TopologyDescription struct {
	Subtopologies []SubtopologyDescription
}

// Describe returns the topology's structure.
func (t *Topology) Describe() TopologyDescription {
	var d TopologyDescription
	for _, s := range t.subtopologies() {
		sd := SubtopologyDescription{ID: s.id}
		for _, n := range s.nodes {
			nd := NodeDescription{Name: n.name, Predecessors: slices.Clone(n.parents), Successors: slices.Clone(n.children)}
			switch n.kind {
			case kindSource:
				nd.Kind, nd.Topics = "Source", slices.Clone(n.topics)
			case kindProcessor:
				nd.Kind, nd.Stores = "Processor", slices.Clone(n.stores)
			case kindSink:
				nd.Kind, nd.Topics = "Sink", []string{n.topic}
			}
			sd.Nodes = append(sd.Nodes, nd)
		}
		d.Subtopologies = append(d.Subtopologies, sd)
	}
	for _, g := range t.globals {
		d.Subtopologies = append(d.Subtopologies, SubtopologyDescription{ID: len(d.Subtopologies), Global: true, Nodes: []NodeDescription{
			{Name: g.source, Kind: "Source", Topics: []string{g.topic}, Successors: []string{g.proc}},
			{Name: g.proc, Kind: "Processor", Stores: []string{g.store}, Predecessors: []string{g.source}},
		}})
	}
	return d
}

// storeSpec is a registered store: how to build one instance per task and its serdes (kept
// as any; typed accessors assert them).
type storeSpec struct {
	name    string
	logging bool
	keys    any
	values  any
	typ     StoreType // DefaultStore: the application's DefaultStoreType
	suffix  int       // window stores 8, session stores 16: bytes of times after the key
	kind    storeKind
	size    int64 // window stores: window length in ms (the end of a window is start+size)
	global  bool  // a global table's store: one per instance, filled from its topic
	// cached: a record cache sits in front of it (Config.CacheMaxBytes); its processor
	// forwards updates when the cache flushes them. Set by the DSL for aggregations and
	// tables whose processors only read and write single keys.
	cached    bool
	cacheable bool
}

// storeKind says how a store's bytes are laid out and which typed view reads it.
type storeKind int

const (
	kvStore storeKind = iota
	windowStore
	sessionStore
)

// SetStoreType chooses where an already added store lives (in memory or on Pebble), for
// stores the DSL declares by name (Count("counts"), Aggregate(…, "store", …), joins …). It
// overrides Config.DefaultStoreType for that store. Global tables' stores are always in
// memory.
func (t *Topology) SetStoreType(store string, typ StoreType) {
	spec, ok := t.stores[store]
	switch {
	case !ok:
		t.fail("set store type: unknown store %q", store)
	case spec.global:
		t.fail("set store type: %q is a global table's store, which is kept in memory", store)
	case typ < DefaultStore || typ > Persistent:
		t.fail("set store type of %q: unknown type %d", store, typ)
	default:
		spec.typ = typ
	}
}

// cacheStore marks a store the DSL just added as cached (and cacheable).
func (t *Topology) cacheStore(name string) {
	if spec, ok := t.stores[name]; ok {
		spec.cached, spec.cacheable = true, true
	}
}

// SetStoreCaching turns the record cache of a DSL store on or off (Kafka's
// Materialized.withCachingEnabled/Disabled). The DSL caches the stores of Count, Reduce,
// Aggregate, their windowed forms on time windows and TableFrom; with caching off, every
// update is written and forwarded at once. Stores whose processors scan ranges (sliding and
// session windows, joins, suppression) and processor API stores are never cached.
func (t *Topology) SetStoreCaching(store string, enabled bool) {
	spec, ok := t.stores[store]
	switch {
	case !ok:
		t.fail("set store caching: unknown store %q", store)
	case enabled && !spec.cacheable:
		t.fail("set store caching: %q is not a store the DSL can cache", store)
	default:
		spec.cached = enabled
	}
}

// PunctuationType says which clock drives a punctuation.
type PunctuationType int

const (
	// StreamTime punctuations fire when the task's stream time (the largest record
	// timestamp seen) passes the next due time; no records, no punctuation.
	StreamTime PunctuationType = iota
	// WallClockTime punctuations fire as the system (or test driver) clock passes due times.
	WallClockTime
)

// sortedKeys is a small helper for deterministic map iteration.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func msOf(t time.Time) int64 { return t.UnixMilli() }
