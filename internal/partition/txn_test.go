package partition

import (
	"errors"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// txnBatch builds a transactional batch of n records.
func txnBatch(t testing.TB, n int, pid int64, epoch int16, seq int32) []byte {
	t.Helper()
	b := batch(t, n, pid, epoch, seq)
	h, _ := record.ParseHeader(b)
	h.Attributes |= 1 << 4
	recs, err := record.Records(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	out, err := record.Build(nil, h, recs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func commitAll(t *testing.T, p *Partition) {
	t.Helper()
	if err := p.AwaitCommitted(p.LogEndOffset(), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestTransactionsLSOAndAbortedIndex(t *testing.T) {
	type step struct {
		op        string // "data", "txn", "commit", "abort"
		pid       int64
		epoch     int16
		seq       int32
		n         int
		wantErr   error
		wantLSO   int64
		wantAbort []AbortedTxn // AbortedTxns(0, end) after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"commit", []step{
			{op: "txn", pid: 1, n: 3, wantLSO: 0},
			{op: "data", pid: -1, n: 2, wantLSO: 0},
			{op: "commit", pid: 1, wantLSO: 6},
		}},
		{"abort then new txn", []step{
			{op: "txn", pid: 1, n: 2, wantLSO: 0},
			{op: "abort", pid: 1, wantLSO: 3, wantAbort: []AbortedTxn{{1, 0, 2}}},
			{op: "txn", pid: 1, seq: 2, n: 1, wantLSO: 3, wantAbort: []AbortedTxn{{1, 0, 2}}},
			{op: "commit", pid: 1, wantLSO: 5, wantAbort: []AbortedTxn{{1, 0, 2}}},
		}},
		{"two producers", []step{
			{op: "txn", pid: 1, n: 1, wantLSO: 0},
			{op: "txn", pid: 2, n: 1, wantLSO: 0},
			{op: "commit", pid: 1, wantLSO: 1},
			{op: "abort", pid: 2, wantLSO: 4, wantAbort: []AbortedTxn{{2, 1, 3}}},
		}},
		{"fenced by bumped marker", []step{
			{op: "txn", pid: 1, n: 1, wantLSO: 0},
			{op: "abort", pid: 1, epoch: 1, wantLSO: 2, wantAbort: []AbortedTxn{{1, 0, 1}}},
			{op: "txn", pid: 1, seq: 1, n: 1, wantErr: ErrInvalidEpoch, wantLSO: 2, wantAbort: []AbortedTxn{{1, 0, 1}}},
			{op: "commit", pid: 1, epoch: 0, wantErr: ErrInvalidEpoch, wantLSO: 2, wantAbort: []AbortedTxn{{1, 0, 1}}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewMem()
			p := open(t, fs, testConfig(fs))
			check := func(p *Partition, i int, s step) {
				t.Helper()
				if got := p.LastStableOffset(); got != s.wantLSO {
					t.Fatalf("step %d: lso %d, want %d", i, got, s.wantLSO)
				}
				got := p.AbortedTxns(0, p.LogEndOffset())
				if len(got) != len(s.wantAbort) {
					t.Fatalf("step %d: aborted %v, want %v", i, got, s.wantAbort)
				}
				for j := range got {
					if got[j] != s.wantAbort[j] {
						t.Fatalf("step %d: aborted %v, want %v", i, got, s.wantAbort)
					}
				}
			}
			var last step
			for i, s := range tc.steps {
				var err error
				switch s.op {
				case "data":
					_, err = p.Append(batch(t, s.n, s.pid, s.epoch, s.seq))
				case "txn":
					_, err = p.Append(txnBatch(t, s.n, s.pid, s.epoch, s.seq))
				case "commit", "abort":
					_, err = p.AppendMarker(s.pid, s.epoch, s.op == "commit", 0)
				}
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: err %v, want %v", i, err, s.wantErr)
				}
				commitAll(t, p)
				check(p, i, s)
				last = s
			}
			// The same state comes back from the log after a restart.
			p.Close()
			p2 := open(t, fs, testConfig(fs))
			check(p2, len(tc.steps), last)
		})
	}
}

func TestReadCommittedStopsAtLSO(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	if _, err := p.Append(batch(t, 2, -1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(txnBatch(t, 2, 7, 0, 0)); err != nil {
		t.Fatal(err)
	}
	commitAll(t, p)
	s, err := p.ReadCommitted(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if s.NextOffset != 2 {
		t.Fatalf("read_committed read up to %d, want 2", s.NextOffset)
	}
	if got := p.OngoingTxnFirst(7); got != 2 {
		t.Fatalf("ongoing first %d", got)
	}
	if _, err := p.AppendMarker(7, 0, true, 0); err != nil {
		t.Fatal(err)
	}
	commitAll(t, p)
	if s, _ = p.ReadCommitted(0, 1<<20, true); s.NextOffset != 5 {
		t.Fatalf("after commit read up to %d, want 5", s.NextOffset)
	}
}

func TestNonIdempotentTransactionalBatchRefused(t *testing.T) {
	fs := vfs.NewMem()
	p := open(t, fs, testConfig(fs))
	b := batch(t, 1, -1, 0, 0)
	h, _ := record.ParseHeader(b)
	h.Attributes |= 1 << 4
	recs, _ := record.Records(b, 0)
	b, _ = record.Build(nil, h, recs)
	if _, err := p.Append(b); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("err %v", err)
	}
}

func TestProducerIDExpiration(t *testing.T) {
	fs := vfs.NewMem()
	cfg := testConfig(fs)
	now := time.Now()
	cfg.Log.Now = func() time.Time { return now }
	cfg.ProducerIDExpiration = time.Hour
	p := open(t, fs, cfg)
	if _, err := p.Append(batch(t, 1, 1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(txnBatch(t, 1, 2, 0, 0)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := p.Append(batch(t, 1, 3, 0, 0)); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, ps := range p.Producers() {
		ids = append(ids, ps.ProducerID)
	}
	// Producer 1 idled past the expiration; 2 has an open transaction; 3 just appended.
	if len(ids) != 2 || ids[0] != 2 || ids[1] != 3 {
		t.Fatalf("producers after expiry: %v", ids)
	}
	// The forgotten producer continuing at sequence 1 is out of order.
	if _, err := p.Append(batch(t, 1, 1, 0, 1)); !errors.Is(err, ErrOutOfOrderSeq) {
		t.Fatalf("expired producer: %v", err)
	}
}
