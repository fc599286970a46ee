package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// GlobalTable is a table every instance of the application holds in full: all partitions of
// its topic, read from the beginning outside the consumer group before any task processes a
// record, then kept up to date by a background reader. Stream records join it through a key
// mapper (JoinStreamGlobalTable), so the stream needs no repartitioning and the topic need
// not be co-partitioned with anything. A null value deletes its key; records with a null key
// are skipped. The store holds the topic's bytes as they are, so it is read with the table's
// serdes; it is not logged, the topic itself being its changelog.
//
// A GlobalTable is a small value naming its store; build it from the topology's goroutine.
// At run time the store is shared by all tasks of an instance and is safe to read from any of
// them while the background reader writes; it is read-only to processors.
type GlobalTable[K, V any] struct {
	t      *Topology
	store  string
	keys   Serde[K]
	values Serde[V]
}

// globalSpec is a registered global table: the topic it reads and the store it fills.
type globalSpec struct {
	topic  string
	store  string
	source string // node names, for Describe
	proc   string
}

// GlobalTableFrom reads topic as a global table into the key-value store named store
// (default: a generated name).
func GlobalTableFrom[K, V any](t *Topology, topic, store string, keys Serde[K], values Serde[V]) GlobalTable[K, V] {
	if keys == nil || values == nil || topic == "" {
		t.fail("global table: topic and serdes are required")
		return GlobalTable[K, V]{t: t}
	}
	for _, g := range t.globals {
		if g.topic == topic {
			t.fail("global table: topic %q is already read by global store %q", topic, g.store)
			return GlobalTable[K, V]{t: t}
		}
	}
	source := t.nextName("KSTREAM-SOURCE")
	proc := t.nextName("KTABLE-SOURCE")
	if store == "" {
		store = t.nextName(topic + "-STATE-STORE")
	}
	if _, dup := t.stores[store]; dup {
		t.fail("duplicate store %q", store)
		return GlobalTable[K, V]{t: t}
	}
	t.stores[store] = &storeSpec{name: store, keys: keys, values: values, typ: InMemory, global: true}
	t.globals = append(t.globals, &globalSpec{topic: topic, store: store, source: source, proc: proc})
	return GlobalTable[K, V]{t: t, store: store, keys: keys, values: values}
}

// StoreName is the global table's store, for GetKeyValueStore from a processor connected to
// it with ConnectStore, or from the test driver.
func (g GlobalTable[K, V]) StoreName() string { return g.store }

// JoinStreamGlobalTable joins each stream record with the global table's row for the key
// keyOf computes from the record (Kafka's KStream#join(GlobalKTable, KeyValueMapper,
// ValueJoiner)); records without a row, and null-valued records, are dropped. The result
// keeps the stream's key. Updates of the global table produce no output.
func JoinStreamGlobalTable[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], keyOf func(K, V) KG, joiner func(K, V, VG) VR) Stream[K, VR] {
	return globalJoin(s, g, innerJoin, keyOf, func(k K, v V, vg *VG) VR { return joiner(k, v, *vg) })
}

// LeftJoinStreamGlobalTable is JoinStreamGlobalTable keeping records without a row (joiner
// gets nil).
func LeftJoinStreamGlobalTable[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], keyOf func(K, V) KG, joiner func(K, V, *VG) VR) Stream[K, VR] {
	return globalJoin(s, g, leftJoin, keyOf, joiner)
}

func globalJoin[K, V, KG, VG, VR any](s Stream[K, V], g GlobalTable[KG, VG], kind joinKind, keyOf func(K, V) KG, joiner func(K, V, *VG) VR) Stream[K, VR] {
	if g.t != s.t || g.store == "" {
		s.t.fail("global join: the global table is invalid or of another topology")
		return Stream[K, VR]{t: s.t, node: s.node}
	}
	name := s.t.nextName("KSTREAM-JOIN")
	store := g.store
	s.t.addNode(&node{name: name, kind: kindProcessor, parents: []string{s.node}, globals: []string{store},
		newProc: func() procNode {
			return &lookupJoinProc[K, V, KG, VG, VR]{store: store, kind: kind, joiner: joiner, keyOf: keyOf, nullKeys: true}
		}})
	return Stream[K, VR]{t: s.t, node: name, keys: s.keys, values: serdeOf[VR](s.values), keyChanged: s.keyChanged}
}

// lockedKV makes a store safe for one writer (the global reader) and many readers (tasks).
type lockedKV struct {
	mu struct {
		sync.RWMutex
		kv kvBytes
	}
}

func newLockedKV(kv kvBytes) *lockedKV { l := &lockedKV{}; l.mu.kv = kv; return l }

func (l *lockedKV) get(k []byte) ([]byte, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.kv.get(k)
}

func (l *lockedKV) put(k, v []byte) { l.mu.Lock(); l.mu.kv.put(k, v); l.mu.Unlock() }
func (l *lockedKV) del(k []byte)    { l.mu.Lock(); l.mu.kv.del(k); l.mu.Unlock() }

// scan holds the read lock for the whole iteration: fn must not write to the store.
func (l *lockedKV) scan(from, to []byte, fn func(k, v []byte) bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.mu.kv.scan(from, to, fn)
}

func (l *lockedKV) len() int     { l.mu.RLock(); defer l.mu.RUnlock(); return l.mu.kv.len() }
func (l *lockedKV) err() error   { l.mu.RLock(); defer l.mu.RUnlock(); return l.mu.kv.err() }
func (l *lockedKV) close() error { l.mu.Lock(); defer l.mu.Unlock(); return l.mu.kv.close() }

// globalStores is one instance's set of global stores, keyed by store name and by topic.
type globalStores struct {
	byStore map[string]*storeInst
	byTopic map[string]*storeInst
}

func newGlobalStores(t *Topology) *globalStores {
	gs := &globalStores{byStore: map[string]*storeInst{}, byTopic: map[string]*storeInst{}}
	for _, g := range t.globals {
		spec := t.stores[g.store]
		si := &storeInst{spec: spec, kv: newLockedKV(newMemKV()), readOnly: true}
		gs.byStore[g.store] = si
		gs.byTopic[g.topic] = si
	}
	return gs
}

// apply writes one record of a global topic into its store.
func (gs *globalStores) apply(topic string, k, v []byte) {
	si, ok := gs.byTopic[topic]
	if !ok || k == nil {
		return
	}
	si.restore(k, v)
}

// applyRecords writes a run of one partition of a global topic into its store, in one
// batch, skipping records with a null key as apply does.
func (gs *globalStores) applyRecords(topic string, recs []*kgo.Record) {
	si, ok := gs.byTopic[topic]
	if !ok || len(recs) == 0 {
		return
	}
	keep := recs
	for i, r := range recs {
		if r.Key == nil { // rare: copy the run without the keyless records
			keep = append(make([]*kgo.Record, 0, len(recs)), recs[:i]...)
			for _, r := range recs[i+1:] {
				if r.Key != nil {
					keep = append(keep, r)
				}
			}
			break
		}
	}
	si.restoreRecords(keep)
}

func (gs *globalStores) topics() []string {
	out := make([]string, 0, len(gs.byTopic))
	for _, g := range sortedKeys(gs.byTopic) {
		out = append(out, g)
	}
	return out
}

// globalIdle is how long the bootstrap read may see nothing new before it counts a
// partition whose fetched offsets stopped short of the end offset as read: the rest are
// transaction markers, aborted records or a transaction still open.
const globalIdle = 2 * time.Second

// startGlobals reads every global topic from the beginning up to its end offsets, then
// keeps reading in the background until ctx is done or the returned stop is called (which
// waits for the reader to exit). With no global tables it does nothing.
func (a *App) startGlobals(ctx context.Context) (stop func(), err error) {
	topics := a.globals.topics()
	if len(topics) == 0 {
		return func() {}, nil
	}
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("global tables: list end offsets: %w", err)
	}
	starts, err := a.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("global tables: list start offsets: %w", err)
	}
	assign := map[string]map[int32]kgo.Offset{}
	pending := map[string]map[int32]int64{} // partitions still to read up to their end offset
	for _, topic := range topics {
		assign[topic] = map[int32]kgo.Offset{}
		pending[topic] = map[int32]int64{}
		parts, ok := ends[topic]
		if !ok || len(parts) == 0 {
			return nil, fmt.Errorf("%w: global table topic %q does not exist", ErrConfig, topic)
		}
		for p, o := range parts {
			if o.Err != nil {
				return nil, fmt.Errorf("global tables: end offset of %s/%d: %w", topic, p, o.Err)
			}
			assign[topic][p] = kgo.NewOffset().AtStart()
			if s, ok := starts.Lookup(topic, p); !ok || s.Offset < o.Offset {
				pending[topic][p] = o.Offset
			}
		}
	}
	cl, err := kgo.NewClient(a.opts(kgo.ConsumePartitions(assign), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
	if err != nil {
		return nil, err
	}
	began, n := time.Now(), 0
	left := func() int {
		c := 0
		for _, ps := range pending {
			c += len(ps)
		}
		return c
	}
	for left() > 0 {
		pctx, cancel := context.WithTimeout(ctx, globalIdle)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			cl.Close()
			return nil, ctx.Err()
		}
		if err := fatalFetchErr(fs); err != nil {
			cl.Close()
			return nil, fmt.Errorf("global tables: %w", err)
		}
		if fs.NumRecords() == 0 {
			a.log.Info("streams: global tables: nothing more to read before the end offsets; treating them as read", "partitions", left())
			break
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			n += len(p.Records)
			a.globals.applyRecords(p.Topic, p.Records)
			if end, ok := pending[p.Topic][p.Partition]; ok && p.Records[len(p.Records)-1].Offset+1 >= end {
				delete(pending[p.Topic], p.Partition)
			}
		})
	}
	a.log.Info("streams: global tables restored", "topics", topics, "records", n, "took", time.Since(began).Round(time.Millisecond))

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cl.Close()
		for rctx.Err() == nil {
			fs := cl.PollFetches(rctx)
			if err := fatalFetchErr(fs); err != nil && rctx.Err() == nil {
				a.log.Warn("streams: global table reader", "err", err)
			}
			fs.EachPartition(func(p kgo.FetchTopicPartition) { a.globals.applyRecords(p.Topic, p.Records) })
		}
	}()
	return func() { cancel(); <-done }, nil
}

// fatalFetchErr returns the first fetch error other than a cancelled poll.
func fatalFetchErr(fs kgo.Fetches) error {
	var first error
	fs.EachError(func(_ string, _ int32, err error) {
		if first == nil && !isCtxErr(err) {
			first = err
		}
	})
	return first
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed)
}
