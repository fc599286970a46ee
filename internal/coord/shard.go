package coord

import (
	"container/heap"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poste-io/poste/internal/record"
)

// maxBatchBytes bounds the records of one appended batch; a round producing more appends
// several batches. It stays well below the default message.max.bytes.
const maxBatchBytes = 512 << 10

// maxOpsPerRound bounds how many queued operations one round runs before appending, so a
// flood of operations still reaches the disk in steady batches.
const maxOpsPerRound = 4096

// commitTimeout bounds the wait for a batch to be committed.
const commitTimeout = 30 * time.Second

// shard states.
const (
	stateLoading int32 = iota
	stateActive
	stateClosed
)

// Shard is the coordinator of one internal partition.
//
// Invariants:
//   - The machine is touched only by the shard goroutine (run): replay, operations, timers,
//     Done callbacks and Unloaded all run there, one at a time.
//   - Batches are appended in the order their operations ran; their Done callbacks run in
//     the same order (the waiter goroutine completes batches first in, first out).
//   - Every submitted operation either runs or is aborted with an error, exactly once; every
//     Done returned by an operation is called exactly once.
//
// Submit and Stop may be called from any goroutine; everything else is the shard's own.
type Shard[M Machine] struct {
	Partition int32

	m     M
	log   Log
	clock Clock
	lg    *slog.Logger

	state atomic.Int32

	mu struct {
		sync.Mutex
		ops         []op[M]
		completions []completion
		stopping    bool
	}
	wake chan struct{}

	// The waiter goroutine's queue: batches appended and not yet known committed.
	wmu      sync.Mutex
	wbatches []appended
	wstop    bool
	wwake    chan struct{}
	wdone    chan struct{}

	// Timers, owned by the shard goroutine.
	timers timerHeap
	byKey  map[string]*timer
	seq    uint64

	done chan struct{}
}

type op[M Machine] struct {
	run   func(m M, now time.Time) Result
	abort func(error)
}

type appended struct {
	end   int64 // committed once the high watermark reaches it
	dones []func(error)
}

type completion struct {
	dones []func(error)
	err   error
}

// newShard starts a shard: it replays the partition, then serves operations.
func newShard[M Machine](index int32, m M, l Log, clock Clock, lg *slog.Logger) *Shard[M] {
	s := &Shard[M]{Partition: index, m: m, log: l, clock: clock, lg: lg,
		wake: make(chan struct{}, 1), wwake: make(chan struct{}, 1), wdone: make(chan struct{}),
		byKey: make(map[string]*timer), done: make(chan struct{})}
	go s.run()
	go s.waiter()
	return s
}

// Submit queues an operation. run executes on the shard goroutine with the machine and the
// time; abort is called instead (from any goroutine) if the shard cannot run it: it is
// loading (ErrLoading) or stopped (ErrNotCoordinator). Submit never blocks.
func (s *Shard[M]) Submit(run func(m M, now time.Time) Result, abort func(error)) {
	switch s.state.Load() {
	case stateLoading:
		abort(ErrLoading)
		return
	case stateClosed:
		abort(ErrNotCoordinator)
		return
	}
	s.mu.Lock()
	if s.mu.stopping {
		s.mu.Unlock()
		abort(ErrNotCoordinator)
		return
	}
	s.mu.ops = append(s.mu.ops, op[M]{run: run, abort: abort})
	s.mu.Unlock()
	s.signal()
}

// Loaded reports whether the shard has finished replaying and serves operations.
func (s *Shard[M]) Loaded() bool { return s.state.Load() == stateActive }

// Stop stops the shard: queued operations are aborted, pending Done callbacks get
// ErrNotCoordinator, the machine answers its parked requests. It waits for the goroutines.
func (s *Shard[M]) Stop() {
	s.mu.Lock()
	s.mu.stopping = true
	s.mu.Unlock()
	s.signal()
	<-s.done
}

func (s *Shard[M]) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run is the shard goroutine.
func (s *Shard[M]) run() {
	defer close(s.done)
	if err := s.replay(); err != nil {
		s.lg.Error("coordinator shard failed to load; it stays unavailable", "partition", s.Partition, "err", err)
		s.state.Store(stateClosed)
		s.shutdown(false)
		return
	}
	s.m.Loaded(s, s.clock.Now())
	s.state.Store(stateActive)
	for {
		var timerC <-chan time.Time
		if len(s.timers) > 0 {
			d := s.timers[0].at.Sub(s.clock.Now())
			if d < 0 {
				d = 0
			}
			timerC = s.clock.After(d)
		}
		select {
		case <-s.wake:
		case <-timerC:
		}
		s.mu.Lock()
		ops, comps, stopping := s.mu.ops, s.mu.completions, s.mu.stopping
		s.mu.ops, s.mu.completions = nil, nil
		s.mu.Unlock()
		// Completions first: they belong to operations that ran earlier.
		for _, c := range comps {
			for _, d := range c.dones {
				d(c.err)
			}
		}
		if stopping {
			for _, o := range ops {
				o.abort(ErrNotCoordinator)
			}
			s.state.Store(stateClosed)
			s.shutdown(true)
			return
		}
		var round []Result
		for len(ops) > 0 {
			n := min(len(ops), maxOpsPerRound)
			now := s.clock.Now()
			for _, o := range ops[:n] {
				round = append(round, o.run(s.m, now))
			}
			ops = ops[n:]
			round = s.fireTimers(round)
			s.write(round)
			round = round[:0]
		}
		s.write(s.fireTimers(round))
	}
}

// fireTimers runs the timers that are due and appends their results.
func (s *Shard[M]) fireTimers(round []Result) []Result {
	now := s.clock.Now()
	for len(s.timers) > 0 && !s.timers[0].at.After(now) {
		t := heap.Pop(&s.timers).(*timer)
		delete(s.byKey, t.key)
		round = append(round, t.fn(now))
	}
	return round
}

// write appends the records of a round's results (as few batches as the size bound allows)
// and queues their Done callbacks behind the batches' commit.
func (s *Shard[M]) write(round []Result) {
	var recs []record.Record
	var dones []func(error)
	size := 0
	flush := func() {
		if len(recs) == 0 {
			// Nothing to write: done as soon as every earlier batch is, to keep the order.
			if len(dones) > 0 {
				s.queueWait(appended{end: -1, dones: dones})
			}
			return
		}
		now := s.clock.Now().UnixMilli()
		h := record.Header{FirstTimestamp: now, MaxTimestamp: now, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		batch, err := record.Build(nil, h, recs)
		if err == nil {
			var r partitionAppend
			if r, err = s.log.Append(batch); err == nil {
				s.queueWait(appended{end: r.LastOffset + 1, dones: dones})
			}
		}
		if err != nil {
			s.lg.Warn("coordinator append failed", "partition", s.Partition, "err", err)
			s.queueWait(appended{end: -2, dones: dones})
		}
		recs, dones, size = nil, nil, 0
	}
	for _, r := range round {
		for _, rec := range r.Records {
			recs = append(recs, record.Record{OffsetDelta: int32(len(recs)), Key: rec.Key, Value: rec.Value})
			size += len(rec.Key) + len(rec.Value) + 16
		}
		if r.Done != nil {
			dones = append(dones, r.Done)
		}
		if size >= maxBatchBytes {
			flush()
		}
	}
	flush()
}

// queueWait hands a batch to the waiter goroutine. end -1: nothing to wait for; -2: the
// append failed.
func (s *Shard[M]) queueWait(a appended) {
	s.wmu.Lock()
	s.wbatches = append(s.wbatches, a)
	s.wmu.Unlock()
	select {
	case s.wwake <- struct{}{}:
	default:
	}
}

// waiter waits for appended batches to be committed, in order, and posts their completions
// back to the shard goroutine.
func (s *Shard[M]) waiter() {
	defer close(s.wdone)
	for {
		s.wmu.Lock()
		bs, stop := s.wbatches, s.wstop
		s.wbatches = nil
		s.wmu.Unlock()
		if len(bs) == 0 {
			if stop {
				return
			}
			<-s.wwake
			continue
		}
		for _, b := range bs {
			var err error
			switch {
			case b.end == -2:
				err = fmt.Errorf("%w: append failed", ErrUnavailable)
			case b.end >= 0:
				if werr := s.log.AwaitCommitted(b.end, time.Now().Add(commitTimeout)); werr != nil {
					err = fmt.Errorf("%w: %v", ErrUnavailable, werr)
				}
			}
			s.mu.Lock()
			s.mu.completions = append(s.mu.completions, completion{dones: b.dones, err: err})
			s.mu.Unlock()
			s.signal()
		}
	}
}

// shutdown ends the shard on its goroutine: it waits for the waiter to finish the batches
// in flight, runs their Done callbacks with ErrNotCoordinator unless they committed, then
// lets the machine answer what it has parked.
func (s *Shard[M]) shutdown(loaded bool) {
	s.wmu.Lock()
	s.wstop = true
	s.wmu.Unlock()
	select {
	case s.wwake <- struct{}{}:
	default:
	}
	<-s.wdone
	s.mu.Lock()
	comps, ops := s.mu.completions, s.mu.ops
	s.mu.completions, s.mu.ops = nil, nil
	s.mu.Unlock()
	for _, c := range comps {
		err := c.err
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrNotCoordinator, err)
		}
		for _, d := range c.dones {
			d(err)
		}
	}
	for _, o := range ops {
		o.abort(ErrNotCoordinator)
	}
	s.timers, s.byKey = nil, map[string]*timer{}
	if loaded {
		s.m.Unloaded()
	}
}

// replay folds the partition's records into the machine: all of the leader's log, up to its
// end offset (what it holds is what it will commit while it leads).
func (s *Shard[M]) replay() error {
	off, hw := s.log.LogStartOffset(), s.log.LogEndOffset()
	var buf []byte
	for off < hw {
		sl, err := s.log.ReadForFollower(off, 1<<20)
		if err != nil {
			return err
		}
		if sl.Size == 0 {
			break
		}
		buf, err = sl.ReadInto(buf[:0])
		if err != nil {
			return err
		}
		for b := buf; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err != nil {
				return err
			}
			if h.Size() > len(b) {
				return fmt.Errorf("%w: batch at %d overruns the read", record.ErrCorrupt, h.BaseOffset)
			}
			if h.BaseOffset >= hw {
				off = hw
				break
			}
			if !h.IsControl() {
				recs, err := record.Records(b[:h.Size()], 0)
				if err != nil {
					return err
				}
				for _, r := range recs {
					if err := s.m.Replay(h.BaseOffset+int64(r.OffsetDelta), r.Key, r.Value); err != nil {
						return fmt.Errorf("record at %d: %w", h.BaseOffset+int64(r.OffsetDelta), err)
					}
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
		if sl.NextOffset > off {
			off = sl.NextOffset
		}
	}
	return nil
}

// Schedule implements Timers; shard goroutine only.
func (s *Shard[M]) Schedule(key string, at time.Time, fn func(now time.Time) Result) {
	s.Cancel(key)
	s.seq++
	t := &timer{key: key, at: at, fn: fn, seq: s.seq}
	heap.Push(&s.timers, t)
	s.byKey[key] = t
}

// Cancel implements Timers; shard goroutine only.
func (s *Shard[M]) Cancel(key string) {
	if t, ok := s.byKey[key]; ok {
		heap.Remove(&s.timers, t.idx)
		delete(s.byKey, key)
	}
}

type timer struct {
	key string
	at  time.Time
	fn  func(time.Time) Result
	seq uint64 // ties fire in scheduling order
	idx int
}

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h timerHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *timerHeap) Push(x any)   { t := x.(*timer); t.idx = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
