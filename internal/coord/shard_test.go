package coord

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// kvMachine is a key/value map kept as records: the smallest Machine.
type kvMachine struct {
	kv       map[string]string
	replayed int
	timers   Timers
	unloaded bool
}

func (m *kvMachine) Replay(_ int64, key, value []byte) error {
	m.replayed++
	if value == nil {
		delete(m.kv, string(key))
	} else {
		m.kv[string(key)] = string(value)
	}
	return nil
}
func (m *kvMachine) Loaded(t Timers, _ time.Time) { m.timers = t }
func (m *kvMachine) Unloaded()                    { m.unloaded = true }

// set writes key=value and applies it once committed.
func set(key, value string, cb func(error)) func(*kvMachine, time.Time) Result {
	return func(m *kvMachine, _ time.Time) Result {
		return Result{Records: []Record{{Key: []byte(key), Value: []byte(value)}}, Done: func(err error) {
			if err == nil {
				m.kv[key] = value
			}
			cb(err)
		}}
	}
}

func openPartition(t *testing.T, fs vfs.FS) *partition.Partition {
	t.Helper()
	cfg := partition.Config{
		Log: plog.Options{FS: fs, SegmentBytes: 1 << 20, SegmentMs: math.MaxInt64 / 2, IndexIntervalBytes: 4096, SegmentIndexBytes: 1 << 20},
		Validate: record.ValidateConfig{MaxBatchBytes: 1 << 20, TimestampType: record.CreateTime,
			BeforeMaxMs: math.MaxInt64, AfterMaxMs: math.MaxInt64, MaxDecompressedBytes: 1 << 20},
		FlushPolicy: partition.FlushAlways,
	}
	p, err := partition.Open("/data/__consumer_offsets-0", "__consumer_offsets", [16]byte{1}, 0, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// manualClock fires After channels only when the test advances it.
type manualClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []manualWaiter
}

type manualWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, manualWaiter{c.now.Add(d), ch})
	return ch
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func do(t *testing.T, s *Shard[*kvMachine], run func(*kvMachine, time.Time) Result) {
	t.Helper()
	ch := make(chan error, 1)
	s.Submit(func(m *kvMachine, now time.Time) Result {
		r := run(m, now)
		done := r.Done
		r.Done = func(err error) {
			if done != nil {
				done(err)
			}
			ch <- err
		}
		return r
	}, func(err error) { ch <- err })
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
}

func TestShardWritesReplaysAndBatches(t *testing.T) {
	fs := vfs.NewMem()
	p := openPartition(t, fs)
	clock := &manualClock{now: time.Unix(100, 0)}
	s := newShard(0, &kvMachine{kv: map[string]string{}}, p, clock, testLogger())
	for !s.Loaded() {
		time.Sleep(time.Millisecond)
	}
	// Many concurrent operations: every one answered after its record is committed.
	const n = 200
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("k%d", i%50)
		s.Submit(set(k, fmt.Sprint(i), func(err error) { errs <- err }), func(err error) { errs <- err })
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if hw := p.HighWatermark(); hw != n {
		t.Fatalf("high watermark %d, want %d", hw, n)
	}
	// A tombstone, then a timer that writes.
	do(t, s, func(m *kvMachine, _ time.Time) Result {
		return Result{Records: []Record{{Key: []byte("k0")}}, Done: func(err error) { delete(m.kv, "k0") }}
	})
	fired := make(chan struct{})
	do(t, s, func(m *kvMachine, now time.Time) Result {
		m.timers.Schedule("t", now.Add(time.Second), func(time.Time) Result {
			return Result{Records: []Record{{Key: []byte("timer"), Value: []byte("fired")}}, Done: func(error) { m.kv["timer"] = "fired"; close(fired) }}
		})
		m.timers.Schedule("dropped", now.Add(time.Second), func(time.Time) Result { panic("cancelled timer fired") })
		m.timers.Cancel("dropped")
		return Result{}
	})
	clock.Advance(2 * time.Second)
	<-fired
	s.Stop()
	if !s.m.unloaded {
		t.Fatal("machine not unloaded")
	}
	want := s.m.kv

	// Reopen: replay rebuilds the same state.
	s2 := newShard(0, &kvMachine{kv: map[string]string{}}, p, clock, testLogger())
	for !s2.Loaded() {
		time.Sleep(time.Millisecond)
	}
	s2.Stop()
	if len(s2.m.kv) != len(want) || s2.m.replayed != n+2 {
		t.Fatalf("replayed %d records into %d keys, want %d into %d", s2.m.replayed, len(s2.m.kv), n+2, len(want))
	}
	for k, v := range want {
		if s2.m.kv[k] != v {
			t.Fatalf("key %s: %q after replay, %q before", k, s2.m.kv[k], v)
		}
	}
	// A stopped shard refuses work.
	ch := make(chan error, 1)
	s2.Submit(set("x", "y", func(error) {}), func(err error) { ch <- err })
	if err := <-ch; !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("submit to stopped shard: %v", err)
	}
	p.Close()
}

// failingLog fails every append: operations learn it through Done.
type failingLog struct{ Log }

func (failingLog) Append([]byte) (partition.AppendResult, error) {
	return partition.AppendResult{}, partition.ErrStorage
}

func TestShardAppendFailureReachesDone(t *testing.T) {
	p := openPartition(t, vfs.NewMem())
	defer p.Close()
	s := newShard(0, &kvMachine{kv: map[string]string{}}, failingLog{p}, RealClock, testLogger())
	defer s.Stop()
	for !s.Loaded() {
		time.Sleep(time.Millisecond)
	}
	ch := make(chan error, 1)
	s.Submit(set("a", "b", func(err error) { ch <- err }), func(err error) { ch <- err })
	if err := <-ch; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if len(s.m.kv) != 0 {
		t.Fatal("a failed write was applied")
	}
}
