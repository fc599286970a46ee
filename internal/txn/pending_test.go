package txn

import (
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// recordingOffsets is an OffsetCommitter that accepts every commit at once.
type recordingOffsets struct {
	mu  sync.Mutex
	got []PendingGroup
}

func (r *recordingOffsets) CommitTxnOffsets(_ string, pg PendingGroup, cb func(error)) {
	r.mu.Lock()
	r.got = append(r.got, pg)
	r.mu.Unlock()
	cb(nil)
}

func newOffsetsHarness(t *testing.T) (*harness, *Coordinator) {
	c := NewCoordinator(Config{MaxTimeout: time.Minute}, 1, nil, nil, &fakeMarkers{done: make(chan struct{}, 64)}, &recordingOffsets{}, nil, nil)
	t.Cleanup(c.Close)
	h := &harness{t: t, s: newShard(0, c), timers: &fakeTimers{fns: map[string]func(time.Time) coord.Result{}, at: map[string]time.Time{}},
		now: time.UnixMilli(1_000_000)}
	h.s.Loaded(h.timers, h.now)
	return h, c
}

// TestPendingOffsetsView walks transactions through their outcomes and checks, after every
// step, what OffsetFetch with require_stable would see for g/in/0 — on the live shard and
// on a shard rebuilt from what was written so far.
func TestPendingOffsetsView(t *testing.T) {
	type step struct {
		op      string // offsets, offsets-other, end-commit, end-abort, complete, timeout, fence, unload
		pending bool   // g/in/0 pending afterwards
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"commit", []step{
			{"offsets", true},
			{"end-commit", true}, // decided, not yet in the group
			{"complete", false},
		}},
		{"abort", []step{
			{"offsets", true},
			{"end-abort", false}, // a durable abort settles them
			{"complete", false},
		}},
		{"timeout", []step{
			{"offsets", true},
			{"timeout", false},
			{"complete", false},
		}},
		{"fenced by a new instance", []step{
			{"offsets", true},
			{"fence", false},
			{"complete", false},
		}},
		{"other partition only", []step{
			{"offsets-other", false},
			{"end-commit", false},
		}},
		{"unload", []step{
			{"offsets", true},
			{"unload", false},
		}},
	}
	key := groupPartition{"g", "in", 0}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, c := newOffsetsHarness(t)
			const id = "tx"
			res := h.init(id, -1, 0)
			pid, epoch := res.ProducerID, res.ProducerEpoch
			if err := h.add(id, pid, epoch, "out"); err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				var err error
				switch s.op {
				case "offsets", "offsets-other":
					tp := TopicPartition{"in", 0}
					if s.op == "offsets-other" {
						tp.Partition = 1
					}
					pg := PendingGroup{Group: "g", Generation: -1, Offsets: map[TopicPartition]Offset{tp: {Offset: 7, LeaderEpoch: -1}}}
					h.apply(h.s.CommitOffsets(h.now, id, pid, epoch, pg, func(e error) { err = e }))
				case "end-commit", "end-abort":
					err = h.end(id, pid, epoch, s.op == "end-commit")
				case "complete":
					m := h.s.txns[id]
					h.apply(h.s.complete(markerJob{id: id, pid: m.pid, epoch: m.epoch, commit: m.state == kmsg.TransactionStatePrepareCommit}, h.now))
				case "timeout":
					fn := h.timers.fns[timeoutKey(id)]
					if fn == nil {
						t.Fatalf("step %d: no timeout scheduled", i)
					}
					h.timers.Cancel(timeoutKey(id))
					h.apply(fn(h.now.Add(time.Minute)))
				case "fence":
					if r := h.init(id, -1, 0); r.Err != ErrConcurrentTransactions {
						t.Fatalf("step %d: init while ongoing: %v", i, r.Err)
					}
				case "unload":
					h.s.Unloaded()
				}
				if err != nil {
					t.Fatalf("step %d (%s): %v", i, s.op, err)
				}
				if got := c.HasPendingOffsets(key.group, key.topic, key.partition); got != s.pending {
					t.Fatalf("step %d (%s): pending %v, want %v", i, s.op, got, s.pending)
				}
				if s.op == "unload" {
					continue
				}
				// A new leader replaying the log so far sees the same. A decided commit is
				// still pending until its completion runs (here it cannot: the test
				// coordinator has no shards to hand the completion to).
				r, rc := newOffsetsHarness(t)
				for j, rec := range h.log {
					if err := r.s.Replay(int64(j), rec.Key, rec.Value); err != nil {
						t.Fatal(err)
					}
				}
				r.s.Loaded(r.timers, r.now)
				if got := rc.HasPendingOffsets(key.group, key.topic, key.partition); got != s.pending {
					t.Fatalf("step %d (%s): after reload pending %v, want %v", i, s.op, got, s.pending)
				}
				r.s.Unloaded()
				if rc.HasPendingOffsets(key.group, key.topic, key.partition) {
					t.Fatalf("step %d (%s): pending after unload", i, s.op)
				}
			}
		})
	}
}

func TestPendingOffsetsCounts(t *testing.T) {
	p := newPendingOffsets()
	a, b := &Shard{}, &Shard{}
	k1, k2 := groupPartition{"g", "t", 0}, groupPartition{"g", "t", 1}
	p.set(a, "x", []groupPartition{k1, k2})
	p.set(b, "y", []groupPartition{k1})
	p.set(a, "x", []groupPartition{k2}) // replaced whole
	if !p.has(k1) || !p.has(k2) {
		t.Fatal("both keys should be pending")
	}
	p.dropShard(b) // a stale instance stopping removes only its own entries
	if p.has(k1) || !p.has(k2) {
		t.Fatalf("after dropping b: k1 %v k2 %v", p.has(k1), p.has(k2))
	}
	if got := p.ofGroup("g"); len(got) != 1 || !got[TopicPartition{"t", 1}] {
		t.Fatalf("ofGroup = %v", got)
	}
	p.set(a, "x", nil)
	if p.has(k2) || len(p.mu.count) != 0 || len(p.mu.byID) != 0 {
		t.Fatalf("view not empty: %v %v", p.mu.count, p.mu.byID)
	}
}

// TestPendingOffsetsConcurrentReads runs readers against a publishing shard, for -race.
func TestPendingOffsetsConcurrentReads(t *testing.T) {
	p := newPendingOffsets()
	s := &Shard{}
	k := groupPartition{"g", "t", 0}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					p.has(k)
				}
			}
		}()
	}
	for i := range 1000 {
		p.set(s, "x", []groupPartition{k})
		if i%2 == 0 {
			p.dropShard(s)
		}
	}
	close(stop)
	wg.Wait()
}
