package partition

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// openNode opens the test partition as node id on its own filesystem.
func openNode(t *testing.T, fs vfs.FS, id int32, cfg Config) *Partition {
	t.Helper()
	cfg.NodeID = id
	p, err := Open(testDir, "t", [16]byte{1}, 0, 0, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// neverFlush is the test config with FlushNever: appends count as committed locally at once,
// so the HW depends on follower progress alone and tests need no waiting.
func neverFlush(fs vfs.FS) Config {
	cfg := testConfig(fs)
	cfg.FlushPolicy = FlushNever
	return cfg
}

func mustLead(t *testing.T, p *Partition, self int32, st LeaderState, now time.Time) {
	t.Helper()
	if err := p.BecomeLeader(self, st, now); err != nil {
		t.Fatal(err)
	}
}

func mustAppend(t *testing.T, p *Partition, b []byte) AppendResult {
	t.Helper()
	res, err := p.Append(b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustFetch(t *testing.T, p *Partition, replica int32, off int64, now time.Time) int64 {
	t.Helper()
	hw, err := p.FollowerFetch(replica, off, now)
	if err != nil {
		t.Fatalf("fetch by %d at %d: %v", replica, off, err)
	}
	return hw
}

// replicate copies the leader's log to the follower as a fetcher does (read from the
// follower's end, append, flush, report the durable end, take the leader's HW) until the
// follower has everything. maxBytes keeps reads small, so payloads hold a few batches.
func replicate(t *testing.T, leader, follower *Partition, id int32, maxBytes int, now time.Time) {
	t.Helper()
	for {
		off := follower.LogEndOffset()
		hw, err := leader.FollowerFetch(id, off, now)
		if err != nil {
			t.Fatalf("fetch at %d: %v", off, err)
		}
		follower.SetFollowerHW(hw)
		if off == leader.LogEndOffset() {
			return
		}
		s, err := leader.ReadForFollower(off, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.ReadInto(nil)
		if err != nil || len(b) == 0 {
			t.Fatalf("read at %d: %d bytes, %v", off, len(b), err)
		}
		if _, err := follower.AppendAsFollower(b); err != nil {
			t.Fatalf("append as follower at %d: %v", off, err)
		}
		if _, err := follower.Flush(); err != nil {
			t.Fatal(err)
		}
	}
}

// segmentFiles returns the .log files of the partition directory and their bytes.
func segmentFiles(t *testing.T, fs vfs.FS) map[string][]byte {
	t.Helper()
	names, err := fs.List(testDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			b, err := readAll(fs, filepath.Join(testDir, n))
			if err != nil {
				t.Fatal(err)
			}
			out[n] = withoutPadding(b)
		}
	}
	return out
}

// withoutPadding cuts what a follower's direct writes may leave after a segment's last
// batch: zeros, less than a block of them. Anything else stays, for the comparison to see.
func withoutPadding(b []byte) []byte {
	n := 0
	for len(b)-n >= 12 {
		size := int(binary.BigEndian.Uint32(b[n+8:]))
		if size == 0 || len(b)-n-12 < size {
			break
		}
		n += 12 + size
	}
	if rest := b[n:]; len(rest) < vfs.DirectBlock && bytes.Count(rest, []byte{0}) == len(rest) {
		return b[:n]
	}
	return b
}

func sameSegments(t *testing.T, a, b vfs.FS) {
	t.Helper()
	sa, sb := segmentFiles(t, a), segmentFiles(t, b)
	if len(sa) != len(sb) {
		t.Fatalf("segments %v vs %v", slices.Sorted(mapKeys(sa)), slices.Sorted(mapKeys(sb)))
	}
	for n, ba := range sa {
		if !bytes.Equal(ba, sb[n]) {
			t.Fatalf("segment %s differs (%d vs %d bytes)", n, len(ba), len(sb[n]))
		}
	}
}

// logBytes concatenates the segments in offset order.
func logBytes(t *testing.T, fs vfs.FS) []byte {
	t.Helper()
	segs := segmentFiles(t, fs)
	var out []byte
	for _, n := range slices.Sorted(mapKeys(segs)) {
		out = append(out, segs[n]...)
	}
	return out
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestCheckLeaderEpoch(t *testing.T) {
	for _, tc := range []struct {
		cur, req int32
		want     error
	}{
		{5, -1, nil},
		{5, 5, nil},
		{5, 4, ErrFencedLeaderEpoch},
		{5, 0, ErrFencedLeaderEpoch},
		{5, 6, ErrUnknownLeaderEpoch},
		{0, 0, nil},
		{0, 1, ErrUnknownLeaderEpoch},
	} {
		if got := checkLeaderEpoch(tc.cur, tc.req); got != tc.want {
			t.Errorf("current %d, request %d: %v, want %v", tc.cur, tc.req, got, tc.want)
		}
	}
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 5, ISR: []int32{1}, Replicas: []int32{1}, MinISR: 1}, t0)
	if err := p.CheckLeaderEpoch(4); err != ErrFencedLeaderEpoch {
		t.Fatalf("partition check: %v", err)
	}
}

// TestSingleNodeDefaults: a partition opened as today leads itself alone.
func TestSingleNodeDefaults(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 7, testConfig(fs))
	if !p.IsLeader() || p.Leader() != 7 || !slices.Equal(p.ISR(), []int32{7}) || !p.EnoughReplicas() {
		t.Fatalf("leader %v/%d isr %v enough %v", p.IsLeader(), p.Leader(), p.ISR(), p.EnoughReplicas())
	}
	res := mustAppend(t, p, batch(t, 3, -1, 0, 0))
	if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if rs := p.ReplicaStates(); len(rs) != 1 || rs[0] != (ReplicaState{ID: 7, LogEndOffset: 3}) {
		t.Fatalf("replica states %+v", rs)
	}
}

func TestRoleErrors(t *testing.T) {
	fs := vfs.NewMem()
	leader := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, leader, 1, LeaderState{LeaderEpoch: 3, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, MinISR: 2}, t0)
	mustAppend(t, leader, batch(t, 2, -1, 0, 0))
	ffs := vfs.NewMem()
	follower := openNode(t, ffs, 2, neverFlush(ffs))
	if err := follower.BecomeFollower(1, 3, 0); err != nil {
		t.Fatal(err)
	}
	good := batch(t, 1, -1, 0, 0)
	record.SetBaseOffset(good, 0)
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-1] ^= 1

	for _, tc := range []struct {
		name string
		do   func() error
		want error
	}{
		{"follower Append", func() error { _, err := follower.Append(batch(t, 1, -1, 0, 0)); return err }, ErrNotLeader},
		{"follower AppendMarker", func() error { _, err := follower.AppendMarker(9, 0, true, 0); return err }, ErrNotLeader},
		{"follower ReadForFollower", func() error { _, err := follower.ReadForFollower(0, 100); return err }, ErrNotLeader},
		{"follower FollowerFetch", func() error { _, err := follower.FollowerFetch(1, 0, t0); return err }, ErrNotLeader},
		{"follower DeleteRecords", func() error { _, err := follower.DeleteRecords(0); return err }, ErrNotLeader},
		{"follower AwaitCommitted", func() error { return follower.AwaitCommitted(1, time.Now().Add(time.Second)) }, ErrNotLeader},
		{"follower older epoch", func() error { return follower.BecomeFollower(1, 2, 0) }, ErrFencedLeaderEpoch},
		{"follower lead older epoch", func() error { return follower.BecomeLeader(2, LeaderState{LeaderEpoch: 2}, t0) }, ErrFencedLeaderEpoch},
		{"follower corrupt batch", func() error { _, err := follower.AppendAsFollower(corrupt); return err }, record.ErrCorrupt},
		{"follower fragment", func() error { _, err := follower.AppendAsFollower(good[:40]); return err }, record.ErrCorrupt},
		{"leader AppendAsFollower", func() error { _, err := leader.AppendAsFollower(good); return err }, ErrNotLeader},
		{"leader TruncateTo", func() error { return leader.TruncateTo(0) }, ErrNotLeader},
		{"leader ResetTo", func() error { return leader.ResetTo(10) }, ErrNotLeader},
		{"unknown replica", func() error { _, err := leader.FollowerFetch(9, 0, t0); return err }, ErrNotLeader},
		{"fetch past the end", func() error { _, err := leader.FollowerFetch(2, 3, t0); return err }, ErrOffsetOutOfRange},
		{"leader older epoch", func() error { return leader.BecomeLeader(1, LeaderState{LeaderEpoch: 2}, t0) }, ErrFencedLeaderEpoch},
	} {
		if err := tc.do(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if follower.LogEndOffset() != 0 {
		t.Fatalf("refused appends wrote: end %d", follower.LogEndOffset())
	}
	// A well-placed batch with a trailing fragment: the whole batch goes in.
	if end, err := follower.AppendAsFollower(append(slices.Clone(good), good[:30]...)); err != nil || end != 1 {
		t.Fatalf("append with fragment: end %d, %v", end, err)
	}
	// A batch below the end is refused; one past it leaves a gap, as compaction does.
	if _, err := follower.AppendAsFollower(good); !errors.Is(err, ErrOffsetMismatch) {
		t.Fatalf("batch below the end: %v, want %v", err, ErrOffsetMismatch)
	}
	gap := slices.Clone(good)
	record.SetBaseOffset(gap, 5)
	if end, err := follower.AppendAsFollower(gap); err != nil || end != 6 {
		t.Fatalf("batch past a gap: end %d, %v", end, err)
	}
}

// TestLeaderHWOverISR: the HW is the minimum over the ISR, moves only when every member has
// fetched, never goes back, and stays at the leader's own committed end.
func TestLeaderHWOverISR(t *testing.T) {
	type step struct {
		appendRecs int   // > 0: append a batch of that many records
		replica    int32 // else a fetch by replica at off
		off        int64
		wantHW     int64
	}
	steps := []step{
		{appendRecs: 2, wantHW: 0},
		{appendRecs: 2, wantHW: 0},
		{appendRecs: 2, wantHW: 0},      // LEO 6
		{replica: 2, off: 6, wantHW: 0}, // 3 has not fetched
		{replica: 3, off: 2, wantHW: 2},
		{replica: 3, off: 4, wantHW: 4},
		{replica: 2, off: 2, wantHW: 4}, // 2 went back (restarted): the HW does not
		{replica: 2, off: 6, wantHW: 4},
		{replica: 3, off: 6, wantHW: 6},
		{appendRecs: 3, wantHW: 6}, // LEO 9
		{replica: 3, off: 9, wantHW: 6},
		{replica: 2, off: 9, wantHW: 9},
	}
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, MinISR: 2}, t0)
	for i, s := range steps {
		if s.appendRecs > 0 {
			mustAppend(t, p, batch(t, s.appendRecs, -1, 0, 0))
		} else if hw := mustFetch(t, p, s.replica, s.off, t0); hw != s.wantHW {
			t.Fatalf("step %d: fetch answered HW %d, want %d", i, hw, s.wantHW)
		}
		if hw := p.HighWatermark(); hw != s.wantHW {
			t.Fatalf("step %d: HW %d, want %d", i, hw, s.wantHW)
		}
	}
}

// TestLeaderHWProperty: over random appends and fetches, the HW is exactly
// max(previous HW, min(log end, ends of the ISR's followers)).
func TestLeaderHWProperty(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		fs := vfs.NewMem()
		p := openNode(t, fs, 1, neverFlush(fs))
		mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, MinISR: 1}, t0)
		bounds := []int64{0} // batch boundaries
		ends := map[int32]int64{2: -1, 3: -1}
		want := int64(0)
		for i := range 200 {
			if rng.Intn(3) == 0 {
				res := mustAppend(t, p, batch(t, 1+rng.Intn(3), -1, 0, 0))
				bounds = append(bounds, res.LastOffset+1)
			} else {
				id := int32(2 + rng.Intn(2))
				off := bounds[rng.Intn(len(bounds))]
				mustFetch(t, p, id, off, t0)
				ends[id] = off
			}
			want = max(want, min(p.LogEndOffset(), ends[2], ends[3]))
			hw := p.HighWatermark()
			if hw != want {
				t.Fatalf("seed %d step %d: HW %d, want %d (ends %v)", seed, i, hw, want, ends)
			}
			if _, ok := slices.BinarySearch(bounds, hw); !ok {
				t.Fatalf("seed %d step %d: HW %d is not a batch boundary", seed, i, hw)
			}
		}
		p.Close()
	}
}

// TestLeaderHWWaitsForOwnFsync: under FlushAlways followers ahead of the leader's disk do not
// make its HW pass what it has synced itself.
func TestLeaderHWWaitsForOwnFsync(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, testConfig(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, MinISR: 2}, t0)
	res := mustAppend(t, p, batch(t, 4, -1, 0, 0))
	done := make(chan error, 1)
	go func() { done <- p.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second)) }()
	mustFetch(t, p, 2, 4, t0)
	p.mu.Lock()
	local, hw := p.local.Load(), p.hw.Load()
	p.mu.Unlock()
	if hw > local {
		t.Fatalf("HW %d past the leader's synced end %d", hw, local)
	}
	durable, err := p.Flush()
	if err != nil || durable != 4 {
		t.Fatalf("flush: %d, %v", durable, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HW %d", hw)
	}
}

// TestCaughtUpTime follows Kafka's lastCaughtUpTime rule step by step.
func TestCaughtUpTime(t *testing.T) {
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	steps := []struct {
		appendRecs int
		off        int64
		at         int
		want       time.Time
	}{
		{appendRecs: 2, want: t0},       // from BecomeLeader
		{off: 0, at: 1, want: t0},       // behind, no earlier fetch
		{off: 2, at: 2, want: sec(2)},   // at the log end
		{appendRecs: 2, want: sec(2)},   // LEO 4
		{off: 2, at: 3, want: sec(2)},   // reached the end as of the fetch at 2s
		{appendRecs: 2, want: sec(2)},   // LEO 6
		{off: 4, at: 4, want: sec(3)},   // reached the end as of the fetch at 3s (4)
		{off: 4, at: 5, want: sec(3)},   // not the end as of 4s (6)
		{off: 6, at: 6, want: sec(6)},   // at the end
		{off: 6, at: 6, want: sec(6)},   // again
		{appendRecs: 1, want: sec(6)},   // LEO 7
		{off: 7, at: 20, want: sec(20)}, // long pause, then caught up
	}
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, MinISR: 1}, t0)
	for i, s := range steps {
		if s.appendRecs > 0 {
			mustAppend(t, p, batch(t, s.appendRecs, -1, 0, 0))
		} else {
			mustFetch(t, p, 2, s.off, sec(s.at))
		}
		rs := p.ReplicaStates()
		if len(rs) != 2 || rs[1].ID != 2 || !rs[1].LastCaughtUp.Equal(s.want) {
			t.Fatalf("step %d: %+v, want caught up at %v", i, rs, s.want)
		}
	}
}

// TestISRShrink: a follower that stops fetching leaves the ISR after lagMax; while the
// removal is pending it still holds the HW back; once committed the HW advances without it.
func TestISRShrink(t *testing.T) {
	const lag = 10 * time.Second
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, PartitionEpoch: 4, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, MinISR: 3}, t0)
	mustAppend(t, p, batch(t, 5, -1, 0, 0))
	mustFetch(t, p, 2, 5, t0.Add(time.Second))
	mustFetch(t, p, 3, 5, t0.Add(time.Second))
	if p.HighWatermark() != 5 || !p.EnoughReplicas() {
		t.Fatalf("HW %d, enough %v", p.HighWatermark(), p.EnoughReplicas())
	}
	mustAppend(t, p, batch(t, 5, -1, 0, 0)) // LEO 10; 3 stops fetching
	for s := 2; s <= 12; s += 2 {
		mustFetch(t, p, 2, 10, t0.Add(time.Duration(s)*time.Second))
		if isr, ok := p.ISRUpdate(t0.Add(time.Duration(s)*time.Second), lag); ok && s <= 11 {
			t.Fatalf("at %ds proposed %v", s, isr)
		}
	}
	// At 12s, 3 was last caught up at 1s: 11s > lag. The loop above proposed it at 12s.
	if isr, ok := p.ISRUpdate(t0.Add(13*time.Second), lag); ok {
		t.Fatalf("second proposal %v while one is pending", isr)
	}
	p.mu.Lock()
	proposed := slices.Clone(p.mu.rep.proposed)
	p.mu.Unlock()
	if !slices.Equal(proposed, []int32{1, 2}) {
		t.Fatalf("pending proposal %v", proposed)
	}
	if hw := p.HighWatermark(); hw != 5 {
		t.Fatalf("HW %d while the removal is pending", hw)
	}
	p.UpdateLeaderState(LeaderState{LeaderEpoch: 1, PartitionEpoch: 5, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, MinISR: 3}, t0.Add(14*time.Second))
	if hw := p.HighWatermark(); hw != 10 {
		t.Fatalf("HW %d after the shrink", hw)
	}
	if p.EnoughReplicas() || !errors.Is(p.CheckEnoughReplicas(), ErrNotEnoughReplicas) {
		t.Fatal("two replicas are enough for min.insync.replicas=3")
	}
	if !slices.Equal(p.ISR(), []int32{1, 2}) || p.PartitionEpoch() != 5 {
		t.Fatalf("ISR %v epoch %d", p.ISR(), p.PartitionEpoch())
	}
	// A stale image (older partition epoch) changes nothing.
	p.UpdateLeaderState(LeaderState{LeaderEpoch: 1, PartitionEpoch: 4, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, MinISR: 3}, t0)
	if !slices.Equal(p.ISR(), []int32{1, 2}) {
		t.Fatalf("stale image applied: ISR %v", p.ISR())
	}
}

// TestISRExpand: a lagging replica joins once it reached the HW and the current epoch's
// start; while the addition is pending the maximal ISR keeps the HW from passing it.
func TestISRExpand(t *testing.T) {
	const lag = 30 * time.Second
	for _, outcome := range []string{"committed", "failed"} {
		t.Run(outcome, func(t *testing.T) {
			fs := vfs.NewMem()
			p := openNode(t, fs, 1, neverFlush(fs))
			mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, PartitionEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, MinISR: 1}, t0)
			mustAppend(t, p, batch(t, 10, -1, 0, 0))
			mustFetch(t, p, 2, 10, t0)
			mustFetch(t, p, 3, 0, t0)
			if isr, ok := p.ISRUpdate(t0, lag); ok {
				t.Fatalf("replica 3 behind the HW proposed: %v", isr)
			}
			mustAppend(t, p, batch(t, 5, -1, 0, 0)) // LEO 15
			mustFetch(t, p, 2, 15, t0)
			mustFetch(t, p, 3, 15, t0)
			isr, ok := p.ISRUpdate(t0, lag)
			if !ok || !slices.Equal(isr, []int32{1, 2, 3}) {
				t.Fatalf("proposal %v %v", isr, ok)
			}
			mustAppend(t, p, batch(t, 3, -1, 0, 0)) // LEO 18
			mustAppend(t, p, batch(t, 2, -1, 0, 0)) // LEO 20
			if hw := mustFetch(t, p, 2, 20, t0); hw != 15 {
				t.Fatalf("HW %d passed the joining replica", hw)
			}
			if hw := mustFetch(t, p, 3, 18, t0); hw != 18 {
				t.Fatalf("HW %d", hw)
			}
			switch outcome {
			case "committed":
				p.UpdateLeaderState(LeaderState{LeaderEpoch: 1, PartitionEpoch: 2, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, MinISR: 1}, t0)
				if hw := p.HighWatermark(); hw != 18 {
					t.Fatalf("HW %d with 3 in the ISR at 18", hw)
				}
			case "failed":
				p.ISRProposalFailed()
				if hw := p.HighWatermark(); hw != 20 {
					t.Fatalf("HW %d over the committed ISR alone", hw)
				}
			}
			mustFetch(t, p, 3, 20, t0)
			if hw := p.HighWatermark(); hw != 20 {
				t.Fatalf("HW %d", hw)
			}
			if _, ok := p.ISRUpdate(t0, lag); ok != (outcome == "failed") {
				t.Fatalf("after %s, new proposal %v", outcome, ok)
			}
		})
	}
}

// TestISRExpandNeedsEpochStart: a replica at the HW but below the start of the new leader's
// epoch may hold a diverged tail; it does not join.
func TestISRExpandNeedsEpochStart(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, MinISR: 1}, t0)
	mustAppend(t, p, batch(t, 10, -1, 0, 0))
	mustFetch(t, p, 2, 10, t0) // HW 10
	mustAppend(t, p, batch(t, 10, -1, 0, 0))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 2, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2}, MinISR: 1}, t0) // epoch 2 starts at 20
	mustFetch(t, p, 3, 10, t0)
	if isr, ok := p.ISRUpdate(t0, time.Minute); ok {
		t.Fatalf("replica below the epoch start proposed: %v", isr)
	}
	mustFetch(t, p, 3, 20, t0)
	if isr, ok := p.ISRUpdate(t0, time.Minute); !ok || !slices.Equal(isr, []int32{1, 2, 3}) {
		t.Fatalf("proposal %v %v", isr, ok)
	}
	if hw := p.HighWatermark(); hw != 10 {
		t.Fatalf("HW %d moved before replica 2 fetched in the new epoch", hw)
	}
}

// TestAwaitCommittedEndsWithLeadership: an acks=all wait on a leader that becomes a follower
// ends with ErrNotLeader instead of waiting for offsets another leader may fill.
func TestAwaitCommittedEndsWithLeadership(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, neverFlush(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, MinISR: 2}, t0)
	res := mustAppend(t, p, batch(t, 3, -1, 0, 0))
	done := make(chan error, 1)
	go func() { done <- p.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second)) }()
	time.Sleep(10 * time.Millisecond) // let it wait (the outcome is the same if it has not)
	if err := p.BecomeFollower(2, 2, 1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrNotLeader) {
		t.Fatalf("await: %v", err)
	}
}

// leaderHistory writes a log across three leader epochs with plain, idempotent and
// transactional batches and markers, rolling segments often.
func leaderHistory(t *testing.T, p *Partition) {
	t.Helper()
	mustAppend(t, p, batch(t, 2, -1, 0, 0)) // epoch 0, from Open
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 3, PartitionEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1}, MinISR: 1}, t0)
	workload(t, p, 7, 150)
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 5, PartitionEpoch: 2, Replicas: []int32{1, 2}, ISR: []int32{1}, MinISR: 1}, t0)
	mustAppend(t, p, batch(t, 2, -1, 0, 0))
	mustAppend(t, p, txnBatch(t, 2, 9, 0, 0))
	mustAppend(t, p, txnBatch(t, 3, 10, 0, 0))
	if _, err := p.AppendMarker(9, 0, false, 4); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, batch(t, 1, -1, 0, 0))
	commitAll(t, p)
}

// lastIdempotent returns a retry of producer pid's last batch and the offset it was stored at.
func lastIdempotent(t *testing.T, p *Partition, pid int64) ([]byte, int64) {
	t.Helper()
	p.mu.Lock()
	pe := p.mu.producers[pid]
	if pe == nil || len(pe.batches) == 0 {
		p.mu.Unlock()
		t.Fatalf("producer %d has no batches", pid)
	}
	b := pe.batches[len(pe.batches)-1]
	epoch := pe.epoch
	p.mu.Unlock()
	return batch(t, int(b.lastSeq-b.firstSeq+1), pid, epoch, b.firstSeq), b.baseOffset
}

// TestFollowerReplicaMatchesLeader: batches copied from a leader give a follower
// byte-identical segments, the same leader epochs, producer state, LSO and aborted list; the
// same holds after the follower crashes and reopens; a follower turned leader answers an
// idempotent retry as a duplicate.
func TestFollowerReplicaMatchesLeader(t *testing.T) {
	lfs, ffs := vfs.NewMem(), vfs.NewMem()
	leader := openNode(t, lfs, 1, smallSegments(lfs))
	leaderHistory(t, leader)
	follower := openNode(t, ffs, 2, smallSegments(ffs))
	if err := follower.BecomeFollower(1, 5, 2); err != nil {
		t.Fatal(err)
	}
	replicate(t, leader, follower, 2, 700, t0)

	sameSegments(t, lfs, ffs)
	if len(segmentFiles(t, lfs)) < 3 {
		t.Fatal("the history should span several segments")
	}
	if hw := follower.HighWatermark(); hw != leader.HighWatermark() {
		t.Fatalf("follower HW %d, leader %d", hw, leader.HighWatermark())
	}
	want := stateOf(leader)
	if len(want.Aborted) == 0 || len(want.Epochs) != 3 {
		t.Fatalf("history too simple: %+v", want)
	}
	if got := stateOf(follower); !reflect.DeepEqual(got, want) {
		t.Fatalf("follower state\n%+v\nleader state\n%+v", got, want)
	}
	if e, start, ok := follower.LastEpoch(); !ok || e != 5 || start != want.Epochs[2].StartOffset {
		t.Fatalf("last epoch %d at %d (%v)", e, start, ok)
	}
	ckpt, err := readAll(ffs, filepath.Join(testDir, EpochCheckpointFile))
	if err != nil || !bytes.Equal(ckpt, FormatEpochCheckpoint(want.Epochs)) {
		t.Fatalf("follower checkpoint %q (%v)", ckpt, err)
	}

	// A crash: only what Flush made durable survives; all of it was flushed.
	crashed := ffs.CrashClone()
	reopened := openNode(t, crashed, 2, smallSegments(crashed))
	if got := stateOf(reopened); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened follower state\n%+v\nleader state\n%+v", got, want)
	}

	for name, p := range map[string]*Partition{"live": follower, "reopened": reopened} {
		mustLead(t, p, 2, LeaderState{LeaderEpoch: 6, Replicas: []int32{1, 2}, ISR: []int32{2}, MinISR: 1}, t0)
		retry, off := lastIdempotent(t, leader, 1)
		res := mustAppend(t, p, retry)
		if !res.Duplicate || res.BaseOffset != off {
			t.Fatalf("%s: retry answered %+v, want duplicate at %d", name, res, off)
		}
	}
}

// TestTruncateAndFollowNewLeader: a follower that took a tail from a deposed leader truncates
// it (in the middle of the log, with snapshots past the cut) and then follows the new leader
// to the same log and state.
func TestTruncateAndFollowNewLeader(t *testing.T) {
	afs, bfs, cfs := vfs.NewMem(), vfs.NewMem(), vfs.NewMem()
	a := openNode(t, afs, 1, smallSegments(afs))
	b := openNode(t, bfs, 2, smallSegments(bfs))
	c := openNode(t, cfs, 3, smallSegments(cfs))
	mustLead(t, a, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1}, MinISR: 1}, t0)
	for _, f := range []*Partition{b, c} {
		if err := f.BecomeFollower(1, 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Common history.
	mustAppend(t, a, batch(t, 3, 7, 0, 0))
	mustAppend(t, a, txnBatch(t, 2, 8, 0, 0))
	if _, err := a.AppendMarker(8, 0, true, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustAppend(t, a, batch(t, 2, 7, 0, int32(3+2*i)))
	}
	commitAll(t, a)
	replicate(t, a, b, 2, 500, t0)
	replicate(t, a, c, 3, 500, t0)
	common := a.LogEndOffset()
	// a is re-elected (epoch 2) and writes a tail only c takes: a multi-record batch first,
	// then enough to roll segments.
	mustLead(t, a, 1, LeaderState{LeaderEpoch: 2, Replicas: []int32{1, 2, 3}, ISR: []int32{1}, MinISR: 1}, t0)
	if err := c.BecomeFollower(1, 2, 1); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, a, batch(t, 4, 7, 0, 43))
	mustAppend(t, a, txnBatch(t, 2, 8, 0, 2))
	for i := range 40 {
		mustAppend(t, a, batch(t, 3, -1, 0, 0))
		if i == 20 {
			mustAppend(t, a, txnBatch(t, 1, 11, 0, 0))
		}
	}
	commitAll(t, a)
	replicate(t, a, c, 3, 500, t0)
	if !slices.ContainsFunc(snapshotFiles(t, cfs), func(off int64) bool { return off > common }) {
		t.Fatal("the tail should have left snapshots past the cut")
	}

	if e, start, _ := c.LastEpoch(); e != 2 || start != common {
		t.Fatalf("c's last epoch %d at %d", e, start)
	}
	// b becomes leader of epoch 3 and writes another tail.
	mustLead(t, b, 2, LeaderState{LeaderEpoch: 3, Replicas: []int32{1, 2, 3}, ISR: []int32{2}, MinISR: 1}, t0)
	mustAppend(t, b, batch(t, 1, 7, 0, 43))
	if _, err := b.AppendMarker(8, 1, false, 2); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, b, batch(t, 5, -1, 0, 0))
	commitAll(t, b)

	if err := c.BecomeFollower(2, 3, 2); err != nil {
		t.Fatal(err)
	}
	last, _, _ := c.LastEpoch()
	epoch, end, err := b.EndOffsetForEpoch(last)
	if err != nil || epoch != 1 || end != common {
		t.Fatalf("OffsetForLeaderEpoch(%d) = %d, %d, %v; want 1, %d", last, epoch, end, err, common)
	}
	// A cut inside the tail's first (4-record) batch removes the whole batch.
	if err := c.TruncateTo(end + 2); err != nil {
		t.Fatal(err)
	}
	if c.LogEndOffset() != end || c.HighWatermark() > end {
		t.Fatalf("after truncation: end %d HW %d, want %d", c.LogEndOffset(), c.HighWatermark(), end)
	}
	for _, off := range snapshotFiles(t, cfs) {
		if off > end {
			t.Fatalf("snapshot at %d survived a truncation to %d", off, end)
		}
	}
	if got, want := c.EpochEntries(), b.EpochEntries()[:1]; !slices.Equal(got, want) {
		t.Fatalf("epochs after truncation %v, want %v", got, want)
	}
	if got, want := c.OngoingTxnFirst(11), int64(-1); got != want {
		t.Fatalf("truncated transaction still open at %d", got)
	}
	replicate(t, b, c, 3, 500, t0)
	// Segment boundaries may differ after the cut (c keeps the segment the cut emptied):
	// the log bytes do not.
	if !bytes.Equal(logBytes(t, bfs), logBytes(t, cfs)) {
		t.Fatal("logs differ")
	}
	if got, want := stateOf(c), stateOf(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("follower state\n%+v\nleader state\n%+v", got, want)
	}
	// And after a crash.
	crashed := cfs.CrashClone()
	reopened := openNode(t, crashed, 3, smallSegments(crashed))
	if got, want := stateOf(reopened), stateOf(b); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened state\n%+v\nleader state\n%+v", got, want)
	}
}

// TestResetTo: a follower whose leader's log starts past its end restarts its log there.
func TestResetTo(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 2, smallSegments(fs))
	mustAppend(t, p, batch(t, 3, 7, 0, 0))
	commitAll(t, p)
	if err := p.BecomeFollower(1, 1, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.ResetTo(100); err != nil {
		t.Fatal(err)
	}
	if p.LogStartOffset() != 100 || p.LogEndOffset() != 100 || p.HighWatermark() != 100 {
		t.Fatalf("start %d end %d HW %d", p.LogStartOffset(), p.LogEndOffset(), p.HighWatermark())
	}
	if len(p.Producers()) != 0 || len(p.EpochEntries()) != 0 {
		t.Fatalf("state survived: %v %v", p.Producers(), p.EpochEntries())
	}
	b := batch(t, 2, -1, 0, 0)
	record.SetBaseOffset(b, 100)
	record.SetPartitionLeaderEpoch(b, 1) // neither field is under the CRC
	if end, err := p.AppendAsFollower(b); err != nil || end != 102 {
		t.Fatalf("append at the new start: %d, %v", end, err)
	}
	if e, start, ok := p.LastEpoch(); !ok || e != 1 || start != 100 {
		t.Fatalf("last epoch %d at %d", e, start)
	}
}

// TestConcurrentReplication runs acks=all producers against a leader while two followers
// replicate concurrently (for -race): every wait succeeds and the replicas end identical.
func TestConcurrentReplication(t *testing.T) {
	lfs := vfs.NewMem()
	leader := openNode(t, lfs, 1, testConfig(lfs))
	mustLead(t, leader, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, MinISR: 3}, t0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	fss := map[int32]*vfs.MemFS{2: vfs.NewMem(), 3: vfs.NewMem()}
	for id, fs := range fss {
		f := openNode(t, fs, id, testConfig(fs))
		if err := f.BecomeFollower(1, 1, 0); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				off := f.LogEndOffset()
				hw, err := leader.FollowerFetch(id, off, time.Now())
				if err != nil {
					t.Error(err)
					return
				}
				f.SetFollowerHW(hw)
				s, err := leader.ReadForFollower(off, 4096)
				if err != nil {
					t.Error(err)
					return
				}
				data, err := s.ReadInto(nil)
				if err != nil {
					t.Error(err)
					return
				}
				if len(data) == 0 {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					continue
				}
				if _, err := f.AppendAsFollower(data); err != nil {
					t.Error(err)
					return
				}
				if _, err := f.Flush(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var pw sync.WaitGroup
	for pid := int64(1); pid <= 3; pid++ {
		pw.Add(1)
		go func() {
			defer pw.Done()
			for i := range 30 {
				res, err := leader.Append(batch(t, 2, pid, 0, int32(2*i)))
				if err == nil {
					err = leader.AwaitCommitted(res.LastOffset+1, time.Now().Add(10*time.Second))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	pw.Wait()
	// Let the followers report the final offsets, then stop them.
	deadline := time.Now().Add(10 * time.Second)
	for leader.HighWatermark() != leader.LogEndOffset() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if leader.HighWatermark() != 180 {
		t.Fatalf("HW %d", leader.HighWatermark())
	}
	for _, fs := range fss {
		sameSegments(t, lfs, fs)
	}
}

// FuzzParseFollowerPayload: the follower's payload check never panics, and what it accepts
// is whole, checksummed batches tiling the accepted prefix with offsets contiguous from end.
func FuzzParseFollowerPayload(f *testing.F) {
	one := batch(f, 2, -1, 0, 0)
	two := append(slices.Clone(one), one...)
	record.SetBaseOffset(two[len(one):], 2)
	f.Add(one, int64(0))
	f.Add(two, int64(0))
	f.Add(two[:len(two)-5], int64(0))
	f.Add(one, int64(3))
	f.Add(txnBatch(f, 1, 4, 0, 0), int64(0))
	f.Fuzz(func(t *testing.T, data []byte, end int64) {
		bs, used, err := parseFollowerPayload(nil, data, end)
		if err != nil {
			return
		}
		pos, next := 0, end
		for _, b := range bs {
			if b.pos != pos || b.h.BaseOffset != next || record.VerifyCRC(data[b.pos:b.pos+b.size]) != nil {
				t.Fatalf("accepted batch %+v at byte %d, offset %d", b.h, pos, next)
			}
			pos += b.size
			next = b.h.LastOffset() + 1
		}
		if pos != used || used > len(data) {
			t.Fatalf("used %d, batches end at %d of %d", used, pos, len(data))
		}
	})
}

// TestAwaitLocalAndAppendWatch: acks=1 (AwaitLocal) is answered once the leader's own log has
// the batch, while acks=all (AwaitCommitted) waits for the ISR; an append wakes the waiters
// registered with WatchAppend even though the high watermark did not move.
func TestAwaitLocalAndAppendWatch(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 1, testConfig(fs))
	mustLead(t, p, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1, 2}, MinISR: 1}, t0)
	ch := make(chan struct{}, 1)
	p.WatchAppend(ch)
	res := mustAppend(t, p, batch(t, 3, -1, 0, 0))
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("an append did not wake the append watcher")
	}
	if err := p.AwaitLocal(res.LastOffset+1, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("AwaitLocal: %v", err)
	}
	if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(50*time.Millisecond)); !errors.Is(err, ErrTimeout) {
		t.Fatalf("AwaitCommitted before the follower fetched: %v, want %v", err, ErrTimeout)
	}
	mustFetch(t, p, 2, res.LastOffset+1, t0)
	if err := p.AwaitCommitted(res.LastOffset+1, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("AwaitCommitted after the follower fetched: %v", err)
	}
}

// TestFollowLogStart: a follower moves its log start with its leader's, up to its own high
// watermark; a leader refuses (it uses DeleteRecords).
func TestFollowLogStart(t *testing.T) {
	fs := vfs.NewMem()
	p := openNode(t, fs, 2, neverFlush(fs))
	if err := p.BecomeFollower(1, 1, 0); err != nil {
		t.Fatal(err)
	}
	leader := openNode(t, vfs.NewMem(), 1, testConfig(vfs.NewMem()))
	mustLead(t, leader, 1, LeaderState{LeaderEpoch: 1, Replicas: []int32{1, 2}, ISR: []int32{1}, MinISR: 1}, t0)
	for i := 0; i < 3; i++ {
		mustAppend(t, leader, batch(t, 2, -1, 0, 0))
	}
	s, err := leader.ReadForFollower(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, s.Size)
	if _, err := s.File.ReadAt(data, s.Pos); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendAsFollower(data); err != nil {
		t.Fatal(err)
	}
	p.SetFollowerHW(4)
	if err := p.FollowLogStart(6); err != nil {
		t.Fatal(err)
	}
	if got := p.LogStartOffset(); got != 4 {
		t.Fatalf("log start %d, want 4 (the follower's high watermark)", got)
	}
	if err := leader.FollowLogStart(2); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("leader FollowLogStart: %v, want %v", err, ErrNotLeader)
	}
}
