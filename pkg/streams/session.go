package streams

import (
	"time"
)

// SessionGrouped is a grouped stream with session windows, ready to aggregate into a
// session-windowed Table backed by a session store.
type SessionGrouped[K, V any] struct {
	g          Grouped[K, V]
	gap, grace int64
}

// SessionBy windows the grouped stream by sessions.
func (g Grouped[K, V]) SessionBy(w SessionWindows) SessionGrouped[K, V] {
	if w.Gap <= 0 || w.Grace < 0 {
		g.s.t.fail("session windows: need a positive gap and grace >= 0")
	}
	return SessionGrouped[K, V]{g: g, gap: w.Gap.Milliseconds(), grace: w.Grace.Milliseconds()}
}

// SessionCount counts records per key and session.
func SessionCount[K, V any](s SessionGrouped[K, V], store string) Table[Windowed[K], int64] {
	return SessionAggregate(s, func() int64 { return 0 }, func(_ K, _ V, n int64) int64 { return n + 1 },
		func(_ K, a, b int64) int64 { return a + b }, store, Int64())
}

// SessionReduce combines each session's values with fn; merging sessions reduces their
// aggregates with fn too.
func SessionReduce[K, V any](s SessionGrouped[K, V], fn func(agg, v V) V, store string) Table[Windowed[K], V] {
	return sessionAggregate(s, store, s.g.values, func(_ K, v V, acc V, found bool) V {
		if !found {
			return v
		}
		return fn(acc, v)
	}, func(_ K, a, b V) V { return fn(a, b) })
}

// SessionAggregate folds each session's values into an A starting from init(); when a record
// bridges sessions their aggregates are combined with merge. Updates carry the new session's
// aggregate; a session absorbed into another is forwarded as a deletion (nil value), as
// Kafka does. The key serde is SessionWindowedSerde.
func SessionAggregate[K, V, A any](s SessionGrouped[K, V], init func() A, agg func(K, V, A) A, merge func(K, A, A) A, store string, aggSerde Serde[A]) Table[Windowed[K], A] {
	return sessionAggregate(s, store, aggSerde, func(k K, v V, acc A, found bool) A {
		if !found {
			acc = init()
		}
		return agg(k, v, acc)
	}, merge)
}

func sessionAggregate[K, V, A any](sg SessionGrouped[K, V], store string, aggSerde Serde[A], step func(K, V, A, bool) A, merge func(K, A, A) A) Table[Windowed[K], A] {
	g := sg.g
	t := g.s.t
	store = g.storeName(store)
	s, ok := g.prepare(store)
	if !ok || aggSerde == nil || merge == nil {
		if aggSerde == nil || merge == nil {
			t.fail("session aggregate into %q: aggregate serde and merger are required", store)
		}
		return Table[Windowed[K], A]{t: t, node: s.node, store: store}
	}
	AddSessionStore(t, StoreSpec[K, A]{Name: store, Keys: g.keys, Values: aggSerde, Logging: true})
	name := t.nextName("KSTREAM-SESSION-AGGREGATE")
	t.addNode(&node{name: name, kind: kindProcessor, parents: []string{s.node}, stores: []string{store},
		newProc: func() procNode {
			return &sessionProc[K, V, A]{store: store, gap: sg.gap, grace: sg.grace, step: step, merge: merge}
		}})
	return Table[Windowed[K], A]{t: t, node: name, store: store, keys: SessionWindowedSerde(g.keys),
		// A session can still grow until stream time passes its end plus the gap, so for
		// suppression it closes only after end + gap + grace.
		values: aggSerde, windowed: true, grace: sg.gap + sg.grace}
}

type sessionProc[K, V, A any] struct {
	ctx        *nodeCtx
	store      string
	ss         SessionStore[K, A]
	gap, grace int64
	step       func(K, V, A, bool) A
	merge      func(K, A, A) A
	exp        expiry
}

func (p *sessionProc[K, V, A]) init(c *nodeCtx) (err error) {
	p.ctx = c
	p.ss, err = GetSessionStore[K, A](c, p.store)
	return err
}

func (p *sessionProc[K, V, A]) close() {}

func (p *sessionProc[K, V, A]) process(r rec) error {
	if r.key == nil || r.value == nil {
		return nil
	}
	p.exp.observe(r.ts)
	closeTime := p.exp.observed - p.grace
	k, v := as[K](r.key), as[V](r.value)
	type sess struct {
		w Windowed[K]
		a A
	}
	var overlap []sess
	err := p.ss.FindSessions(k, time.UnixMilli(r.ts-p.gap), time.UnixMilli(r.ts+p.gap), func(w Windowed[K], a A) bool {
		overlap = append(overlap, sess{w, a})
		return true
	})
	if err != nil {
		return err
	}
	start, end := r.ts, r.ts
	var acc A
	found := false
	for _, s := range overlap {
		start, end = min(start, s.w.Start.UnixMilli()), max(end, s.w.End.UnixMilli())
		if found {
			acc = p.merge(k, acc, s.a)
		} else {
			acc, found = s.a, true
		}
	}
	if end < closeTime {
		p.ctx.t.recordDropped()
		return nil
	}
	acc = p.step(k, v, acc, found)
	merged := Windowed[K]{Key: k, Start: time.UnixMilli(start), End: time.UnixMilli(end)}
	for _, s := range overlap {
		if s.w.Start.Equal(merged.Start) && s.w.End.Equal(merged.End) {
			continue
		}
		if err := p.ss.Remove(s.w); err != nil {
			return err
		}
		gone := r
		gone.key, gone.value = s.w, nil
		if err := p.ctx.forward(gone); err != nil {
			return err
		}
	}
	if err := p.ss.Put(merged, acc); err != nil {
		return err
	}
	out := r
	out.key, out.value = merged, acc
	if err := p.ctx.forward(out); err != nil {
		return err
	}
	if retention := p.gap + p.grace; p.exp.purgeDue(retention) {
		return purgeTimeBefore(p.ss.s, 16, p.exp.observed-retention) // by session end
	}
	return nil
}
