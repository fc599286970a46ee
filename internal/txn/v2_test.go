package txn

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func (h *harness) addV2(id string, pid int64, epoch int16, topic string) error {
	var err error
	h.apply(h.s.addPartitions(h.now, id, pid, epoch, []TopicPartition{{topic, 0}}, "", true, func(e error) { err = e }))
	return err
}

func (h *harness) endV2(id string, pid int64, epoch int16, commit bool, fresh int64) EndResult {
	res := EndResult{ProducerID: -2}
	h.apply(h.s.EndTxnV2(h.now, id, pid, epoch, commit, fresh, func(r EndResult) { res = r }))
	if res.ProducerID == -2 {
		h.t.Fatal("EndTxnV2 did not answer")
	}
	return res
}

// completeMarkers runs what the marker writer does once every marker is written.
func (h *harness) completeMarkers(id string) markerJob {
	m := h.s.txns[id]
	job := markerJob{id: id, pid: m.pid, epoch: m.epoch, commit: m.state == kmsg.TransactionStatePrepareCommit}
	h.apply(h.s.complete(job, h.now))
	return job
}

// replayed rebuilds a shard from everything h wrote.
func (h *harness) replayed() *harness {
	r := newHarness(h.t)
	for i, rec := range h.log {
		if err := r.s.Replay(int64(i), rec.Key, rec.Value); err != nil {
			h.t.Fatal(err)
		}
	}
	return r
}

func TestEndTxnV2(t *testing.T) {
	type step struct {
		op        string // init, add1 (part-1 add), add, commit, abort, complete, timeout
		epoch     int16  // the request's epoch (pid is always 100)
		wantErr   error
		wantPID   int64 // EndTxn's answer when it succeeds
		wantEpoch int16 // EndTxn's answer when it succeeds
		state     kmsg.TransactionState
		epochNow  int16 // the stored epoch afterwards
	}
	const (
		empty      = kmsg.TransactionStateEmpty
		ongoing    = kmsg.TransactionStateOngoing
		prepCommit = kmsg.TransactionStatePrepareCommit
		prepAbort  = kmsg.TransactionStatePrepareAbort
		commitDone = kmsg.TransactionStateCompleteCommit
		abortDone  = kmsg.TransactionStateCompleteAbort
	)
	tests := []struct {
		name  string
		steps []step
	}{
		{"commit bumps the epoch", []step{
			{op: "init", state: empty},
			{op: "add", state: ongoing},
			{op: "commit", wantPID: 100, wantEpoch: 1, state: prepCommit, epochNow: 1},
			// The next transaction starts before the markers are written: retried by the caller.
			{op: "add", epoch: 1, wantErr: ErrConcurrentTransactions, state: prepCommit, epochNow: 1},
			{op: "commit", epoch: 0, wantErr: ErrConcurrentTransactions, state: prepCommit, epochNow: 1}, // a retry
			{op: "abort", epoch: 0, wantErr: ErrInvalidTxnState, state: prepCommit, epochNow: 1},
			// The next transaction ended at once, before the markers: it waits too.
			{op: "abort", epoch: 1, wantErr: ErrConcurrentTransactions, state: prepCommit, epochNow: 1},
			{op: "commit", epoch: 2, wantErr: ErrProducerFenced, state: prepCommit, epochNow: 1},
			{op: "complete", state: commitDone, epochNow: 1},
			{op: "commit", epoch: 0, wantPID: 100, wantEpoch: 1, state: commitDone, epochNow: 1}, // answered again
			{op: "abort", epoch: 0, wantErr: ErrInvalidTxnState, state: commitDone, epochNow: 1},
			// A late write of the ended transaction is fenced.
			{op: "add", epoch: 0, wantErr: ErrProducerFenced, state: commitDone, epochNow: 1},
			{op: "commit", epoch: 1, wantErr: ErrInvalidTxnState, state: commitDone, epochNow: 1},
			{op: "add", epoch: 1, state: ongoing, epochNow: 1},
			{op: "abort", epoch: 1, wantPID: 100, wantEpoch: 2, state: prepAbort, epochNow: 2},
			{op: "complete", state: abortDone, epochNow: 2},
			{op: "abort", epoch: 1, wantPID: 100, wantEpoch: 2, state: abortDone, epochNow: 2},
			{op: "commit", epoch: 1, wantErr: ErrInvalidTxnState, state: abortDone, epochNow: 2},
		}},
		{"empty aborts", []step{
			{op: "init", state: empty},
			{op: "commit", wantErr: ErrInvalidTxnState, state: empty},
			{op: "abort", wantPID: 100, wantEpoch: 1, state: prepAbort, epochNow: 1},
			{op: "complete", state: abortDone, epochNow: 1},
			{op: "abort", epoch: 1, wantPID: 100, wantEpoch: 2, state: prepAbort, epochNow: 2},
			{op: "complete", state: abortDone, epochNow: 2},
			{op: "abort", epoch: 0, wantErr: ErrProducerFenced, state: abortDone, epochNow: 2},
		}},
		{"fenced and unknown epochs", []step{
			{op: "init", state: empty},
			{op: "add", state: ongoing},
			{op: "commit", epoch: 1, wantErr: ErrProducerFenced, state: ongoing},
			{op: "init", wantErr: ErrConcurrentTransactions, state: prepAbort, epochNow: 1}, // a new instance
			{op: "complete", state: abortDone, epochNow: 1},
			{op: "init", state: empty, epochNow: 2},
			// The old instance's late abort at epoch 0: neither current nor a retry.
			{op: "abort", epoch: 0, wantErr: ErrProducerFenced, state: empty, epochNow: 2},
			{op: "commit", epoch: 3, wantErr: ErrProducerFenced, state: empty, epochNow: 2},
		}},
		{"a timed out transaction's producer retries its abort", []step{
			{op: "init", state: empty},
			{op: "add", state: ongoing},
			{op: "timeout", state: prepAbort, epochNow: 1},
			{op: "complete", state: abortDone, epochNow: 1},
			{op: "abort", epoch: 0, wantPID: 100, wantEpoch: 1, state: abortDone, epochNow: 1},
			{op: "commit", epoch: 0, wantErr: ErrInvalidTxnState, state: abortDone, epochNow: 1},
		}},
		{"part 1 stays as it was", []step{
			{op: "init", state: empty},
			{op: "add1", state: ongoing},
			{op: "end1-commit", state: prepCommit},
			{op: "complete", state: commitDone},
			{op: "add1", state: ongoing},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			const id = "tx"
			for i, s := range tc.steps {
				var (
					err error
					res EndResult
				)
				switch s.op {
				case "init":
					err = h.init(id, -1, 0).Err
				case "add":
					err = h.addV2(id, 100, s.epoch, "t")
				case "add1":
					err = h.add(id, 100, s.epoch, "t")
				case "end1-commit":
					err = h.end(id, 100, s.epoch, true)
				case "commit", "abort":
					res = h.endV2(id, 100, s.epoch, s.op == "commit", -1)
					err = res.Err
				case "complete":
					h.completeMarkers(id)
				case "timeout":
					fn := h.timers.fns[timeoutKey(id)]
					if fn == nil {
						t.Fatalf("step %d: no timeout scheduled", i)
					}
					h.timers.Cancel(timeoutKey(id))
					h.apply(fn(h.now.Add(time.Minute)))
				}
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d (%s %d): err %v, want %v", i, s.op, s.epoch, err, s.wantErr)
				}
				if (s.op == "commit" || s.op == "abort") && err == nil &&
					(res.ProducerID != s.wantPID || res.ProducerEpoch != s.wantEpoch) {
					t.Fatalf("step %d (%s %d): answered %d/%d, want %d/%d", i, s.op, s.epoch,
						res.ProducerID, res.ProducerEpoch, s.wantPID, s.wantEpoch)
				}
				m := h.s.txns[id]
				if m.state != s.state || m.epoch != s.epochNow {
					t.Fatalf("step %d (%s %d): state %v epoch %d, want %v epoch %d", i, s.op, s.epoch, m.state, m.epoch, s.state, s.epochNow)
				}
			}
			a, b := h.s.txns[id], h.replayed().s.txns[id]
			if a.pid != b.pid || a.epoch != b.epoch || a.state != b.state || a.tv2 != b.tv2 || len(a.parts) != len(b.parts) {
				t.Fatalf("replayed %+v, want %+v", b, a)
			}
		})
	}
}

// TestEndTxnV2Markers checks that the markers of a transaction of version 2 carry the bumped
// epoch, which is what fences a late write of that transaction on the partitions.
func TestEndTxnV2Markers(t *testing.T) {
	h := newHarness(t)
	h.init("tx", -1, 0)
	if err := h.addV2("tx", 100, 0, "out"); err != nil {
		t.Fatal(err)
	}
	if res := h.endV2("tx", 100, 0, true, -1); res.Err != nil {
		t.Fatal(res.Err)
	}
	job := h.completeMarkers("tx")
	if job.pid != 100 || job.epoch != 1 || !job.commit {
		t.Fatalf("marker job %+v, want producer 100 epoch 1 commit", job)
	}
}

func TestEndTxnV2EpochExhausted(t *testing.T) {
	h := newHarness(t)
	h.init("tx", -1, 0)
	last := int16(math.MaxInt16 - 1)
	h.s.txns["tx"].epoch = last // as if 32766 transactions had ended
	if err := h.addV2("tx", 100, last, "out"); err != nil {
		t.Fatal(err)
	}
	res := h.endV2("tx", 100, last, true, 200)
	if res.Err != nil || res.ProducerID != 200 || res.ProducerEpoch != 0 {
		t.Fatalf("EndTxn at the last epoch answered %+v, want producer 200 epoch 0", res)
	}
	job := h.completeMarkers("tx")
	if job.pid != 100 || job.epoch != math.MaxInt16 {
		t.Fatalf("markers written as %d/%d, want 100/%d", job.pid, job.epoch, math.MaxInt16)
	}
	m := h.s.txns["tx"]
	if m.pid != 200 || m.epoch != 0 || m.prevPid != 100 || m.state != kmsg.TransactionStateCompleteCommit {
		t.Fatalf("after completion %+v", m)
	}
	// The answer was lost: the producer retries with its old id and last epoch.
	if res := h.endV2("tx", 100, last, true, -1); res.Err != nil || res.ProducerID != 200 || res.ProducerEpoch != 0 {
		t.Fatalf("retry answered %+v", res)
	}
	if err := h.addV2("tx", 100, last, "out"); !errors.Is(err, ErrInvalidProducerIDMapping) {
		t.Fatalf("late write under the old id: %v", err)
	}
	if err := h.addV2("tx", 200, 0, "out"); err != nil {
		t.Fatalf("next transaction under the new id: %v", err)
	}
	r := h.replayed().s.txns["tx"]
	if r.pid != 200 || r.epoch != 0 || r.prevPid != 100 || !r.tv2 || r.state != kmsg.TransactionStateOngoing {
		t.Fatalf("replayed %+v", r)
	}
}

// TestEndTxnV2ReplayMidDecision: a shard that loads a decided transaction of version 2 whose
// epoch rotates finishes it with the same markers and the same new id.
func TestEndTxnV2ReplayMidDecision(t *testing.T) {
	h := newHarness(t)
	h.init("tx", -1, 0)
	last := int16(math.MaxInt16 - 1)
	h.s.txns["tx"].epoch = last
	if err := h.addV2("tx", 100, last, "out"); err != nil {
		t.Fatal(err)
	}
	h.endV2("tx", 100, last, false, 300)
	r := h.replayed()
	m := r.s.txns["tx"]
	if m.state != kmsg.TransactionStatePrepareAbort || m.nextPid != 300 || m.epoch != math.MaxInt16 {
		t.Fatalf("replayed decision %+v", m)
	}
	r.completeMarkers("tx")
	if m.pid != 300 || m.epoch != 0 || m.prevPid != 100 {
		t.Fatalf("completed after replay %+v", m)
	}
}

func TestCommitOffsetsV2OpensTransaction(t *testing.T) {
	h, c := newOffsetsHarness(t)
	h.init("tx", -1, 0)
	pg := PendingGroup{Group: "g", Generation: -1, Offsets: map[TopicPartition]Offset{{"in", 0}: {Offset: 7, LeaderEpoch: -1}}}
	var err error
	h.apply(h.s.CommitOffsetsV2(h.now, "tx", 100, 0, 2, pg, func(e error) { err = e }))
	if err != nil {
		t.Fatal(err)
	}
	m := h.s.txns["tx"]
	if m.state != kmsg.TransactionStateOngoing || !m.parts[TopicPartition{OffsetsTopic, 2}] || !m.tv2 {
		t.Fatalf("after TxnOffsetCommit v5: %+v", m)
	}
	if !c.HasPendingOffsets("g", "in", 0) {
		t.Fatal("offsets not pending")
	}
	r := h.replayed().s.txns["tx"]
	if r.state != kmsg.TransactionStateOngoing || r.offsets["g"] == nil || r.offsets["g"].Offsets[TopicPartition{"in", 0}].Offset != 7 {
		t.Fatalf("replayed %+v", r)
	}
	h.apply(h.s.CommitOffsetsV2(h.now, "tx", 100, 1, 2, pg, func(e error) { err = e }))
	if !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("wrong epoch: %v", err)
	}
}

// An EndTxn that needs a fresh producer id reserves it off the shard and runs again; if the
// shard is gone meanwhile the producer is still answered (regression guard: it used to wait
// forever).
func TestEndTxnV2FreshIDShardGone(t *testing.T) {
	h := newHarness(t)
	h.init("tx", -1, 0)
	last := int16(math.MaxInt16 - 1)
	h.s.txns["tx"].epoch = last
	if err := h.addV2("tx", 100, last, "out"); err != nil {
		t.Fatal(err)
	}
	done := make(chan EndResult, 1)
	res := h.s.EndTxnV2(h.now, "tx", 100, last, true, -1, func(r EndResult) { done <- r })
	if len(res.Records) != 0 {
		t.Fatalf("decided before a fresh id was reserved: %+v", res)
	}
	if m := h.s.txns["tx"]; m.state != kmsg.TransactionStateOngoing || m.epoch != last {
		t.Fatalf("changed before a fresh id was reserved: %+v", m)
	}
	select {
	case r := <-done:
		if r.Err == nil {
			t.Fatalf("answered %+v with no shard to run on", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EndTxn never answered")
	}
}
