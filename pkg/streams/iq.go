package streams

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Interactive queries read a running instance's stores from any goroutine, as Kafka Streams'
// KafkaStreams#store does. A store lives in one instance per task (one task per input
// partition); a query reads the tasks this instance runs now. The reads take App's store
// lock shared, and the poll loop takes it exclusively while its tasks process a batch of
// records and punctuate, so a query waits at most one batch and sees the stores as they are
// between batches. Tasks being restored are not queryable yet. Results are copies, decoded
// after the lock is released.
//
// Which instance owns a key is MetadataForKey; reading another instance's store is the
// application's own RPC to the application.server that MetadataForKey names (see the
// documentation's example).

// ReadOnlyKeyValueStore queries a key-value store (or a global table's store) of a running
// App. It is a small value, safe for concurrent use; it resolves the store's tasks anew on
// every call, so it stays valid across rebalances.
type ReadOnlyKeyValueStore[K, V any] struct {
	a    *App
	name string
	ks   Serde[K]
	vs   Serde[V]
}

// ReadOnlyWindowStore queries a window store of a running App (see ReadOnlyKeyValueStore).
type ReadOnlyWindowStore[K, V any] struct {
	a    *App
	name string
	ks   Serde[K]
	vs   Serde[V]
	size int64
}

// ReadOnlySessionStore queries a session store of a running App (see ReadOnlyKeyValueStore).
type ReadOnlySessionStore[K, V any] struct {
	a    *App
	name string
	ks   Serde[K]
	vs   Serde[V]
}

func querySpec[K, V any](a *App, name string, kind storeKind) (*storeSpec, Serde[K], Serde[V], error) {
	spec, ok := a.topo.stores[name]
	if !ok {
		return nil, nil, nil, fmt.Errorf("%w: %q", ErrUnknownStore, name)
	}
	ks, ok1 := spec.keys.(Serde[K])
	vs, ok2 := spec.values.(Serde[V])
	if !ok1 || !ok2 || spec.kind != kind {
		return nil, nil, nil, fmt.Errorf("%w: store %q is of another kind or has other key/value types", ErrUnknownStore, name)
	}
	return spec, ks, vs, nil
}

// QueryKeyValueStore returns a query view of the key-value store name; K and V must be the
// types it was declared with.
func QueryKeyValueStore[K, V any](a *App, name string) (ReadOnlyKeyValueStore[K, V], error) {
	_, ks, vs, err := querySpec[K, V](a, name, kvStore)
	if err != nil {
		return ReadOnlyKeyValueStore[K, V]{}, err
	}
	return ReadOnlyKeyValueStore[K, V]{a: a, name: name, ks: ks, vs: vs}, nil
}

// QueryWindowStore returns a query view of the window store name.
func QueryWindowStore[K, V any](a *App, name string) (ReadOnlyWindowStore[K, V], error) {
	spec, ks, vs, err := querySpec[K, V](a, name, windowStore)
	if err != nil {
		return ReadOnlyWindowStore[K, V]{}, err
	}
	return ReadOnlyWindowStore[K, V]{a: a, name: name, ks: ks, vs: vs, size: spec.size}, nil
}

// QuerySessionStore returns a query view of the session store name.
func QuerySessionStore[K, V any](a *App, name string) (ReadOnlySessionStore[K, V], error) {
	_, ks, vs, err := querySpec[K, V](a, name, sessionStore)
	if err != nil {
		return ReadOnlySessionStore[K, V]{}, err
	}
	return ReadOnlySessionStore[K, V]{a: a, name: name, ks: ks, vs: vs}, nil
}

type rawKV struct{ k, v []byte }

// withStores calls fn with every open instance of store name on this instance, under the
// store lock, in task order. ErrStoreNotAvailable if there is none.
func (a *App) withStores(name string, fn func(si *storeInst)) error {
	if si, ok := a.globals.byStore[name]; ok {
		fn(si) // a global store locks itself
		return si.kv.err()
	}
	a.iq.RLock()
	defer a.iq.RUnlock()
	ids := make([]TaskID, 0, len(a.iq.tasks))
	for id, tk := range a.iq.tasks {
		if _, ok := tk.stores[name]; ok {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: %q has no open task on this instance", ErrStoreNotAvailable, name)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Partition < ids[j].Partition })
	for _, id := range ids {
		si := a.iq.tasks[id].stores[name]
		fn(si)
		if err := si.kv.err(); err != nil {
			return err
		}
	}
	return nil
}

// rawGet returns a copy of the value of k, from whichever task holds it.
func (a *App) rawGet(name string, k []byte) ([]byte, bool, error) {
	var out []byte
	found := false
	err := a.withStores(name, func(si *storeInst) {
		if found {
			return
		}
		if v, ok := si.get(k, false); ok {
			out, found = bytes.Clone(v), true
			if out == nil {
				out = []byte{}
			}
		}
	})
	return out, found, err
}

// rawScan returns copies of the entries in [from, to] of every task, each task's in key
// order, tasks in partition order.
func (a *App) rawScan(name string, from, to []byte) ([]rawKV, error) {
	var out []rawKV
	err := a.withStores(name, func(si *storeInst) {
		si.scan(from, to, func(k, v []byte) bool {
			out = append(out, rawKV{bytes.Clone(k), append([]byte{}, v...)})
			return true
		})
	})
	return out, err
}

// Get returns the value of k and whether this instance holds it.
func (s ReadOnlyKeyValueStore[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := s.ks.Serialize("", k)
	if err != nil {
		return zero, false, err
	}
	vb, ok, err := s.a.rawGet(s.name, kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := s.vs.Deserialize("", vb)
	return v, err == nil, err
}

// Range returns the entries with keys from..to inclusive that this instance holds, in
// serialized-key order.
func (s ReadOnlyKeyValueStore[K, V]) Range(from, to K) ([]KeyValue[K, V], error) {
	fb, err := s.ks.Serialize("", from)
	if err != nil {
		return nil, err
	}
	fb = bytes.Clone(fb)
	tb, err := s.ks.Serialize("", to)
	if err != nil {
		return nil, err
	}
	return s.scan(fb, bytes.Clone(tb))
}

// All returns every entry this instance holds, in serialized-key order.
func (s ReadOnlyKeyValueStore[K, V]) All() ([]KeyValue[K, V], error) { return s.scan(nil, nil) }

// Len is the number of entries this instance holds (O(n) for persistent stores).
func (s ReadOnlyKeyValueStore[K, V]) Len() (int, error) {
	n := 0
	err := s.a.withStores(s.name, func(si *storeInst) { n += si.len() })
	return n, err
}

func (s ReadOnlyKeyValueStore[K, V]) scan(from, to []byte) ([]KeyValue[K, V], error) {
	raw, err := s.a.rawScan(s.name, from, to)
	if err != nil {
		return nil, err
	}
	sort.SliceStable(raw, func(i, j int) bool { return bytes.Compare(raw[i].k, raw[j].k) < 0 })
	out := make([]KeyValue[K, V], 0, len(raw))
	for _, r := range raw {
		k, err := s.ks.Deserialize("", r.k)
		if err != nil {
			return nil, err
		}
		v, err := s.vs.Deserialize("", r.v)
		if err != nil {
			return nil, err
		}
		out = append(out, KV(k, v))
	}
	return out, nil
}

// Fetch returns the value of k's window starting at start.
func (w ReadOnlyWindowStore[K, V]) Fetch(k K, start time.Time) (V, bool, error) {
	var zero V
	kb, err := w.ks.Serialize("", k)
	if err != nil {
		return zero, false, err
	}
	vb, ok, err := w.a.rawGet(w.name, appendTimes(bytes.Clone(kb), start.UnixMilli()))
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := w.vs.Deserialize("", vb)
	return v, err == nil, err
}

// FetchRange returns k's windows starting in [from, to], oldest first (Kafka's
// WindowStore#fetch(key, timeFrom, timeTo)).
func (w ReadOnlyWindowStore[K, V]) FetchRange(k K, from, to time.Time) ([]KeyValue[Windowed[K], V], error) {
	if to.UnixMilli() < 0 {
		return nil, nil
	}
	kb, err := w.ks.Serialize("", k)
	if err != nil {
		return nil, err
	}
	lo := appendTimes(bytes.Clone(kb), from.UnixMilli())
	hi := appendTimes(bytes.Clone(kb), to.UnixMilli())
	raw, err := w.a.rawScan(w.name, lo, hi)
	if err != nil {
		return nil, err
	}
	return decodeWindows(raw, w.ks, w.vs, 8, w.size)
}

// All returns every window this instance holds, each task's by key then start.
func (w ReadOnlyWindowStore[K, V]) All() ([]KeyValue[Windowed[K], V], error) {
	raw, err := w.a.rawScan(w.name, nil, nil)
	if err != nil {
		return nil, err
	}
	return decodeWindows(raw, w.ks, w.vs, 8, w.size)
}

// Fetch returns every session of k this instance holds, by end time (Kafka's
// ReadOnlySessionStore#fetch(key)).
func (s ReadOnlySessionStore[K, V]) Fetch(k K) ([]KeyValue[Windowed[K], V], error) {
	return s.FindSessions(k, time.UnixMilli(0), time.UnixMilli(math.MaxInt64))
}

// FindSessions returns k's sessions that end at or after earliestEnd and start at or before
// latestStart, by end time.
func (s ReadOnlySessionStore[K, V]) FindSessions(k K, earliestEnd, latestStart time.Time) ([]KeyValue[Windowed[K], V], error) {
	kb, err := s.ks.Serialize("", k)
	if err != nil {
		return nil, err
	}
	lo := appendTimes(bytes.Clone(kb), earliestEnd.UnixMilli(), 0)
	hi := appendTimes(bytes.Clone(kb), math.MaxInt64, math.MaxInt64)
	raw, err := s.a.rawScan(s.name, lo, hi)
	if err != nil {
		return nil, err
	}
	all, err := decodeWindows(raw, s.ks, s.vs, 16, 0)
	if err != nil {
		return nil, err
	}
	ls := latestStart.UnixMilli()
	return slices.DeleteFunc(all, func(kv KeyValue[Windowed[K], V]) bool { return kv.Key.Start.UnixMilli() > ls }), nil
}

// decodeWindows turns changelog-layout entries (key, then start; or key, end, start) into
// windowed key-value pairs.
func decodeWindows[K, V any](raw []rawKV, ks Serde[K], vs Serde[V], suffix int, size int64) ([]KeyValue[Windowed[K], V], error) {
	out := make([]KeyValue[Windowed[K], V], 0, len(raw))
	for _, r := range raw {
		n := len(r.k) - suffix
		if n < 0 {
			return nil, fmt.Errorf("%w: windowed store key of %d bytes", ErrSerde, len(r.k))
		}
		k, err := ks.Deserialize("", r.k[:n])
		if err != nil {
			return nil, err
		}
		v, err := vs.Deserialize("", r.v)
		if err != nil {
			return nil, err
		}
		var w Windowed[K]
		if suffix == 8 {
			start := timeAt(r.k[n:])
			w = Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(start + size)}
		} else {
			w = Windowed[K]{Key: k, End: time.UnixMilli(timeAt(r.k[n:])), Start: time.UnixMilli(timeAt(r.k[n+8:]))}
		}
		out = append(out, KV(w, v))
	}
	return out, nil
}

// KeyQueryMetadata says where a key of a store lives: the task (sub-topology and partition)
// and the application.server of the instance running it, and of those keeping a standby
// copy of it (num.standby.replicas).
type KeyQueryMetadata struct {
	// Host is the owner's application.server; empty if the owner configured none.
	Host      string
	Partition int32
	Task      TaskID
	// StandbyHosts are the application.servers of the instances with a standby copy of the
	// task, sorted (those without one are left out). Their copies are not queryable; they
	// are the likely next owners.
	StandbyHosts []string
}

// InstanceMetadata is one instance of the application as the last group assignment
// described it.
type InstanceMetadata struct {
	Host         string   // its application.server
	Tasks        []TaskID // active tasks, in order
	Stores       []string // stores of those tasks, sorted
	StandbyTasks []TaskID // tasks it keeps a standby copy of, in order
}

func (a *App) setOwners(owners map[TaskID]string, standbys map[TaskID][]string) {
	a.meta.Lock()
	defer a.meta.Unlock()
	a.meta.owners, a.meta.standbys, a.meta.known = owners, standbys, true
}

// MetadataForKey tells which instance owns key in store: the key is serialized with the
// store's key serde and hashed as Kafka's default partitioner does (murmur2) over the
// partition count of the store's sub-topology, and the task of that partition is looked up
// in the last group assignment. It assumes the records reached the store partitioned by that
// key with the default partitioner, as DSL aggregations and tables do. A global table's store
// is held by every instance: the answer is this instance, with partition -1. Safe for
// concurrent use; ErrStoreNotAvailable before the first assignment.
func MetadataForKey[K any](a *App, store string, key K) (KeyQueryMetadata, error) {
	spec, ok := a.topo.stores[store]
	if !ok {
		return KeyQueryMetadata{}, fmt.Errorf("%w: %q", ErrUnknownStore, store)
	}
	ks, ok := spec.keys.(Serde[K])
	if !ok {
		return KeyQueryMetadata{}, fmt.Errorf("%w: store %q has another key type", ErrUnknownStore, store)
	}
	kb, err := ks.Serialize("", key)
	if err != nil {
		return KeyQueryMetadata{}, err
	}
	return a.MetadataForRawKey(store, kb)
}

// MetadataForRawKey is MetadataForKey for a key already serialized.
func (a *App) MetadataForRawKey(store string, key []byte) (KeyQueryMetadata, error) {
	spec, ok := a.topo.stores[store]
	if !ok {
		return KeyQueryMetadata{}, fmt.Errorf("%w: %q", ErrUnknownStore, store)
	}
	if spec.global {
		return KeyQueryMetadata{Host: a.cfg.ApplicationServer, Partition: -1}, nil
	}
	sub := -1
	for _, s := range a.subs {
		if slices.Contains(s.stores, store) {
			sub = s.id
		}
	}
	if sub < 0 {
		return KeyQueryMetadata{}, fmt.Errorf("%w: %q is connected to no processor", ErrUnknownStore, store)
	}
	if key == nil {
		return KeyQueryMetadata{}, fmt.Errorf("%w: a null key has no owner", ErrSerde)
	}
	a.meta.Lock()
	defer a.meta.Unlock()
	if !a.meta.known || sub >= len(a.meta.subN) || a.meta.subN[sub] <= 0 {
		return KeyQueryMetadata{}, fmt.Errorf("%w: no group assignment yet", ErrStoreNotAvailable)
	}
	p := int32(keyPartition(key, int(a.meta.subN[sub])))
	id := TaskID{sub, p}
	// An owner without an application.server is left out of the map: Host stays empty.
	return KeyQueryMetadata{Host: a.meta.owners[id], Partition: p, Task: id,
		StandbyHosts: slices.Clone(a.meta.standbys[id])}, nil
}

// AllMetadata lists the instances with an application.server and what they run, as the
// last group assignment said (for queries that must ask every instance, such as ranges).
func (a *App) AllMetadata() []InstanceMetadata {
	a.meta.Lock()
	byHost := map[string][]TaskID{}
	standby := map[string][]TaskID{}
	for id, h := range a.meta.owners {
		byHost[h] = append(byHost[h], id)
	}
	for id, hs := range a.meta.standbys {
		for _, h := range hs {
			standby[h] = append(standby[h], id)
			if _, ok := byHost[h]; !ok {
				byHost[h] = nil // an instance with standby tasks only
			}
		}
	}
	a.meta.Unlock()
	out := make([]InstanceMetadata, 0, len(byHost))
	for _, h := range sortedKeys(byHost) {
		ids := byHost[h]
		sortTasks(ids)
		sortTasks(standby[h])
		stores := map[string]bool{}
		for _, id := range ids {
			if id.Subtopology < len(a.subs) {
				for _, s := range a.subs[id.Subtopology].stores {
					stores[s] = true
				}
			}
		}
		out = append(out, InstanceMetadata{Host: h, Tasks: ids, Stores: sortedKeys(stores), StandbyTasks: standby[h]})
	}
	return out
}

// keyPartition is the partition Kafka's default partitioner gives a non-null key.
func keyPartition(key []byte, n int) int {
	return kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(&kgo.Record{Key: key}, n)
}
