package streams

import (
	"encoding/binary"
	"slices"
	"time"
)

// slidingProc maintains sliding windows. It keeps the raw records of each key for as long as
// an open window may need them (store raw: key = length-prefixed key + time, value = the
// values seen at that time, each length-prefixed) and recomputes every window a record
// changes from them, so out-of-order records land in exactly the windows Kafka's sliding
// windows define.
type slidingProc[K, V, A any] struct {
	ctx         *nodeCtx
	store, raw  string
	ws          WindowStore[K, A]
	rs          *storeInst
	keys        Serde[K]
	values      Serde[V]
	diff, grace int64
	step        func(K, V, A, bool) A
	exp         expiry
}

func (p *slidingProc[K, V, A]) init(c *nodeCtx) (err error) {
	p.ctx = c
	if p.ws, err = GetWindowStore[K, A](c, p.store); err != nil {
		return err
	}
	p.rs, err = c.rawStore(p.raw)
	return err
}

func (p *slidingProc[K, V, A]) close() {}

func rawKey(kb []byte, ts int64) []byte {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 12+len(kb)), uint32(len(kb)))
	return appendTimes(append(b, kb...), ts)
}

func (p *slidingProc[K, V, A]) process(r rec) error {
	if r.key == nil || r.value == nil {
		return nil
	}
	p.exp.observe(r.ts)
	closeTime := p.exp.observed - p.grace
	ts, d := r.ts, p.diff
	// Both ends of a sliding window are inclusive: it is open while its end is at or after
	// close time.
	if ts+d < closeTime { // every window that could hold it has closed
		p.ctx.t.recordDropped()
		return nil
	}
	k := as[K](r.key)
	kb, err := p.keys.Serialize(p.rs.changelog, k)
	if err != nil {
		return err
	}
	kb = append([]byte(nil), kb...)
	vb, err := p.values.Serialize(p.rs.changelog, as[V](r.value))
	if err != nil {
		return err
	}
	own := rawKey(kb, ts)
	prev, existed := p.rs.kv.get(own)
	buf := binary.BigEndian.AppendUint32(append([]byte(nil), prev...), uint32(len(vb)))
	if err := p.rs.put(own, append(buf, vb...)); err != nil {
		return err
	}

	var times []int64
	p.rs.kv.scan(rawKey(kb, max(ts-d-1, 0)), rawKey(kb, ts+d+1), func(key, _ []byte) bool {
		times = append(times, timeAt(key[len(key)-8:]))
		return true
	})
	var starts []int64
	for _, t := range times {
		switch {
		case t >= ts && t <= ts+d: // left window of a record at or after ts
			starts = append(starts, max(t-d, 0))
		case t < ts && t >= ts-d-1: // right window of an earlier record
			starts = append(starts, t+1)
		}
		if t > ts && t <= ts+d+1 && !existed { // the new record's own right window, now non-empty
			starts = append(starts, ts+1)
		}
	}
	slices.Sort(starts)
	for _, s := range slices.Compact(starts) {
		end := s + d
		if end < closeTime {
			continue
		}
		agg, found, err := p.fold(k, kb, s, end)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		if err := p.ws.Put(k, time.UnixMilli(s), agg); err != nil {
			return err
		}
		out := r
		out.key = Windowed[K]{Key: k, Start: time.UnixMilli(s), End: time.UnixMilli(end)}
		out.value = agg
		if err := p.ctx.forward(out); err != nil {
			return err
		}
	}
	if retention := d + p.grace; p.exp.purgeDue(retention) {
		if err := purgeBefore(p.ws.s, p.exp.observed-retention+1); err != nil {
			return err
		}
		return purgeBefore(p.rs, p.exp.observed-p.grace-2*d-2)
	}
	return nil
}

// fold aggregates k's raw records in [start, end], oldest first.
func (p *slidingProc[K, V, A]) fold(k K, kb []byte, start, end int64) (A, bool, error) {
	var agg A
	found := false
	var ferr error
	p.rs.kv.scan(rawKey(kb, start), rawKey(kb, end), func(_, vals []byte) bool {
		for len(vals) >= 4 {
			n := binary.BigEndian.Uint32(vals)
			v, err := p.values.Deserialize(p.rs.changelog, vals[4:4+n])
			if err != nil {
				ferr = err
				return false
			}
			agg = p.step(k, v, agg, found)
			found = true
			vals = vals[4+n:]
		}
		return true
	})
	return agg, found, ferr
}
