package streams

import (
	"bytes"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kvBytes is the byte-level key-value store under every typed KeyValueStore: in memory
// (memKV) or on disk (pebbleKV), and for window and session stores wrapped by suffixKV. Keys
// order by bytes.Compare. Not safe for concurrent writes: a store belongs to one task, whose
// goroutine is the only writer; readers from other goroutines are serialized against it by
// the application (see App's store lock).
type kvBytes interface {
	get(k []byte) ([]byte, bool)
	put(k, v []byte)
	del(k []byte)
	// scan calls fn for keys in [from, to] (nil bound: open) in key order until fn returns
	// false. fn may write to the store; whether the scan then sees the write is unspecified.
	scan(from, to []byte, fn func(k, v []byte) bool)
	len() int
	// err is the first I/O error the store met (sticky; always nil in memory). Operations
	// after a failure do nothing and read as empty, so callers check err before trusting
	// a result and before committing anything that depends on the store.
	err() error
	close() error
}

// memKV is the in-memory kvBytes: a map plus a sorted key index rebuilt lazily on the first
// scan after a change, so point reads and writes stay O(1) and ranges pay one sort per burst
// of writes. The lazy sort is the one write a read makes; sortMu serializes it so that
// concurrent readers (a global store read by tasks and by queries) stay safe.
type memKV struct {
	m      map[string][]byte
	sortMu sync.Mutex
	keys   []string
	sorted bool // keys holds exactly the map's keys, in order
}

func newMemKV() kvBytes { return &memKV{m: map[string][]byte{}, sorted: true} }

func (s *memKV) get(k []byte) ([]byte, bool) { v, ok := s.m[string(k)]; return v, ok }

func (s *memKV) put(k, v []byte) {
	if _, ok := s.m[string(k)]; !ok {
		s.sorted = false
	}
	s.m[string(k)] = bytes.Clone(v)
}

func (s *memKV) del(k []byte) {
	if _, ok := s.m[string(k)]; ok {
		delete(s.m, string(k))
		s.sorted = false
	}
}

func (s *memKV) scan(from, to []byte, fn func(k, v []byte) bool) {
	s.sortMu.Lock()
	if !s.sorted {
		s.keys = s.keys[:0]
		for k := range s.m {
			s.keys = append(s.keys, k)
		}
		sort.Strings(s.keys)
		s.sorted = true
	}
	s.sortMu.Unlock()
	i := 0
	if from != nil {
		i = sort.SearchStrings(s.keys, string(from))
	}
	for ; i < len(s.keys); i++ {
		k := s.keys[i]
		if to != nil && k > string(to) {
			return
		}
		v, ok := s.m[k]
		if !ok {
			continue // deleted by fn during this scan
		}
		if !fn([]byte(k), v) {
			return
		}
	}
}

func (s *memKV) len() int     { return len(s.m) }
func (s *memKV) err() error   { return nil }
func (s *memKV) close() error { return nil }

// StoreType chooses where a store keeps its data.
type StoreType int

const (
	// DefaultStore leaves the choice to Config.DefaultStoreType (default.dsl.store).
	DefaultStore StoreType = iota
	// InMemory stores live in the process and are rebuilt from their changelog in full
	// whenever their task starts on an instance.
	InMemory
	// Persistent stores live on Pebble under state.dir and keep a checkpoint of the
	// changelog offset they reflect, so a restart restores only the changelog's tail.
	Persistent
)

func (t StoreType) String() string {
	switch t {
	case InMemory:
		return "in-memory"
	case Persistent:
		return "persistent"
	}
	return "default"
}

// storeInst is one task's instance of a registered store: its data and, when logged, the
// changelog partition every write is also sent to.
type storeInst struct {
	spec      *storeSpec
	kv        kvBytes
	task      *task
	changelog string // resolved topic; "" when not logged
	readOnly  bool   // a global store: only its topic writes it

	// Persistent stores only (disk == nil in memory).
	disk *diskStore
	// pos is the next changelog offset the store does not reflect yet: the end reached by
	// the restore, then one past the latest acknowledged write. -1: unknown, never
	// checkpointed. Written by the producer's callbacks, hence atomic.
	pos atomic.Int64
	// dirty: written since the last committed transaction (exactly_once_v2), so the
	// store holds uncommitted state and must not be checkpointed. Task goroutine only.
	dirty bool
	// cache, when set, holds the latest writes until they are flushed (see storeCache);
	// nil: every write goes to the store and its changelog at once.
	cache *storeCache
}

// put writes k (v nil: deletes it) on behalf of the record being processed: into the
// cache when the store has one, else into the store and its changelog.
func (s *storeInst) put(k, v []byte) error {
	if s.readOnly {
		return fmt.Errorf("%w: %q", ErrReadOnlyStore, s.spec.name)
	}
	var ts int64
	if s.task != nil { // nil only for a bare store in tests
		ts = s.task.nowMs()
	}
	if s.cache != nil {
		var h []kgo.RecordHeader
		if s.task.inRec {
			h = s.task.cur.headers
		}
		return s.cache.put(k, v, ts, h)
	}
	return s.write(k, v, ts)
}

// write puts k (v nil: deletes it) into the store and sends it to the changelog with
// timestamp ts, bypassing the cache.
func (s *storeInst) write(k, v []byte, ts int64) error {
	if v == nil {
		s.kv.del(k)
	} else {
		s.kv.put(k, v)
	}
	if err := s.kv.err(); err != nil {
		return fmt.Errorf("store %q: %w", s.spec.name, err)
	}
	s.dirty = true
	if s.changelog == "" {
		return nil
	}
	return s.task.out.send(s.changelog, s.task.id.Partition, k, v, ts, nil, &s.pos)
}

// writeEntries writes flushed cache entries (nil value: a deletion) to the store — as one
// batch when it is on Pebble — and then to the changelog, in order. It returns the entries'
// keys as bytes, made once and shared by the store, the changelog and the caller's
// listener: nothing writes to them.
func (s *storeInst) writeEntries(es []*cacheEntry) ([][]byte, error) {
	if len(es) == 0 {
		return nil, nil
	}
	keys := make([][]byte, len(es))
	size := 0
	for i, e := range es {
		keys[i] = []byte(e.key)
		size += batchEntrySize(len(e.key), len(e.value))
	}
	if db, in := onPebble(s.kv); db != nil {
		db.applyBatch(len(es), size, in, func(i int) ([]byte, []byte, bool) {
			return keys[i], es[i].value, false
		})
	} else {
		for i, e := range es {
			restoreOne(s.kv, keys[i], e.value)
		}
	}
	if err := s.kv.err(); err != nil {
		return nil, fmt.Errorf("store %q: %w", s.spec.name, err)
	}
	s.dirty = true
	if s.changelog == "" {
		return keys, nil
	}
	for i, e := range es {
		if err := s.task.out.send(s.changelog, s.task.id.Partition, keys[i], e.value, e.ts, nil, &s.pos); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// get reads k through the cache. touch: the read is the task's own (it refreshes the entry
// and caches what the store answered); queries from other goroutines pass false.
func (s *storeInst) get(k []byte, touch bool) ([]byte, bool) {
	if s.cache == nil {
		return s.kv.get(k)
	}
	if v, ok := s.cache.lookup(k, touch); ok {
		return v, v != nil
	}
	v, ok := s.kv.get(k)
	if touch && s.kv.err() == nil {
		s.cache.remember(k, v)
	}
	return v, ok
}

// scan is kv.scan with the cache's writes merged in.
func (s *storeInst) scan(from, to []byte, fn func(k, v []byte) bool) {
	if s.cache == nil {
		s.kv.scan(from, to, fn)
		return
	}
	s.cache.scan(from, to, fn)
}

// len counts the entries, cached writes included.
func (s *storeInst) len() int {
	if s.cache == nil {
		return s.kv.len()
	}
	n := 0
	s.cache.scan(nil, nil, func(_, _ []byte) bool { n++; return true })
	return n
}

// flushCache writes the cache's dirty entries to the store, the changelog and the flush
// listener (nothing without a cache).
func (s *storeInst) flushCache() error {
	if s.cache == nil {
		return nil
	}
	return s.cache.flush()
}

// onFlush makes c's node forward what the cache flushes, decoded by decode (a nil value is
// a deletion, forwarded as a nil value). It reports whether the store is cached: if not,
// the node forwards each update itself.
func (s *storeInst) onFlush(c *nodeCtx, decode func(k, v []byte) (key, value any, err error)) bool {
	if s.cache == nil {
		return false
	}
	s.cache.onFlush = func(k, v []byte, ts int64, headers []kgo.RecordHeader) error {
		key, value, err := decode(k, v)
		if err != nil {
			return err
		}
		return c.t.forwardFlushed(c, rec{key: key, value: value, ts: ts, headers: headers})
	}
	return true
}

// reset empties the store: a persistent one is wiped on disk, an in-memory one replaced.
// Task goroutine only, before the task processes or is queried.
func (s *storeInst) reset(log *slog.Logger) error {
	if s.cache != nil {
		s.cache.clear()
	}
	if s.disk != nil {
		return s.disk.kv.wipe(log)
	}
	var kv kvBytes = newMemKV()
	if s.spec.suffix > 0 {
		kv = &suffixKV{m: kv, suffix: s.spec.suffix}
	}
	s.kv = kv
	return nil
}

// restore applies one changelog record (nil value deletes) without logging it again.
func (s *storeInst) restore(k, v []byte) { restoreOne(s.kv, k, v) }

// KeyValueStore is a typed view of a key-value state store of one task. Keys are kept in the
// byte order of their serialized form, which is what Range iterates. Only the task's goroutine
// (inside Process, Init or a punctuation) may use it. Every write also goes to the store's
// changelog topic when logging is enabled.
type KeyValueStore[K, V any] struct {
	s  *storeInst
	ks Serde[K]
	vs Serde[V]
}

// Name is the store's name.
func (s KeyValueStore[K, V]) Name() string { return s.s.spec.name }

// Get returns the value for k and whether it exists.
func (s KeyValueStore[K, V]) Get(k K) (V, bool, error) {
	var zero V
	kb, err := s.ks.Serialize(s.s.changelog, k)
	if err != nil {
		return zero, false, err
	}
	vb, ok := s.s.get(kb, true)
	if !ok {
		return zero, false, s.s.kv.err()
	}
	v, err := s.vs.Deserialize(s.s.changelog, vb)
	return v, err == nil, err
}

// decode deserializes a store entry (v nil: a deletion, decoded as a nil value).
func (s KeyValueStore[K, V]) decode(kb, vb []byte) (any, any, error) {
	k, err := s.ks.Deserialize(s.s.changelog, kb)
	if err != nil || vb == nil {
		return k, nil, err
	}
	v, err := s.vs.Deserialize(s.s.changelog, vb)
	return k, v, err
}

// Put stores v under k.
func (s KeyValueStore[K, V]) Put(k K, v V) error {
	kb, err := s.ks.Serialize(s.s.changelog, k)
	if err != nil {
		return err
	}
	vb, err := s.vs.Serialize(s.s.changelog, v)
	if err != nil {
		return err
	}
	if vb == nil {
		vb = []byte{} // a present value, never a tombstone
	}
	return s.s.put(kb, vb)
}

// Delete removes k (a tombstone in the changelog).
func (s KeyValueStore[K, V]) Delete(k K) error {
	kb, err := s.ks.Serialize(s.s.changelog, k)
	if err != nil {
		return err
	}
	return s.s.put(kb, nil)
}

// Range calls fn for every key from..to inclusive, in serialized-key order, until fn returns false.
func (s KeyValueStore[K, V]) Range(from, to K, fn func(K, V) bool) error {
	fb, err := s.ks.Serialize(s.s.changelog, from)
	if err != nil {
		return err
	}
	tb, err := s.ks.Serialize(s.s.changelog, to)
	if err != nil {
		return err
	}
	return s.scan(fb, tb, fn)
}

// All calls fn for every entry in key order until fn returns false.
func (s KeyValueStore[K, V]) All(fn func(K, V) bool) error { return s.scan(nil, nil, fn) }

// Len is the number of entries.
func (s KeyValueStore[K, V]) Len() int { return s.s.len() }

func (s KeyValueStore[K, V]) scan(from, to []byte, fn func(K, V) bool) error {
	var ferr error
	s.s.scan(from, to, func(kb, vb []byte) bool {
		k, err := s.ks.Deserialize(s.s.changelog, kb)
		if err != nil {
			ferr = err
			return false
		}
		v, err := s.vs.Deserialize(s.s.changelog, vb)
		if err != nil {
			ferr = err
			return false
		}
		return fn(k, v)
	})
	if ferr == nil {
		ferr = s.s.kv.err()
	}
	return ferr
}

// StoreSpec declares a key-value store: its name, serdes, whether it is logged to the
// changelog topic "<application.id>-<name>-changelog" (compacted; restored on start and when
// its task moves to this instance) and where it lives (Type; DefaultStore follows
// Config.DefaultStoreType).
type StoreSpec[K, V any] struct {
	Name    string
	Keys    Serde[K]
	Values  Serde[V]
	Logging bool
	Type    StoreType
}

// AddKeyValueStore registers a key-value store and connects it to the named processors (more
// can be connected later with ConnectStore).
func AddKeyValueStore[K, V any](t *Topology, spec StoreSpec[K, V], processors ...string) {
	if spec.Name == "" || spec.Keys == nil || spec.Values == nil {
		t.fail("store %q: name and serdes are required", spec.Name)
		return
	}
	if _, dup := t.stores[spec.Name]; dup {
		t.fail("duplicate store %q", spec.Name)
		return
	}
	t.stores[spec.Name] = &storeSpec{name: spec.Name, logging: spec.Logging, keys: spec.Keys, values: spec.Values, typ: spec.Type}
	t.storeOr = append(t.storeOr, spec.Name)
	for _, p := range processors {
		t.ConnectStore(p, spec.Name)
	}
}

// StoreProvider is anything that hands out a task's stores: a ProcessorContext, or the test
// driver's view of a task.
type StoreProvider interface {
	rawStore(name string) (*storeInst, error)
}

// GetKeyValueStore returns the typed store name from p; K and V must be the types it was
// registered with.
func GetKeyValueStore[K, V any](p StoreProvider, name string) (KeyValueStore[K, V], error) {
	si, err := p.rawStore(name)
	if err != nil {
		return KeyValueStore[K, V]{}, err
	}
	ks, ok1 := si.spec.keys.(Serde[K])
	vs, ok2 := si.spec.values.(Serde[V])
	if !ok1 || !ok2 {
		return KeyValueStore[K, V]{}, fmt.Errorf("%w: store %q has other key/value types", ErrUnknownStore, name)
	}
	return KeyValueStore[K, V]{s: si, ks: ks, vs: vs}, nil
}
