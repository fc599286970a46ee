package streams

import (
	"encoding/binary"
	"time"
)

// joinKind says which unmatched rows a join keeps.
type joinKind int

const (
	innerJoin joinKind = iota
	leftJoin
	outerJoin
)

// forJoin returns the stream ready to be joined by key: repartitioned through
// "<application.id>-<name>-repartition" if its key changed upstream, so that records meet
// the other side's rows of the same key in the same task.
func (s Stream[K, V]) forJoin(name string) Stream[K, V] {
	if !s.keyChanged {
		return s
	}
	return s.Repartition(name, nil, nil)
}

// materialized returns tb with a store that holds exactly its rows: tb itself when its store
// is written by its own node, otherwise tb materialized into a new logged store.
func (tb Table[K, V]) materialized() Table[K, V] {
	if tb.node == tb.storeNode || tb.keys == nil || tb.values == nil {
		if tb.keys == nil || tb.values == nil {
			tb.t.fail("join: table %q needs key and value serdes", tb.node)
		}
		return tb
	}
	store := tb.t.nextName("KTABLE-MATERIALIZE-STATE-STORE")
	AddKeyValueStore(tb.t, StoreSpec[K, V]{Name: store, Keys: tb.keys, Values: tb.values, Logging: true})
	name := tb.t.nextName("KTABLE-MATERIALIZE")
	tb.t.addNode(&node{name: name, kind: kindProcessor, parents: []string{tb.node}, stores: []string{store},
		newProc: func() procNode { return &tableSourceProc[K, V]{store: store} }})
	tb.node, tb.store, tb.storeNode = name, store, name
	return tb
}

// JoinStreamTable joins each stream record with the table's current row for its key (inner:
// records without a row are dropped). Table updates produce no output, as in Kafka.
func JoinStreamTable[K, V, VT, VR any](s Stream[K, V], tb Table[K, VT], joiner func(K, V, VT) VR) Stream[K, VR] {
	return streamTableJoin(s, tb, innerJoin, func(k K, v V, vt *VT) VR { return joiner(k, v, *vt) })
}

// LeftJoinStreamTable is JoinStreamTable keeping records without a row (joiner gets nil).
func LeftJoinStreamTable[K, V, VT, VR any](s Stream[K, V], tb Table[K, VT], joiner func(K, V, *VT) VR) Stream[K, VR] {
	return streamTableJoin(s, tb, leftJoin, joiner)
}

func streamTableJoin[K, V, VT, VR any](s Stream[K, V], tb Table[K, VT], kind joinKind, joiner func(K, V, *VT) VR) Stream[K, VR] {
	tb = tb.materialized()
	name := s.t.nextName("KSTREAM-JOIN")
	s = s.forJoin(name)
	store := tb.store
	s.t.addNode(&node{name: name, kind: kindProcessor, parents: []string{s.node}, stores: []string{store},
		newProc: func() procNode {
			return &lookupJoinProc[K, V, K, VT, VR]{store: store, kind: kind, joiner: joiner,
				keyOf: func(k K, _ V) K { return k }}
		}})
	return Stream[K, VR]{t: s.t, node: name, keys: s.keys, values: serdeOf[VR](s.values)}
}

// lookupJoinProc joins stream records with rows looked up in a key-value store (a table's,
// or a global table's).
type lookupJoinProc[K, V, KT, VT, VR any] struct {
	ctx    *nodeCtx
	store  string
	kv     KeyValueStore[KT, VT]
	kind   joinKind
	keyOf  func(K, V) KT
	joiner func(K, V, *VT) VR
	// nullKeys: look up keyOf's result even for a null stream key (global tables, whose key
	// comes from the mapper rather than from the stream's key).
	nullKeys bool
}

func (p *lookupJoinProc[K, V, KT, VT, VR]) init(c *nodeCtx) (err error) {
	p.ctx = c
	p.kv, err = GetKeyValueStore[KT, VT](c, p.store)
	return err
}

func (p *lookupJoinProc[K, V, KT, VT, VR]) close() {}

func (p *lookupJoinProc[K, V, KT, VT, VR]) process(r rec) error {
	if r.value == nil {
		return nil // Kafka drops null-valued stream records in joins
	}
	k, v := as[K](r.key), as[V](r.value)
	var row *VT
	if r.key != nil || p.nullKeys { // a null key finds no row; a left join still emits
		vt, ok, err := p.kv.Get(p.keyOf(k, v))
		if err != nil {
			return err
		}
		if ok {
			row = &vt
		}
	}
	if row == nil && p.kind == innerJoin {
		return nil
	}
	r.value = p.joiner(k, v, row)
	return p.ctx.forward(r)
}

// JoinTables joins two tables on their key: the result holds a row where both have one.
// The result is materialized in store (generated name if empty), so a change that leaves the
// result absent is forwarded as a deletion only if a result row existed.
func JoinTables[K, VA, VB, VR any](a Table[K, VA], b Table[K, VB], joiner func(K, VA, VB) VR, store string, values Serde[VR]) Table[K, VR] {
	return tableJoin(a, b, innerJoin, func(k K, va *VA, vb *VB) VR { return joiner(k, *va, *vb) }, store, values)
}

// LeftJoinTables keeps every row of a; joiner gets nil when b has no row.
func LeftJoinTables[K, VA, VB, VR any](a Table[K, VA], b Table[K, VB], joiner func(K, VA, *VB) VR, store string, values Serde[VR]) Table[K, VR] {
	return tableJoin(a, b, leftJoin, func(k K, va *VA, vb *VB) VR { return joiner(k, *va, vb) }, store, values)
}

// OuterJoinTables keeps every row of either table; joiner gets nil for the side without one.
func OuterJoinTables[K, VA, VB, VR any](a Table[K, VA], b Table[K, VB], joiner func(K, *VA, *VB) VR, store string, values Serde[VR]) Table[K, VR] {
	return tableJoin(a, b, outerJoin, joiner, store, values)
}

func tableJoin[K, VA, VB, VR any](a Table[K, VA], b Table[K, VB], kind joinKind, joiner func(K, *VA, *VB) VR, store string, values Serde[VR]) Table[K, VR] {
	t := a.t
	a, b = a.materialized(), b.materialized()
	if values == nil || a.keys == nil {
		t.fail("table join: result value serde is required")
		return Table[K, VR]{t: t, node: a.node}
	}
	if store == "" {
		store = t.nextName("KTABLE-JOIN-STATE-STORE")
	}
	AddKeyValueStore(t, StoreSpec[K, VR]{Name: store, Keys: a.keys, Values: values, Logging: true})
	stores := []string{a.store, b.store, store}
	an, bn, out := t.nextName("KTABLE-JOINTHIS"), t.nextName("KTABLE-JOINOTHER"), t.nextName("KTABLE-MERGE")
	mk := func(left bool) func() procNode {
		return func() procNode {
			return &tableJoinProc[K, VA, VB, VR]{left: left, a: a.store, b: b.store, out: store, kind: kind, joiner: joiner}
		}
	}
	t.addNode(&node{name: an, kind: kindProcessor, parents: []string{a.node}, stores: stores, newProc: mk(true)})
	t.addNode(&node{name: bn, kind: kindProcessor, parents: []string{b.node}, stores: stores, newProc: mk(false)})
	t.addFn2(out, []string{an, bn})
	return Table[K, VR]{t: t, node: out, store: store, keys: a.keys, values: values, storeNode: out}
}

// addFn2 adds a pass-through node with a given name (the merge point of two join sides).
func (t *Topology) addFn2(name string, parents []string) {
	t.addNode(&node{name: name, kind: kindProcessor, parents: parents,
		newProc: func() procNode { return &fnProc{f: func(c *nodeCtx, r rec) error { return c.forward(r) }} }})
}

// tableJoinProc recomputes a key's joined row when either side changes. Each side's table
// node has already updated its own store, so both current rows are read from the stores.
type tableJoinProc[K, VA, VB, VR any] struct {
	ctx       *nodeCtx
	left      bool
	a, b, out string
	as        KeyValueStore[K, VA]
	bs        KeyValueStore[K, VB]
	os        KeyValueStore[K, VR]
	kind      joinKind
	joiner    func(K, *VA, *VB) VR
}

func (p *tableJoinProc[K, VA, VB, VR]) init(c *nodeCtx) (err error) {
	p.ctx = c
	if p.as, err = GetKeyValueStore[K, VA](c, p.a); err != nil {
		return err
	}
	if p.bs, err = GetKeyValueStore[K, VB](c, p.b); err != nil {
		return err
	}
	p.os, err = GetKeyValueStore[K, VR](c, p.out)
	return err
}

func (p *tableJoinProc[K, VA, VB, VR]) close() {}

func (p *tableJoinProc[K, VA, VB, VR]) process(r rec) error {
	if r.key == nil {
		return nil
	}
	k := as[K](r.key)
	va, okA, err := p.as.Get(k)
	if err != nil {
		return err
	}
	vb, okB, err := p.bs.Get(k)
	if err != nil {
		return err
	}
	var pa *VA
	var pb *VB
	if okA {
		pa = &va
	}
	if okB {
		pb = &vb
	}
	keep := okA && okB || p.kind == leftJoin && okA || p.kind == outerJoin && (okA || okB)
	if !keep {
		if _, had, err := p.os.Get(k); err != nil || !had {
			return err
		}
		if err := p.os.Delete(k); err != nil {
			return err
		}
		r.value = nil
		return p.ctx.forward(r)
	}
	res := p.joiner(k, pa, pb)
	if err := p.os.Put(k, res); err != nil {
		return err
	}
	r.value = res
	return p.ctx.forward(r)
}

// JoinWindows bound a stream–stream join: a left record at t joins right records of the same
// key at t-Before … t+After. Records arriving after stream time passed their time plus the
// larger bound plus Grace are dropped and counted.
type JoinWindows struct {
	Before, After time.Duration
	Grace         time.Duration
}

// JoinWindowsOf is the symmetric window: records at most d apart join.
func JoinWindowsOf(d, grace time.Duration) JoinWindows {
	return JoinWindows{Before: d, After: d, Grace: grace}
}

// JoinStreams joins two streams of the same key within the window. Each pair emits one record
// with the later of the two timestamps. Both sides are buffered in logged stores.
func JoinStreams[K, VA, VB, VR any](a Stream[K, VA], b Stream[K, VB], w JoinWindows, joiner func(K, VA, VB) VR) Stream[K, VR] {
	return streamJoin(a, b, w, innerJoin, func(k K, va *VA, vb *VB) VR { return joiner(k, *va, *vb) })
}

// LeftJoinStreams also emits each left record that found no partner, with nil, once its
// window has closed (so no result is emitted that a later partner would contradict, as in
// Kafka since 3.1).
func LeftJoinStreams[K, VA, VB, VR any](a Stream[K, VA], b Stream[K, VB], w JoinWindows, joiner func(K, VA, *VB) VR) Stream[K, VR] {
	return streamJoin(a, b, w, leftJoin, func(k K, va *VA, vb *VB) VR { return joiner(k, *va, vb) })
}

// OuterJoinStreams emits unmatched records of either side, with nil for the other, once
// their windows have closed.
func OuterJoinStreams[K, VA, VB, VR any](a Stream[K, VA], b Stream[K, VB], w JoinWindows, joiner func(K, *VA, *VB) VR) Stream[K, VR] {
	return streamJoin(a, b, w, outerJoin, joiner)
}

func streamJoin[K, VA, VB, VR any](a Stream[K, VA], b Stream[K, VB], w JoinWindows, kind joinKind, joiner func(K, *VA, *VB) VR) Stream[K, VR] {
	t := a.t
	ks := serdeOf[K](a.keys)
	vas, vbs := serdeOf[VA](a.values), serdeOf[VB](b.values)
	if ks == nil || vas == nil || vbs == nil {
		t.fail("stream join: key and value serdes of both sides are required (repartition with serdes first)")
		return Stream[K, VR]{t: t, node: a.node}
	}
	if w.Before < 0 || w.After < 0 || w.Grace < 0 {
		t.fail("stream join: negative window")
	}
	an, bn := t.nextName("KSTREAM-JOINTHIS"), t.nextName("KSTREAM-JOINOTHER")
	a, b = a.forJoin(an), b.forJoin(bn)
	sa, sb, so := an+"-store", bn+"-store", an+"-outer-store"
	stores := []string{sa, sb}
	for _, s := range []string{sa, sb} {
		AddKeyValueStore(t, StoreSpec[[]byte, []byte]{Name: s, Keys: Bytes(), Values: Bytes(), Logging: true})
	}
	if kind != innerJoin {
		AddKeyValueStore(t, StoreSpec[[]byte, []byte]{Name: so, Keys: Bytes(), Values: Bytes(), Logging: true})
		stores = append(stores, so)
	} else {
		so = ""
	}
	shared := &joinShared[K, VA, VB, VR]{keys: ks, va: vas, vb: vbs, kind: kind, joiner: joiner,
		before: w.Before.Milliseconds(), after: w.After.Milliseconds(), grace: w.Grace.Milliseconds()}
	mk := func(left bool) func() procNode {
		return func() procNode { return &streamJoinProc[K, VA, VB, VR]{sh: shared, left: left, sa: sa, sb: sb, so: so} }
	}
	t.addNode(&node{name: an, kind: kindProcessor, parents: []string{a.node}, stores: stores, newProc: mk(true)})
	t.addNode(&node{name: bn, kind: kindProcessor, parents: []string{b.node}, stores: stores, newProc: mk(false)})
	out := t.nextName("KSTREAM-MERGE")
	t.addFn2(out, []string{an, bn})
	return Stream[K, VR]{t: t, node: out, keys: ks}
}

// joinShared is the read-only configuration both sides of a stream join share.
type joinShared[K, VA, VB, VR any] struct {
	keys                 Serde[K]
	va                   Serde[VA]
	vb                   Serde[VB]
	kind                 joinKind
	joiner               func(K, *VA, *VB) VR
	before, after, grace int64
}

// streamJoinProc is one side of a stream–stream join. Both sides' records are kept in raw
// stores (length-prefixed key + time → the values at that time); left and outer joins also
// keep records still without a partner in the outer store, keyed time + side + key, so the
// oldest are emitted first once their window closes. A partner arriving removes the entry:
// matching depends only on key and time, so every value under one entry matches alike.
type streamJoinProc[K, VA, VB, VR any] struct {
	ctx        *nodeCtx
	sh         *joinShared[K, VA, VB, VR]
	left       bool
	sa, sb, so string
	mine, oth  *storeInst
	outer      *storeInst
}

func (p *streamJoinProc[K, VA, VB, VR]) init(c *nodeCtx) (err error) {
	p.ctx = c
	mine, oth := p.sa, p.sb
	if !p.left {
		mine, oth = oth, mine
	}
	if p.mine, err = c.rawStore(mine); err != nil {
		return err
	}
	if p.oth, err = c.rawStore(oth); err != nil {
		return err
	}
	if p.so != "" {
		p.outer, err = c.rawStore(p.so)
	}
	return err
}

func (p *streamJoinProc[K, VA, VB, VR]) close() {}

func appendValue(list, v []byte) []byte {
	list = binary.BigEndian.AppendUint32(append([]byte(nil), list...), uint32(len(v)))
	return append(list, v...)
}

func eachValue(list []byte, fn func([]byte) error) error {
	for len(list) >= 4 {
		n := binary.BigEndian.Uint32(list)
		if err := fn(list[4 : 4+n]); err != nil {
			return err
		}
		list = list[4+n:]
	}
	return nil
}

func outerKey(ts int64, left bool, kb []byte) []byte {
	side := byte(1)
	if left {
		side = 0
	}
	b := append(appendTimes(nil, ts), side)
	b = binary.BigEndian.AppendUint32(b, uint32(len(kb)))
	return append(b, kb...)
}

func (p *streamJoinProc[K, VA, VB, VR]) process(r rec) error {
	sh := p.sh
	if r.key == nil || r.value == nil {
		return nil
	}
	now := max(p.ctx.t.streamTime, r.ts)
	span := max(sh.before, sh.after)
	if r.ts+span+sh.grace < now {
		p.ctx.t.recordDropped()
		return nil
	}
	k := as[K](r.key)
	kb, err := sh.keys.Serialize(p.mine.changelog, k)
	if err != nil {
		return err
	}
	kb = append([]byte(nil), kb...)
	var vb []byte
	if p.left {
		vb, err = sh.va.Serialize(p.mine.changelog, as[VA](r.value))
	} else {
		vb, err = sh.vb.Serialize(p.mine.changelog, as[VB](r.value))
	}
	if err != nil {
		return err
	}
	own := rawKey(kb, r.ts)
	prev, _ := p.mine.kv.get(own)
	if err := p.mine.put(own, appendValue(prev, vb)); err != nil {
		return err
	}
	// A left record at t meets right records in [t-before, t+after]; a right one at t meets
	// left records in [t-after, t+before].
	lo, hi := r.ts-sh.before, r.ts+sh.after
	if !p.left {
		lo, hi = r.ts-sh.after, r.ts+sh.before
	}
	type hit struct {
		ts   int64
		vals []byte
	}
	var hits []hit
	p.oth.kv.scan(rawKey(kb, max(lo, 0)), rawKey(kb, hi), func(key, vals []byte) bool {
		hits = append(hits, hit{timeAt(key[len(key)-8:]), append([]byte(nil), vals...)})
		return true
	})
	for _, h := range hits {
		if p.outer != nil {
			if err := p.outer.put(outerKey(h.ts, !p.left, kb), nil); err != nil {
				return err
			}
		}
		err := eachValue(h.vals, func(ob []byte) error {
			out := r
			out.ts = max(r.ts, h.ts)
			if p.left {
				vo, err := sh.vb.Deserialize(p.oth.changelog, ob)
				if err != nil {
					return err
				}
				va := as[VA](r.value)
				out.value = sh.joiner(k, &va, &vo)
			} else {
				vo, err := sh.va.Deserialize(p.oth.changelog, ob)
				if err != nil {
					return err
				}
				vb := as[VB](r.value)
				out.value = sh.joiner(k, &vo, &vb)
			}
			return p.ctx.forward(out)
		})
		if err != nil {
			return err
		}
	}
	if len(hits) == 0 && p.outer != nil && (p.left || sh.kind == outerJoin) {
		ok := outerKey(r.ts, p.left, kb)
		prev, _ := p.outer.kv.get(ok)
		if err := p.outer.put(ok, appendValue(prev, vb)); err != nil {
			return err
		}
	}
	if err := p.emitClosed(r, now); err != nil {
		return err
	}
	// Records older than this can meet no record that is still accepted.
	limit := now - 2*span - sh.grace - 1
	if err := purgeBefore(p.mine, limit); err != nil {
		return err
	}
	return purgeBefore(p.oth, limit)
}

// emitClosed emits the unmatched records whose window has closed: a left record at t once
// stream time passes t+after+grace (no right record can still join it), a right one at t
// once it passes t+before+grace.
func (p *streamJoinProc[K, VA, VB, VR]) emitClosed(r rec, now int64) error {
	if p.outer == nil {
		return nil
	}
	sh := p.sh
	type due struct {
		key, vals []byte
		ts        int64
		left      bool
	}
	var out []due
	p.outer.kv.scan(nil, nil, func(key, vals []byte) bool {
		ts := timeAt(key)
		if ts+min(sh.before, sh.after)+sh.grace >= now {
			return false // later entries are newer still
		}
		left := key[8] == 0
		wait := sh.before
		if left {
			wait = sh.after
		}
		if ts+wait+sh.grace < now {
			out = append(out, due{append([]byte(nil), key...), append([]byte(nil), vals...), ts, left})
		}
		return true
	})
	for _, d := range out {
		if err := p.outer.put(d.key, nil); err != nil {
			return err
		}
		k, err := sh.keys.Deserialize(p.outer.changelog, d.key[13:])
		if err != nil {
			return err
		}
		err = eachValue(d.vals, func(vb []byte) error {
			emit := r
			emit.key, emit.ts = k, d.ts
			if d.left {
				va, err := sh.va.Deserialize(p.outer.changelog, vb)
				if err != nil {
					return err
				}
				emit.value = sh.joiner(k, &va, nil)
			} else {
				v, err := sh.vb.Deserialize(p.outer.changelog, vb)
				if err != nil {
					return err
				}
				emit.value = sh.joiner(k, nil, &v)
			}
			return p.ctx.forward(emit)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
