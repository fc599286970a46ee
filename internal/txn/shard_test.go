package txn

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// fakeTimers records scheduled timers; tests fire them by hand.
type fakeTimers struct {
	fns map[string]func(time.Time) coord.Result
	at  map[string]time.Time
}

func (f *fakeTimers) Schedule(key string, at time.Time, fn func(time.Time) coord.Result) {
	f.fns[key], f.at[key] = fn, at
}
func (f *fakeTimers) Cancel(key string) { delete(f.fns, key); delete(f.at, key) }

type fakeMarkers struct {
	mu    sync.Mutex
	calls []string
	done  chan struct{}
}

func (f *fakeMarkers) WriteMarker(tp TopicPartition, pid int64, epoch int16, commit bool, _ int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := "abort"
	if commit {
		kind = "commit"
	}
	f.calls = append(f.calls, tp.Topic+"/"+kind)
	select {
	case f.done <- struct{}{}:
	default:
	}
	return nil
}

type fakeOffsets struct{}

func (fakeOffsets) CommitTxnOffsets(string, PendingGroup, func(error)) {}

// harness runs shard operations synchronously, applying their records and Done at once.
type harness struct {
	t      *testing.T
	s      *Shard
	timers *fakeTimers
	log    []coord.Record
	now    time.Time
}

func newHarness(t *testing.T) *harness {
	c := NewCoordinator(Config{MaxTimeout: time.Minute}, 1, nil, nil, &fakeMarkers{done: make(chan struct{}, 16)}, fakeOffsets{}, nil, nil)
	t.Cleanup(c.Close)
	h := &harness{t: t, s: newShard(0, c), timers: &fakeTimers{fns: map[string]func(time.Time) coord.Result{}, at: map[string]time.Time{}},
		now: time.UnixMilli(1_000_000)}
	h.s.Loaded(h.timers, h.now)
	return h
}

func (h *harness) apply(r coord.Result) {
	h.log = append(h.log, r.Records...)
	if r.Done != nil {
		r.Done(nil)
	}
}

func (h *harness) init(id string, pid int64, epoch int16) InitResult {
	var res InitResult
	h.apply(h.s.InitProducerID(h.now, InitRequest{TransactionalID: id, TimeoutMs: 10_000, ProducerID: pid, ProducerEpoch: epoch}, 100, func(r InitResult) { res = r }))
	return res
}

func (h *harness) add(id string, pid int64, epoch int16, topic string) error {
	var err error
	h.apply(h.s.AddPartitions(h.now, id, pid, epoch, []TopicPartition{{topic, 0}}, "", func(e error) { err = e }))
	return err
}

func (h *harness) end(id string, pid int64, epoch int16, commit bool) error {
	var err error
	h.apply(h.s.EndTxn(h.now, id, pid, epoch, commit, func(e error) { err = e }))
	return err
}

func TestTransactionStateMachine(t *testing.T) {
	type step struct {
		op        string // init, add, end-commit, end-abort, complete, timeout, verify
		pid       int64
		epoch     int16
		wantErr   error
		wantState kmsg.TransactionState
		wantEpoch int16
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"commit", []step{
			{op: "init", pid: -1, wantState: kmsg.TransactionStateEmpty},
			{op: "add", pid: 100, wantState: kmsg.TransactionStateOngoing},
			{op: "verify", pid: 100, wantState: kmsg.TransactionStateOngoing},
			{op: "end-commit", pid: 100, wantState: kmsg.TransactionStatePrepareCommit},
			{op: "add", pid: 100, wantErr: ErrConcurrentTransactions, wantState: kmsg.TransactionStatePrepareCommit},
			{op: "init", pid: -1, wantErr: ErrConcurrentTransactions, wantState: kmsg.TransactionStatePrepareCommit},
			{op: "complete", wantState: kmsg.TransactionStateCompleteCommit},
			{op: "verify", pid: 100, wantErr: ErrInvalidTxnState, wantState: kmsg.TransactionStateCompleteCommit},
			{op: "end-commit", pid: 100, wantState: kmsg.TransactionStateCompleteCommit}, // a retry
			{op: "end-abort", pid: 100, wantErr: ErrInvalidTxnState, wantState: kmsg.TransactionStateCompleteCommit},
		}},
		{"fencing", []step{
			{op: "init", pid: -1, wantState: kmsg.TransactionStateEmpty},
			{op: "add", pid: 100, wantState: kmsg.TransactionStateOngoing},
			// A second instance: the open transaction is aborted with a bumped epoch.
			{op: "init", pid: -1, wantErr: ErrConcurrentTransactions, wantState: kmsg.TransactionStatePrepareAbort, wantEpoch: 1},
			{op: "complete", wantState: kmsg.TransactionStateCompleteAbort, wantEpoch: 1},
			{op: "init", pid: -1, wantState: kmsg.TransactionStateEmpty, wantEpoch: 2},
			{op: "add", pid: 100, epoch: 0, wantErr: ErrProducerFenced, wantState: kmsg.TransactionStateEmpty, wantEpoch: 2},
			{op: "add", pid: 7, epoch: 2, wantErr: ErrInvalidProducerIDMapping, wantState: kmsg.TransactionStateEmpty, wantEpoch: 2},
			{op: "end-commit", pid: 100, epoch: 2, wantErr: ErrInvalidTxnState, wantState: kmsg.TransactionStateEmpty, wantEpoch: 2},
			// KIP-360: only the current epoch may ask for a bump.
			{op: "init", pid: 100, epoch: 1, wantErr: ErrProducerFenced, wantState: kmsg.TransactionStateEmpty, wantEpoch: 2},
		}},
		{"timeout", []step{
			{op: "init", pid: -1, wantState: kmsg.TransactionStateEmpty},
			{op: "add", pid: 100, wantState: kmsg.TransactionStateOngoing},
			{op: "timeout", wantState: kmsg.TransactionStatePrepareAbort, wantEpoch: 1},
			{op: "complete", wantState: kmsg.TransactionStateCompleteAbort, wantEpoch: 1},
			{op: "end-commit", pid: 100, epoch: 0, wantErr: ErrProducerFenced, wantState: kmsg.TransactionStateCompleteAbort, wantEpoch: 1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			const id = "tx"
			for i, s := range tc.steps {
				var err error
				switch s.op {
				case "init":
					err = h.init(id, s.pid, s.epoch).Err
				case "add":
					err = h.add(id, s.pid, s.epoch, "t")
				case "verify":
					err = h.s.Verify(id, s.pid, s.epoch, TopicPartition{"t", 0})
				case "end-commit", "end-abort":
					err = h.end(id, s.pid, s.epoch, s.op == "end-commit")
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
				}
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d (%s): err %v, want %v", i, s.op, err, s.wantErr)
				}
				m := h.s.txns[id]
				if m.state != s.wantState || m.epoch != s.wantEpoch {
					t.Fatalf("step %d (%s): state %v epoch %d, want %v epoch %d", i, s.op, m.state, m.epoch, s.wantState, s.wantEpoch)
				}
			}
			// Replaying what was written rebuilds the same state.
			r := newHarness(t)
			for i, rec := range h.log {
				if err := r.s.Replay(int64(i), rec.Key, rec.Value); err != nil {
					t.Fatal(err)
				}
			}
			a, b := h.s.txns[id], r.s.txns[id]
			if a.pid != b.pid || a.epoch != b.epoch || a.state != b.state || len(a.parts) != len(b.parts) {
				t.Fatalf("replayed %+v, want %+v", b, a)
			}
		})
	}
}

func TestPendingOffsetsReplay(t *testing.T) {
	h := newHarness(t)
	res := h.init("tx", -1, 0)
	var err error
	inst := "i1"
	pg := PendingGroup{Group: "g", MemberID: "m", Generation: 3, InstanceID: &inst,
		Offsets: map[TopicPartition]Offset{{"in", 0}: {Offset: 42, LeaderEpoch: 1, Metadata: "md"}}}
	h.apply(h.s.CommitOffsets(h.now, "tx", res.ProducerID, res.ProducerEpoch, pg, func(e error) { err = e }))
	if !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("offsets outside a transaction: %v", err)
	}
	if err := h.add("tx", res.ProducerID, res.ProducerEpoch, "out"); err != nil {
		t.Fatal(err)
	}
	h.apply(h.s.CommitOffsets(h.now, "tx", res.ProducerID, res.ProducerEpoch, pg, func(e error) { err = e }))
	if err != nil {
		t.Fatal(err)
	}
	r := newHarness(t)
	for i, rec := range h.log {
		if err := r.s.Replay(int64(i), rec.Key, rec.Value); err != nil {
			t.Fatal(err)
		}
	}
	got := r.s.txns["tx"].offsets["g"]
	if got == nil || got.MemberID != "m" || got.Generation != 3 || *got.InstanceID != "i1" ||
		got.Offsets[TopicPartition{"in", 0}] != (Offset{42, 1, "md"}) {
		t.Fatalf("replayed offsets %+v", got)
	}
}

func TestPartitionForMatchesKafka(t *testing.T) {
	// abs("my-txn".hashCode()) % 50, computed with Java's String.hashCode.
	tests := []struct {
		id   string
		n    int32
		want int32
	}{
		{"", 50, 0},
		{"a", 50, 97 % 50},
		{"ab", 50, (31*97 + 98) % 50},
	}
	for _, tc := range tests {
		if got := partitionFor(tc.id, tc.n); got != tc.want {
			t.Errorf("partitionFor(%q, %d) = %d, want %d", tc.id, tc.n, got, tc.want)
		}
	}
}
