package streams

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cacheBudget is the record cache's size limit (statestore.cache.max.bytes), shared by every
// cached store of the tasks one goroutine processes, as Kafka Streams shares one cache per
// stream thread. used counts the bytes of all their entries.
//
// Not safe for concurrent use: only the processing goroutine changes it (puts, flushes,
// evictions, closes); standby tasks and restores never write through a cache.
type cacheBudget struct {
	max  int64
	used int64
}

// cacheEntryOverhead is what an entry costs beyond its key and value: the entry itself, its
// map slot and its place in the dirty list.
const cacheEntryOverhead = 96

// cacheEntry is one key of a store's cache. value nil is a deletion not yet flushed (dirty)
// or a key known to be absent from the store (clean).
type cacheEntry struct {
	key        string
	value      []byte
	dirty      bool
	ts         int64 // the record time of the write that made it dirty
	headers    []kgo.RecordHeader
	prev, next *cacheEntry // LRU list, most recently used at the head
}

func (e *cacheEntry) size() int64 { return int64(len(e.key)+len(e.value)) + cacheEntryOverhead }

// storeCache is the record cache in front of one task's store (Kafka's caching layer): reads
// look in it first; writes stay in it, dirty, until it is flushed, which writes each dirty
// key's latest value to the store and its changelog and hands it to the flush listener (the
// processor that owns the store forwards it downstream). Several updates of one key between
// two flushes thus become one store write, one changelog record and one downstream record.
// A flush happens at every commit, before the store is scanned, and when a write takes the
// budget over its limit; clean entries are then evicted least recently used first.
//
// Invariants: every dirty entry is in dirty exactly once, in the order it became dirty;
// lru holds every entry; the budget's used includes size() of every entry. Only the task's
// goroutine writes; interactive queries read under the application's store lock (shared)
// while the processing goroutine, which holds it exclusively while it writes, waits.
type storeCache struct {
	si      *storeInst
	budget  *cacheBudget
	m       map[string]*cacheEntry
	dirty   []*cacheEntry
	head    *cacheEntry // most recently used
	tail    *cacheEntry // least recently used
	onFlush func(k, v []byte, ts int64, headers []kgo.RecordHeader) error
}

func newStoreCache(si *storeInst, b *cacheBudget) *storeCache {
	return &storeCache{si: si, budget: b, m: map[string]*cacheEntry{}}
}

func (c *storeCache) unlink(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *storeCache) pushFront(e *cacheEntry) {
	e.next = c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

// lookup returns the cached value of k: found reports whether the cache knows the key at
// all; a known key with a nil value is absent. touch marks it recently used (the task's
// reads do; queries from other goroutines must not).
func (c *storeCache) lookup(k []byte, touch bool) (v []byte, found bool) {
	e, ok := c.m[string(k)]
	if !ok {
		return nil, false
	}
	if touch && c.head != e {
		c.unlink(e)
		c.pushFront(e)
	}
	return e.value, true
}

// remember caches a value read from the store (nil: absent), clean. It evicts nothing: a
// read never flushes; the next write makes room.
func (c *storeCache) remember(k, v []byte) {
	if _, ok := c.m[string(k)]; ok {
		return
	}
	e := &cacheEntry{key: string(k), value: v}
	c.m[e.key] = e
	c.pushFront(e)
	c.budget.used += e.size()
}

// put records a write of k (v nil: a deletion) made by the record at ts.
func (c *storeCache) put(k, v []byte, ts int64, headers []kgo.RecordHeader) error {
	if v != nil {
		// A copy: the caller's slice may be reused. (Never the entry's old buffer: it may
		// have been handed to a reader or to the changelog's producer.)
		v = append(make([]byte, 0, len(v)), v...)
	}
	// A processor reads a key just before it writes it, and the read made that key the
	// head of the LRU list: comparing with the head spares a second map lookup.
	e, ok := c.head, c.head != nil && c.head.key == string(k)
	if !ok {
		e, ok = c.m[string(k)]
	}
	if ok {
		c.budget.used -= e.size()
		e.value = v
		if c.head != e {
			c.unlink(e)
			c.pushFront(e)
		}
	} else {
		e = &cacheEntry{key: string(k), value: v}
		c.m[e.key] = e
		c.pushFront(e)
	}
	c.budget.used += e.size()
	e.ts, e.headers = ts, headers
	if !e.dirty {
		e.dirty = true
		c.dirty = append(c.dirty, e)
	}
	return c.evict()
}

// evict brings the budget back under its limit by dropping this store's least recently
// used entries; reaching a dirty one flushes the whole store first, as Kafka does.
func (c *storeCache) evict() error {
	for c.budget.used > c.budget.max && c.tail != nil {
		e := c.tail
		if e.dirty {
			if err := c.flush(); err != nil {
				return err
			}
			continue // the flush's listeners may have written: look again
		}
		c.unlink(e)
		delete(c.m, e.key)
		c.budget.used -= e.size()
	}
	return nil
}

// flush writes every dirty entry, oldest first, to the store (one batch on Pebble) and its
// changelog, then hands each to the listener. Entries stay cached, clean. A listener's
// error does not stop the others; the first one is returned.
func (c *storeCache) flush() error {
	var first error
	for len(c.dirty) > 0 { // a listener may write this store again: flush those writes too
		batch := c.dirty
		c.dirty = nil
		live := batch[:0]
		for _, e := range batch {
			if e.dirty {
				e.dirty = false
				live = append(live, e)
			}
		}
		keys, err := c.si.writeEntries(live)
		if err != nil {
			return err
		}
		if c.onFlush == nil {
			continue
		}
		for i, e := range live {
			if err := c.onFlush(keys[i], e.value, e.ts, e.headers); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// expireAll removes keys from the store without forwarding their deletions (retention):
// pending updates of those keys are flushed first, so that downstream sees each key's last
// value; then the deletions go to the store (one batch on Pebble) and the changelog.
func (c *storeCache) expireAll(keys [][]byte, ts int64) error {
	var pending []*cacheEntry
	for _, k := range keys {
		if e, ok := c.m[string(k)]; ok && e.dirty {
			e.dirty = false
			pending = append(pending, e)
		}
	}
	pkeys, err := c.si.writeEntries(pending)
	if err != nil {
		return err
	}
	var first error
	if c.onFlush != nil {
		for i, e := range pending {
			if err := c.onFlush(pkeys[i], e.value, e.ts, e.headers); err != nil && first == nil {
				first = err
			}
		}
	}
	tombs := make([]*cacheEntry, 0, len(keys))
	for _, k := range keys {
		c.drop(k)
		tombs = append(tombs, &cacheEntry{key: string(k), ts: ts})
	}
	if _, err := c.si.writeEntries(tombs); err != nil {
		return err
	}
	return first
}

// drop forgets k (its store entry was written directly).
func (c *storeCache) drop(k []byte) {
	if e, ok := c.m[string(k)]; ok {
		c.unlink(e)
		delete(c.m, e.key)
		c.budget.used -= e.size()
		e.dirty = false
	}
}

// clear forgets every entry, dirty ones included (the store is closed or wiped).
func (c *storeCache) clear() {
	for _, e := range c.m {
		c.budget.used -= e.size()
		e.dirty = false
	}
	c.m = map[string]*cacheEntry{}
	c.dirty, c.head, c.tail = nil, nil, nil
}

// compare orders two store keys as the store below iterates them: bytes for a key-value
// store; for window and session stores (suffixKV) by the length of the key before its
// times first, as suffixKV keeps them.
func (c *storeCache) compare(a, b string) int {
	if sfx := c.si.spec.suffix; sfx > 0 {
		na, nb := max(len(a)-sfx, 0), max(len(b)-sfx, 0)
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	return strings.Compare(a, b)
}

// scan merges the cache into a scan of the store: the keys in [from, to] in the store's
// order, a cached value replacing the stored one and a cached deletion hiding it.
func (c *storeCache) scan(from, to []byte, fn func(k, v []byte) bool) {
	var hits []*cacheEntry
	for _, e := range c.m {
		if (from == nil || c.compare(e.key, string(from)) >= 0) && (to == nil || c.compare(e.key, string(to)) <= 0) {
			hits = append(hits, e)
		}
	}
	slices.SortFunc(hits, func(a, b *cacheEntry) int { return c.compare(a.key, b.key) })
	i, stop := 0, false
	// emit hands the cached entries before k (all of them when k is nil) to fn.
	emit := func(k []byte) {
		for ; !stop && i < len(hits) && (k == nil || c.compare(hits[i].key, string(k)) < 0); i++ {
			if hits[i].value != nil && !fn([]byte(hits[i].key), hits[i].value) {
				stop = true
			}
		}
	}
	c.si.kv.scan(from, to, func(k, v []byte) bool {
		if emit(k); stop {
			return false
		}
		if i < len(hits) && hits[i].key == string(k) {
			e := hits[i]
			i++
			if e.value == nil {
				return true
			}
			v = e.value
		}
		if !fn(k, v) {
			stop = true
		}
		return !stop
	})
	emit(nil)
}
