package streams

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RawRecord is a serialized record as the local runner takes and returns it.
type RawRecord struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	Timestamp time.Time
	Headers   []kgo.RecordHeader
}

// LocalRunner executes a topology synchronously in the caller's goroutine, without a broker:
// every topic has one partition, so each sub-topology runs as the single task <id>_0. A
// record written to a topic that the topology itself reads (a repartition topic, or a user
// topic read back) is processed before the Pipe that caused it returns; every other write is
// kept for Output. Changelog writes are kept apart (Changelog). It is the engine of package
// streamstest and is deterministic: wall-clock time moves only through AdvanceWallClock.
// Every store is kept in memory, persistent ones included.
//
// Not safe for concurrent use.
type LocalRunner struct {
	app       string
	tasks     []*task
	byTopic   map[string]*task
	wall      time.Time
	offsets   map[string]int64
	outputs   map[string][]RawRecord
	changelog map[string][]RawRecord
	queue     []RawRecord
	loopback  map[string]bool
	globals   *globalStores
	dropped   atomic.Int64
}

// NewLocalRunner builds the tasks of t under application id app, with the wall clock at start.
// It has no record cache: every update is written and forwarded at once, so a test sees
// each one.
func NewLocalRunner(t *Topology, app string, start time.Time) (*LocalRunner, error) {
	return newLocalRunner(t, app, start, nil)
}

// newLocalRunner is NewLocalRunner with the cached stores behind a record cache of budget
// cache (nil: none); flushCaches then plays the part of a commit.
func newLocalRunner(t *Topology, app string, start time.Time, cache *cacheBudget) (*LocalRunner, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if app == "" {
		return nil, fmt.Errorf("%w: application id is required", ErrConfig)
	}
	r := &LocalRunner{app: app, byTopic: map[string]*task{}, wall: start, offsets: map[string]int64{},
		outputs: map[string][]RawRecord{}, changelog: map[string][]RawRecord{}, loopback: map[string]bool{},
		globals: newGlobalStores(t)}
	for _, sub := range t.subtopologies() {
		tk, err := newTask(t, sub, app, 0, (*localCollector)(r), func() time.Time { return r.wall }, nil)
		if err != nil {
			return nil, err
		}
		tk.dropped = &r.dropped
		tk.globals = r.globals
		tk.enableCache(cache)
		for topic := range tk.byTopic {
			if _, dup := r.byTopic[topic]; dup {
				return nil, fmt.Errorf("%w: topic %q is read by two sub-topologies", ErrTopology, topic)
			}
			r.byTopic[topic] = tk
			r.loopback[topic] = true
		}
		r.tasks = append(r.tasks, tk)
	}
	for topic := range r.globals.byTopic {
		if _, dup := r.byTopic[topic]; dup {
			return nil, fmt.Errorf("%w: topic %q is read both as a global table and by a sub-topology", ErrTopology, topic)
		}
	}
	for _, tk := range r.tasks {
		if err := tk.init(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

type localCollector LocalRunner

func (c *localCollector) send(topic string, partition int32, key, value []byte, ts int64, headers []kgo.RecordHeader, _ *atomic.Int64) error {
	r := (*LocalRunner)(c)
	rr := RawRecord{Topic: topic, Partition: 0, Offset: r.offsets[topic], Key: key, Value: value, Timestamp: time.UnixMilli(ts), Headers: headers}
	r.offsets[topic]++
	if _, ok := r.globals.byTopic[topic]; ok {
		r.globals.apply(topic, key, value) // a global table sees its topic's writes at once
		r.outputs[topic] = append(r.outputs[topic], rr)
		return nil
	}
	switch {
	case r.loopback[topic]:
		r.queue = append(r.queue, rr)
		if !isInternal(r.app, topic) {
			r.outputs[topic] = append(r.outputs[topic], rr)
		}
	case isChangelog(r.app, topic):
		r.changelog[topic] = append(r.changelog[topic], rr)
	default:
		r.outputs[topic] = append(r.outputs[topic], rr)
	}
	return nil
}

func (c *localCollector) partitions(string) (int32, error) { return 1, nil }

func isInternal(app, topic string) bool {
	return strings.HasPrefix(topic, app+"-") &&
		(strings.HasSuffix(topic, "-repartition") || strings.HasSuffix(topic, "-changelog"))
}

func isChangelog(app, topic string) bool {
	return isInternal(app, topic) && strings.HasSuffix(topic, "-changelog")
}

// Pipe processes one record read from topic (a user topic name), then everything it caused
// to be written to topics the topology reads, in write order. The first error stops the run
// and is returned. A record piped to a global table's topic updates that table at once (a
// record with a null key is skipped), as if its background reader had caught up.
func (r *LocalRunner) Pipe(topic string, key, value []byte, ts time.Time, headers []kgo.RecordHeader) error {
	if _, ok := r.globals.byTopic[topic]; ok {
		r.offsets[topic]++
		r.globals.apply(topic, key, value)
		return nil
	}
	if _, ok := r.byTopic[topic]; !ok {
		return fmt.Errorf("%w: the topology does not read topic %q", ErrTopology, topic)
	}
	r.queue = append(r.queue, RawRecord{Topic: topic, Offset: r.offsets[topic], Key: key, Value: value, Timestamp: ts, Headers: headers})
	r.offsets[topic]++
	return r.drain()
}

// AdvanceWallClock moves the wall clock forward by d and fires due wall-clock punctuations.
func (r *LocalRunner) AdvanceWallClock(d time.Duration) error {
	r.wall = r.wall.Add(d)
	for _, tk := range r.tasks {
		if err := tk.punctuate(WallClockTime, r.wall.UnixMilli()); err != nil {
			return err
		}
	}
	return r.drain()
}

func (r *LocalRunner) drain() error {
	for len(r.queue) > 0 {
		rr := r.queue[0]
		r.queue = r.queue[1:]
		if err := r.byTopic[rr.Topic].process(rr.Topic, 0, rr.Offset, rr.Key, rr.Value, rr.Timestamp.UnixMilli(), rr.Headers); err != nil {
			r.queue = nil
			return err
		}
	}
	return nil
}

// flushCaches flushes every task's record cache, as a commit does, and processes what the
// flush wrote to topics the topology reads.
func (r *LocalRunner) flushCaches() error {
	for {
		for _, tk := range r.tasks {
			if err := tk.flushCaches(); err != nil {
				return err
			}
		}
		if len(r.queue) == 0 {
			return nil
		}
		if err := r.drain(); err != nil {
			return err
		}
	}
}

// DroppedRecords counts records dropped by windowed operators because they arrived after
// their windows closed (window end plus grace at or behind stream time).
func (r *LocalRunner) DroppedRecords() int64 { return r.dropped.Load() }

// Now is the runner's wall clock.
func (r *LocalRunner) Now() time.Time { return r.wall }

// Output removes and returns the records written so far to topic.
func (r *LocalRunner) Output(topic string) []RawRecord {
	out := r.outputs[topic]
	delete(r.outputs, topic)
	return out
}

// Changelog returns every write made so far to the changelog of store.
func (r *LocalRunner) Changelog(store string) []RawRecord {
	return r.changelog[changelogTopic(r.app, store)]
}

// Store gives access to the store named name (in whichever task holds it) for
// GetKeyValueStore.
func (r *LocalRunner) Store(name string) (StoreProvider, error) {
	if si, ok := r.globals.byStore[name]; ok {
		return globalProvider{si}, nil
	}
	for _, tk := range r.tasks {
		if _, ok := tk.stores[name]; ok {
			return taskStores{tk}, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownStore, name)
}

// Close closes every processor and store.
func (r *LocalRunner) Close() {
	for _, tk := range r.tasks {
		tk.close()
		_ = tk.closeStores(false)
	}
}

// globalProvider exposes one global store.
type globalProvider struct{ si *storeInst }

func (g globalProvider) rawStore(name string) (*storeInst, error) {
	if name != g.si.spec.name {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStore, name)
	}
	return g.si, nil
}

// taskStores exposes all of a task's stores.
type taskStores struct{ t *task }

func (s taskStores) rawStore(name string) (*storeInst, error) {
	si, ok := s.t.stores[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownStore, name)
	}
	return si, nil
}
