package streams

import (
	"math"
	"time"
)

// TimeWindows are fixed-size windows on event time: tumbling when Advance is zero or equal to
// Size, hopping (overlapping) when Advance is smaller. A window covers [start, start+Size)
// and starts at a multiple of Advance from the epoch. Records arriving once a window's end
// plus Grace is at or behind stream time are too late for it: they are dropped and counted.
type TimeWindows struct {
	Size    time.Duration
	Advance time.Duration
	Grace   time.Duration
}

// TumblingWindows are non-overlapping windows of size with the given grace.
func TumblingWindows(size, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: size, Grace: grace}
}

// HoppingWindows are windows of size starting every advance, with the given grace.
func HoppingWindows(size, advance, grace time.Duration) TimeWindows {
	return TimeWindows{Size: size, Advance: advance, Grace: grace}
}

// SlidingWindows aggregate, for every record, the records of its key at most TimeDifference
// apart: the windows are [t-TimeDifference, t] for each record time t, plus the window just
// after each record that later records fall into, as Kafka's SlidingWindows. Both ends are
// inclusive; End = Start + TimeDifference.
type SlidingWindows struct {
	TimeDifference time.Duration
	Grace          time.Duration
}

// SessionWindows group a key's records into sessions separated by more than Gap of
// inactivity; a record that bridges two sessions merges them.
type SessionWindows struct {
	Gap   time.Duration
	Grace time.Duration
}

// WindowedGrouped is a grouped stream with time or sliding windows, ready to aggregate into a
// windowed Table backed by a window store.
type WindowedGrouped[K, V any] struct {
	g       Grouped[K, V]
	size    int64
	advance int64
	grace   int64
	sliding bool
}

// WindowedBy windows the grouped stream by fixed time windows.
func (g Grouped[K, V]) WindowedBy(w TimeWindows) WindowedGrouped[K, V] {
	adv := w.Advance
	if adv == 0 {
		adv = w.Size
	}
	if w.Size <= 0 || adv <= 0 || adv > w.Size || w.Grace < 0 {
		g.s.t.fail("time windows: need 0 < advance <= size and grace >= 0 (size %v, advance %v, grace %v)", w.Size, adv, w.Grace)
	}
	return WindowedGrouped[K, V]{g: g, size: w.Size.Milliseconds(), advance: adv.Milliseconds(), grace: w.Grace.Milliseconds()}
}

// SlidingBy windows the grouped stream by sliding windows.
func (g Grouped[K, V]) SlidingBy(w SlidingWindows) WindowedGrouped[K, V] {
	if w.TimeDifference <= 0 || w.Grace < 0 {
		g.s.t.fail("sliding windows: need a positive time difference and grace >= 0")
	}
	return WindowedGrouped[K, V]{g: g, size: w.TimeDifference.Milliseconds(), grace: w.Grace.Milliseconds(), sliding: true}
}

// WindowedCount counts records per key and window. (Windowed aggregations are functions, not
// methods: a method returning Table[Windowed[K], …] would make the generic types recursive.)
func WindowedCount[K, V any](w WindowedGrouped[K, V], store string) Table[Windowed[K], int64] {
	return WindowedAggregate(w, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 }, store, Int64())
}

// WindowedReduce combines the values of each key and window with fn.
func WindowedReduce[K, V any](w WindowedGrouped[K, V], fn func(agg, v V) V, store string) Table[Windowed[K], V] {
	return windowedAggregate(w, store, w.g.values, "KSTREAM-REDUCE", func(_ K, v V, old V, found bool) V {
		if !found {
			return v
		}
		return fn(old, v)
	})
}

// WindowedAggregate folds each key's values per window into an A starting from init(). The
// result is a Table keyed by Windowed[K] whose updates carry each window's new aggregate; its
// key serde is TimeWindowedSerde, so ToStream().To(topic) writes Kafka's windowed key format.
func WindowedAggregate[K, V, A any](w WindowedGrouped[K, V], init func() A, agg func(K, V, A) A, store string, aggSerde Serde[A]) Table[Windowed[K], A] {
	return windowedAggregate(w, store, aggSerde, "KSTREAM-AGGREGATE", func(k K, v V, old A, found bool) A {
		if !found {
			old = init()
		}
		return agg(k, v, old)
	})
}

func windowedAggregate[K, V, A any](w WindowedGrouped[K, V], store string, aggSerde Serde[A], prefix string, step func(K, V, A, bool) A) Table[Windowed[K], A] {
	g := w.g
	t := g.s.t
	store = g.storeName(store)
	s, ok := g.prepare(store)
	if !ok || aggSerde == nil {
		if aggSerde == nil {
			t.fail("windowed aggregate into %q: aggregate serde is required", store)
		}
		return Table[Windowed[K], A]{t: t, node: s.node, store: store}
	}
	size := time.Duration(w.size) * time.Millisecond
	AddWindowStore(t, WindowStoreSpec[K, A]{Name: store, Keys: g.keys, Values: aggSerde, Size: size, Logging: true})
	if !w.sliding {
		t.cacheStore(store)
	}
	stores := []string{store}
	name := t.nextName(prefix)
	var newProc func() procNode
	if w.sliding {
		// Sliding windows are recomputed from the raw records of the span they cover.
		raw := store + "-records"
		AddKeyValueStore(t, StoreSpec[[]byte, []byte]{Name: raw, Keys: Bytes(), Values: Bytes(), Logging: true})
		stores = append(stores, raw)
		newProc = func() procNode {
			return &slidingProc[K, V, A]{store: store, raw: raw, diff: w.size, grace: w.grace, step: step, values: g.values, keys: g.keys}
		}
	} else {
		newProc = func() procNode {
			return &windowAggProc[K, V, A]{store: store, size: w.size, advance: w.advance, grace: w.grace, step: step}
		}
	}
	// The fixed-size window aggregation keeps no record: its user code (initializer,
	// aggregator, serdes) sees concrete types, and what it keeps is serialized in its store.
	t.addNode(&node{name: name, kind: kindProcessor, parents: []string{s.node}, stores: stores, newProc: newProc,
		transient: !w.sliding && concreteKV[K, V]() && concrete[A]()})
	return Table[Windowed[K], A]{t: t, node: name, store: store, keys: TimeWindowedSerde(g.keys, size),
		values: aggSerde, windowed: true, grace: w.grace}
}

// expiry tracks a windowed processor's observed stream time (the largest timestamp that
// reached it, as Kafka's) and purges windows that fell out of retention.
type expiry struct {
	observed  int64
	lastPurge int64
}

func (e *expiry) observe(ts int64) {
	if e.observed == 0 && e.lastPurge == 0 {
		e.observed, e.lastPurge = math.MinInt64, math.MinInt64
	}
	e.observed = max(e.observed, ts)
}

// purgeDue reports whether a purge pass should run now: at most once per quarter retention.
func (e *expiry) purgeDue(retention int64) bool {
	if e.lastPurge != math.MinInt64 && e.observed-e.lastPurge < max(retention/4, 1) {
		return false
	}
	e.lastPurge = e.observed
	return true
}

// purgeBefore deletes (with changelog tombstones) every entry of a window store whose start
// is before limit, so its compacted changelog stays bounded.
func purgeBefore(si *storeInst, limit int64) error { return purgeTimeBefore(si, 8, limit) }

// purgeTimeBefore deletes the entries whose time at back bytes from the end of the key is
// before limit. In a cached store, an expired entry's pending update is flushed first (so
// downstream sees its last value, as a commit would send it); the deletions themselves
// forward nothing.
func purgeTimeBefore(si *storeInst, back int, limit int64) error {
	expired := func(k []byte) bool { return len(k) >= back && timeAt(k[len(k)-back:]) < limit }
	var dead [][]byte
	var seen map[string]bool
	if si.cache != nil { // the cache's keys, unordered: no merged scan needed
		seen = map[string]bool{}
		for k := range si.cache.m {
			// Only the time's bytes are converted to check a key; an expired one is copied.
			if len(k) >= back && expired([]byte(k[len(k)-back:])) {
				seen[k] = true
				dead = append(dead, []byte(k))
			}
		}
	}
	si.kv.scan(nil, nil, func(k, _ []byte) bool {
		if expired(k) && !seen[string(k)] {
			dead = append(dead, append([]byte(nil), k...))
		}
		return true
	})
	if si.cache != nil {
		return si.cache.expireAll(dead, si.task.nowMs())
	}
	for _, k := range dead {
		if err := si.put(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// windowAggProc aggregates a record into every time window containing it.
type windowAggProc[K, V, A any] struct {
	ctx                  *nodeCtx
	store                string
	ws                   WindowStore[K, A]
	size, advance, grace int64
	step                 func(K, V, A, bool) A
	exp                  expiry
	cached               bool // the store's cache forwards the updates
	// kbuf is reused for the store key of each update when cached: the cache copies the
	// keys it keeps, where an uncached write may hand its key to the changelog's producer.
	kbuf []byte
}

func (p *windowAggProc[K, V, A]) init(c *nodeCtx) (err error) {
	p.ctx = c
	if p.ws, err = GetWindowStore[K, A](c, p.store); err != nil {
		return err
	}
	p.cached = p.ws.s.onFlush(c, p.ws.decode)
	return nil
}

func (p *windowAggProc[K, V, A]) close() {}

func (p *windowAggProc[K, V, A]) process(r rec) error {
	if r.key == nil || r.value == nil {
		return nil
	}
	p.exp.observe(r.ts)
	closeTime := p.exp.observed - p.grace
	k, v := as[K](r.key), as[V](r.value)
	first := r.ts - p.size + 1 // earliest start of a window containing ts
	start := max(0, first+((p.advance-first%p.advance)%p.advance))
	dropped := false
	for ; start <= r.ts; start += p.advance {
		end := start + p.size
		if end <= closeTime {
			dropped = true
			continue
		}
		var kb []byte
		var err error
		if p.cached {
			kb, err = p.ws.appendKey(p.kbuf[:0], k, start)
			p.kbuf = kb
		} else {
			kb, err = p.ws.key(k, start)
		}
		if err != nil {
			return err
		}
		old, found, err := p.ws.fetchRaw(kb)
		if err != nil {
			return err
		}
		next := p.step(k, v, old, found)
		if err := p.ws.putRaw(kb, next); err != nil {
			return err
		}
		if p.cached {
			continue
		}
		out := r
		out.key = Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(end)}
		out.value = next
		if err := p.ctx.forward(out); err != nil {
			return err
		}
	}
	if dropped {
		p.ctx.t.recordDropped()
	}
	if retention := p.size + p.grace; p.exp.purgeDue(retention) {
		return purgeBefore(p.ws.s, p.exp.observed-retention+1)
	}
	return nil
}
