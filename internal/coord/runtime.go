package coord

import (
	"log/slog"
	"sync"

	"github.com/poste-io/poste/internal/metadata"
)

// Runtime hosts the shards of one internal topic: a shard for every partition of it this
// broker leads, started when the metadata says so and stopped when it no longer does.
//
// Invariants: shards holds exactly the partitions of the last applied image that this node
// leads and whose log was available; once closed, no shard is started again. Apply is called
// by the metadata watcher goroutine; Shard and Close from any goroutine.
type Runtime[M Machine] struct {
	topic   string
	nodeID  int32
	open    func(index int32) (Log, error)
	machine func(index int32) M
	clock   Clock
	lg      *slog.Logger

	mu struct {
		sync.Mutex
		shards map[int32]*Shard[M]
		count  int32 // partitions of the topic in the last image, 0 if it does not exist
		closed bool
	}
}

// RuntimeConfig configures a Runtime.
type RuntimeConfig[M Machine] struct {
	Topic  string // the internal topic, e.g. __consumer_offsets
	NodeID int32
	// Open returns the hosted partition of the topic (the replica manager's).
	Open func(index int32) (Log, error)
	// Machine returns a fresh, empty state for a shard.
	Machine func(index int32) M
	Clock   Clock // nil: the wall clock
	Logger  *slog.Logger
}

// NewRuntime returns a runtime hosting no shard yet.
func NewRuntime[M Machine](c RuntimeConfig[M]) *Runtime[M] {
	if c.Clock == nil {
		c.Clock = RealClock
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	r := &Runtime[M]{topic: c.Topic, nodeID: c.NodeID, open: c.Open, machine: c.Machine, clock: c.Clock, lg: c.Logger}
	r.mu.shards = make(map[int32]*Shard[M])
	return r
}

// Apply starts a shard for each partition of the topic that next says this node leads, and
// stops the shards of the others. It is a metadata watcher (prev is unused): it must run after
// the replica manager has applied the same image, so that the partitions are open.
func (r *Runtime[M]) Apply(_, next *metadata.Image) {
	lead := make(map[int32]bool)
	var count int32
	if t := next.Topic(r.topic); t != nil {
		count = int32(len(t.Partitions))
		for _, p := range t.Partitions {
			if p.Leader == r.nodeID {
				lead[p.ID] = true
			}
		}
	}
	r.mu.Lock()
	if r.mu.closed {
		r.mu.Unlock()
		return
	}
	r.mu.count = count
	var stop []*Shard[M]
	for idx, s := range r.mu.shards {
		if !lead[idx] {
			stop = append(stop, s)
			delete(r.mu.shards, idx)
		}
	}
	for idx := range lead {
		if _, ok := r.mu.shards[idx]; ok {
			continue
		}
		l, err := r.open(idx)
		if err != nil {
			r.lg.Warn("coordinator partition not available", "topic", r.topic, "partition", idx, "err", err)
			continue
		}
		r.mu.shards[idx] = newShard(idx, r.machine(idx), l, r.clock, r.lg)
	}
	r.mu.Unlock()
	for _, s := range stop {
		s.Stop()
	}
}

// Partitions returns the number of partitions of the topic in the last applied image (0 if
// it does not exist yet).
func (r *Runtime[M]) Partitions() int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.count
}

// Shard returns the shard of partition index, or ErrNotCoordinator.
func (r *Runtime[M]) Shard(index int32) (*Shard[M], error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.mu.shards[index]
	if !ok {
		return nil, ErrNotCoordinator
	}
	return s, nil
}

// Shards returns every shard, in no particular order.
func (r *Runtime[M]) Shards() []*Shard[M] {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Shard[M], 0, len(r.mu.shards))
	for _, s := range r.mu.shards {
		out = append(out, s)
	}
	return out
}

// Close stops every shard; Apply does nothing afterwards. Call it before the partitions close.
func (r *Runtime[M]) Close() {
	r.mu.Lock()
	r.mu.closed = true
	shards := r.mu.shards
	r.mu.shards = map[int32]*Shard[M]{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range shards {
		wg.Add(1)
		go func() { defer wg.Done(); s.Stop() }()
	}
	wg.Wait()
}
