package streams

import (
	"encoding/binary"
	"math"
)

// windowEnder is implemented by Windowed keys, so that suppression can read a window's end
// without knowing the key type.
type windowEnder interface{ windowEnd() int64 }

func (w Windowed[K]) windowEnd() int64 { return w.End.UnixMilli() }

// SuppressUntilWindowCloses holds back a windowed table's updates and emits only the final
// result of each window, once stream time reaches the window's end plus its grace period
// (Kafka's suppress(untilWindowCloses(unbounded()))). Emission happens when a record reaches
// the operator, so the last windows close only when later records arrive. The buffer is a
// logged key-value store (restored like any other), keyed by window end so the oldest
// windows leave first. Deletions (sessions merged away) just drop the buffered entry.
func (tb Table[K, V]) SuppressUntilWindowCloses() Table[K, V] {
	if !tb.windowed {
		tb.t.fail("suppress until window closes: table %q is not windowed", tb.node)
		return tb
	}
	store := tb.t.nextName("KTABLE-SUPPRESS-STATE-STORE")
	AddKeyValueStore(tb.t, StoreSpec[[]byte, []byte]{Name: store, Keys: Bytes(), Values: Bytes(), Logging: true})
	keys, values, grace := tb.keys, tb.values, tb.grace
	name := tb.t.nextName("KTABLE-SUPPRESS")
	tb.t.addNode(&node{name: name, kind: kindProcessor, parents: []string{tb.node}, stores: []string{store},
		newProc: func() procNode { return &suppressProc[K, V]{store: store, keys: keys, values: values, grace: grace} }})
	tb.node = name
	return tb
}

type suppressProc[K, V any] struct {
	ctx    *nodeCtx
	store  string
	buf    *storeInst
	keys   Serde[K]
	values Serde[V]
	grace  int64
}

func (p *suppressProc[K, V]) init(c *nodeCtx) (err error) {
	p.ctx = c
	p.buf, err = c.rawStore(p.store)
	return err
}

func (p *suppressProc[K, V]) close() {}

func (p *suppressProc[K, V]) process(r rec) error {
	we, ok := r.key.(windowEnder)
	if !ok {
		return nil
	}
	kb, err := p.keys.Serialize(p.buf.changelog, as[K](r.key))
	if err != nil {
		return err
	}
	bk := appendTimes(make([]byte, 0, 8+len(kb)), we.windowEnd())
	bk = append(bk, kb...)
	if r.value == nil {
		err = p.buf.put(bk, nil)
	} else {
		var vb []byte
		if vb, err = p.values.Serialize(p.buf.changelog, as[V](r.value)); err == nil {
			bv := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(vb)), uint64(r.ts))
			err = p.buf.put(bk, append(bv, vb...))
		}
	}
	if err != nil {
		return err
	}
	now := max(p.ctx.t.streamTime, r.ts)
	if now == math.MinInt64 {
		return nil
	}
	type due struct{ k, v []byte }
	var out []due
	p.buf.kv.scan(nil, nil, func(k, v []byte) bool {
		if timeAt(k)+p.grace > now {
			return false
		}
		out = append(out, due{append([]byte(nil), k...), append([]byte(nil), v...)})
		return true
	})
	for _, d := range out {
		if err := p.buf.put(d.k, nil); err != nil {
			return err
		}
		key, err := p.keys.Deserialize(p.buf.changelog, d.k[8:])
		if err != nil {
			return err
		}
		val, err := p.values.Deserialize(p.buf.changelog, d.v[8:])
		if err != nil {
			return err
		}
		emit := r
		emit.key, emit.value, emit.ts = key, val, int64(binary.BigEndian.Uint64(d.v))
		if err := p.ctx.forward(emit); err != nil {
			return err
		}
	}
	return nil
}
