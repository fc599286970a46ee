package streams

import (
	"fmt"
	"math"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TaskID names a task: the sub-topology it runs and the input partition it owns.
type TaskID struct {
	Subtopology int
	Partition   int32
}

func (id TaskID) String() string { return fmt.Sprintf("%d_%d", id.Subtopology, id.Partition) }

// collector receives what a task writes: sink records and changelog writes. partition < 0
// leaves the choice to the producer's default partitioner (murmur2 of the key, as Kafka's).
// A non-nil acked is raised to one past the record's offset once the write is acknowledged.
type collector interface {
	send(topic string, partition int32, key, value []byte, ts int64, headers []kgo.RecordHeader, acked *atomic.Int64) error
	partitions(topic string) (int32, error)
}

// task runs one sub-topology for one partition: one instance of every node and store.
//
// Not safe for concurrent use: exactly one goroutine (the runtime's poll loop, or the test
// driver's caller) drives a task at a time. Invariant: streamTime never decreases.
type task struct {
	id         TaskID
	app        string
	topo       *Topology
	sub        *subtopology
	out        collector
	insts      map[string]*nodeInst
	byTopic    map[string]*nodeInst // resolved source topic → source instance
	stores     map[string]*storeInst
	streamTime int64 // math.MinInt64 until the first record
	wallNow    func() time.Time
	puncts     []*Schedule
	cur        recCtx // context of the record being processed, while inRec
	inRec      bool   // false inside a punctuation
	punctTime  int64
	dropped    *atomic.Int64    // late records dropped by windowed operators; nil: not counted
	globals    *globalStores    // the instance's global stores, shared with its other tasks; may be nil
	state      *stateDir        // nil: every store in memory
	saved      map[string]int64 // offsets in the checkpoint file written last
	slab       boxSlab          // boxes the byte slices its records carry between nodes
	// recycle: every node is transient, so no box outlives the record it was made for (stores
	// keep serialized bytes, never boxes), and the slab is reset after each record.
	recycle bool
}

// recCtx is the context of the record a task is processing: its time, headers and where
// it was read from (zero for a record flushed from a store's cache). Kept by value in the
// task: no allocation per record.
type recCtx struct {
	ts        int64
	headers   []kgo.RecordHeader
	topic     string
	partition int32
	offset    int64
}

// recordDropped counts one record dropped for arriving after its windows closed.
func (t *task) recordDropped() {
	if t.dropped != nil {
		t.dropped.Add(1)
	}
}

type nodeInst struct {
	n        *node
	p        procNode
	ctx      *nodeCtx
	children []*nodeInst
}

// resolveTopic prefixes internal topics with the application id.
func resolveTopic(app, topic string, internal bool) string {
	if internal {
		return app + "-" + topic
	}
	return topic
}

func changelogTopic(app, store string) string { return app + "-" + store + "-changelog" }

// newTask builds a task and opens its stores: persistent ones under st (nil: every store in
// memory, whatever its type).
func newTask(topo *Topology, sub *subtopology, app string, partition int32, out collector, wallNow func() time.Time, st *stateDir) (*task, error) {
	t := &task{
		id: TaskID{sub.id, partition}, app: app, topo: topo, sub: sub, out: out,
		insts: map[string]*nodeInst{}, byTopic: map[string]*nodeInst{}, stores: map[string]*storeInst{},
		streamTime: math.MinInt64, wallNow: wallNow, state: st,
	}
	var ckpts map[string]int64
	for _, name := range sub.stores {
		spec := topo.stores[name]
		si := &storeInst{spec: spec, task: t}
		si.pos.Store(-1)
		if spec.logging {
			si.changelog = changelogTopic(app, name)
		}
		var kv kvBytes
		if st.persistent(spec) {
			var err error
			if ckpts == nil {
				ckpts, err = st.openTask(t.id)
			}
			if err == nil {
				si.disk, err = st.openStore(t.id, name)
			}
			if err != nil {
				_ = t.closeStores(false)
				return nil, err
			}
			if off, ok := ckpts[name]; ok {
				si.disk.ckpt = off
			}
			kv = si.disk.kv
		} else {
			kv = newMemKV()
		}
		if spec.suffix > 0 {
			kv = &suffixKV{m: kv, suffix: spec.suffix}
		}
		si.kv = kv
		t.stores[name] = si
	}
	t.recycle = true
	for _, n := range sub.nodes {
		t.recycle = t.recycle && n.transient && len(n.globals) == 0
		in := &nodeInst{n: n}
		in.ctx = &nodeCtx{t: t, inst: in}
		switch n.kind {
		case kindSource:
			in.p = &sourceProc{}
			for _, tp := range n.topics {
				t.byTopic[resolveTopic(app, tp, n.internal)] = in
			}
		case kindProcessor:
			in.p = n.newProc()
		case kindSink:
			in.p = &sinkProc{n: n, topic: resolveTopic(app, n.topic, n.internal)}
		}
		t.insts[n.name] = in
	}
	for _, n := range sub.nodes {
		for _, c := range n.children {
			t.insts[n.name].children = append(t.insts[n.name].children, t.insts[c])
		}
	}
	return t, nil
}

// changelogs lists the resolved changelog topics of the task's logged stores.
func (t *task) changelogs() map[string]*storeInst {
	m := map[string]*storeInst{}
	for _, s := range t.stores {
		if s.changelog != "" {
			m[s.changelog] = s
		}
	}
	return m
}

// init initializes every node, in topology order (parents first), after stores are restored.
func (t *task) init() error {
	for _, n := range t.sub.nodes {
		in := t.insts[n.name]
		if err := guard(func() error { return in.p.init(in.ctx) }); err != nil {
			return fmt.Errorf("task %s: init %s: %w", t.id, n.name, err)
		}
	}
	return nil
}

// endBatch ends a batch of records: a recycling slab lets go of the last records' bytes.
func (t *task) endBatch() {
	if t.recycle {
		t.slab.release()
	}
}

func (t *task) close() {
	t.endBatch()
	for _, n := range t.sub.nodes {
		in := t.insts[n.name]
		_ = guard(func() error { in.p.close(); return nil })
	}
}

func (t *task) nowMs() int64 {
	if t.inRec {
		return t.cur.ts
	}
	return t.punctTime
}

// guard turns a panic in user code into an error so that one bad record reaches the error
// handler instead of killing the process.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic: %v\n%s", ErrProcessing, r, debug.Stack())
		}
	}()
	return fn()
}

// run hands r to a source node, turning a panic in user code into an error (as guard,
// without a closure per record). A function of the node only, so that r travels in
// registers.
func run(src *nodeInst, r rec) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic: %v\n%s", ErrProcessing, r, debug.Stack())
		}
	}()
	return src.ctx.forward(r) // a source hands records on unchanged (sourceProc.process)
}

// process runs one input record through the task. A record with a negative timestamp (after
// extraction) is skipped, as Kafka Streams does.
func (t *task) process(topic string, partition int32, offset int64, k, v []byte, ts int64, headers []kgo.RecordHeader) error {
	return t.processFrom(t.byTopic[topic], topic, partition, offset, k, v, ts, headers)
}

// processFrom is process with the topic's source node already looked up (nil: the task
// does not read the topic).
func (t *task) processFrom(src *nodeInst, topic string, partition int32, offset int64, k, v []byte, ts int64, headers []kgo.RecordHeader) error {
	if src == nil {
		return fmt.Errorf("%w: task %s does not read topic %q", ErrTopology, t.id, topic)
	}
	key, val, ets, err := src.n.decode(&t.slab, topic, k, v, ts)
	if err != nil {
		return fmt.Errorf("task %s: %s/%d@%d: %w", t.id, topic, partition, offset, err)
	}
	if ets < 0 {
		return nil
	}
	cur := &t.cur // field by field: a struct copy here stalls on the stores just made
	cur.ts, cur.headers, cur.topic, cur.partition, cur.offset = ets, headers, topic, partition, offset
	t.inRec = true
	err = run(src, rec{key: key, value: val, ts: ets, headers: headers})
	t.inRec = false
	t.cur = recCtx{} // drop the references
	if t.recycle {
		t.slab.reset()
	}
	if err != nil {
		return fmt.Errorf("task %s: %s/%d@%d: %w", t.id, topic, partition, offset, err)
	}
	if ets > t.streamTime {
		t.streamTime = ets
		if len(t.puncts) > 0 {
			return t.punctuate(StreamTime, ets)
		}
	}
	return nil
}

// punctuate fires due schedules of one type at time now (ms), each at most once, and moves
// each one's next due time past now (missed intervals are skipped, as Kafka does).
func (t *task) punctuate(typ PunctuationType, now int64) error {
	for i := 0; i < len(t.puncts); i++ { // schedules added by a punctuation run from the next round
		s := t.puncts[i]
		if s.cancelled || s.typ != typ {
			continue
		}
		if s.next == math.MinInt64 { // stream-time schedule made before any record: anchor now
			s.next = now + s.interval
			continue
		}
		if now < s.next {
			continue
		}
		for s.next <= now {
			s.next += s.interval
		}
		t.punctTime = now
		err := guard(func() error { return s.fn(time.UnixMilli(now)) })
		if err != nil {
			return fmt.Errorf("task %s: punctuation of %s: %w", t.id, s.node, err)
		}
	}
	live := t.puncts[:0]
	for _, s := range t.puncts {
		if !s.cancelled {
			live = append(live, s)
		}
	}
	t.puncts = live
	return nil
}

// Schedule is a registered punctuation; Cancel stops it.
type Schedule struct {
	node      string
	typ       PunctuationType
	interval  int64
	next      int64
	fn        func(time.Time) error
	cancelled bool
}

// Cancel stops the punctuation; it is not called again.
func (s *Schedule) Cancel() { s.cancelled = true }

// nodeCtx is one node instance's view of its task.
type nodeCtx struct {
	t    *task
	inst *nodeInst
}

// forward passes r to every child.
func (c *nodeCtx) forward(r rec) error {
	for _, ch := range c.inst.children {
		if err := ch.p.process(r); err != nil {
			return err
		}
	}
	return nil
}

// forwardTo passes r to the child named to only ("": to every child).
func (c *nodeCtx) forwardTo(r rec, to string) error {
	if to == "" {
		return c.forward(r)
	}
	for _, ch := range c.inst.children {
		if ch.n.name == to {
			return ch.p.process(r)
		}
	}
	return fmt.Errorf("%w: %s has no child %q", ErrTopology, c.inst.n.name, to)
}

func (c *nodeCtx) rawStore(name string) (*storeInst, error) {
	for _, s := range c.inst.n.stores {
		if s == name {
			return c.t.stores[name], nil
		}
	}
	if c.t.globals != nil && slices.Contains(c.inst.n.globals, name) {
		if si, ok := c.t.globals.byStore[name]; ok {
			return si, nil
		}
	}
	return nil, fmt.Errorf("%w: %q is not connected to %s", ErrUnknownStore, name, c.inst.n.name)
}

func (c *nodeCtx) schedule(interval time.Duration, typ PunctuationType, fn func(time.Time) error) *Schedule {
	ms := interval.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	s := &Schedule{node: c.inst.n.name, typ: typ, interval: ms, fn: fn}
	switch {
	case typ == WallClockTime:
		s.next = c.t.wallNow().UnixMilli() + ms
	case c.t.streamTime == math.MinInt64:
		s.next = math.MinInt64
	default:
		s.next = c.t.streamTime + ms
	}
	c.t.puncts = append(c.t.puncts, s)
	return s
}

// sourceProc is a source node: it hands records on unchanged.
type sourceProc struct{ ctx *nodeCtx }

func (p *sourceProc) init(c *nodeCtx) error { p.ctx = c; return nil }
func (p *sourceProc) close()                {}
func (p *sourceProc) process(r rec) error   { return p.ctx.forward(r) }

// sinkProc serializes and sends records to its topic.
type sinkProc struct {
	n     *node
	topic string
	ctx   *nodeCtx
}

func (p *sinkProc) init(c *nodeCtx) error { p.ctx = c; return nil }
func (p *sinkProc) close()                {}

func (p *sinkProc) process(r rec) error {
	kb, vb, err := p.n.encode(p.topic, r.key, r.value)
	if err != nil {
		return err
	}
	part := int32(-1)
	if p.n.partition != nil {
		n, err := p.ctx.t.out.partitions(p.topic)
		if err != nil {
			return err
		}
		part = p.n.partition(p.topic, r.key, r.value, n)
		if part < 0 || part >= n {
			return fmt.Errorf("%w: partitioner chose partition %d of %d for %q", ErrProcessing, part, n, p.topic)
		}
	}
	return p.ctx.t.out.send(p.topic, part, kb, vb, r.ts, r.headers, nil)
}

// enableCache puts a record cache (sharing budget b) in front of every store the topology
// marked cached. Before the task processes anything.
func (t *task) enableCache(b *cacheBudget) {
	if b == nil {
		return
	}
	for _, si := range t.stores {
		if si.spec.cached && !si.readOnly {
			si.cache = newStoreCache(si, b)
		}
	}
}

// flushCaches flushes every cached store, in the sub-topology's store order, until none
// holds a dirty entry (a flush forwards downstream, which may write another cached store).
func (t *task) flushCaches() error {
	for pass := 0; ; pass++ {
		busy := false
		for _, name := range t.sub.stores {
			si := t.stores[name]
			if si.cache == nil || len(si.cache.dirty) == 0 {
				continue
			}
			busy = true
			if err := si.flushCache(); err != nil {
				return fmt.Errorf("task %s: flushing store %q: %w", t.id, name, err)
			}
		}
		if !busy {
			return nil
		}
		if pass > len(t.sub.stores) {
			return fmt.Errorf("%w: task %s: flushing its caches does not settle", ErrTopology, t.id)
		}
	}
}

// dropCaches forgets every cached write (the task closes without committing them).
func (t *task) dropCaches() {
	for _, si := range t.stores {
		if si.cache != nil {
			si.cache.clear()
		}
	}
}

// forwardFlushed forwards a record flushed from a store's cache from c's node, with the
// record context of the write that made the entry dirty.
func (t *task) forwardFlushed(c *nodeCtx, r rec) error {
	saved, savedIn := t.cur, t.inRec
	t.cur, t.inRec = recCtx{ts: r.ts, headers: r.headers}, true
	err := guard(func() error { return c.forward(r) })
	t.cur, t.inRec = saved, savedIn
	return err
}
