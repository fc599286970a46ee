package partition

// Replication: Kafka's ISR protocol as one partition sees it.
//
// A partition is either the leader of its leader epoch or a follower of another node.
//
// Leader: Append and AppendMarker write; followers fetch with FollowerFetch (recording their
// log end offset) and ReadForFollower (reading up to the log end, past the high watermark).
// The high watermark is min(localEnd, end offset of every other member of the maximal ISR),
// where the maximal ISR is the committed ISR (the metadata's) plus the additions of an ISR
// proposal in flight: a replica about to join already holds the HW back, a replica about to
// leave still does until its removal is committed. ISRUpdate proposes changes by Kafka's
// rule: a member whose last caught-up time is older than replica.lag.time.max.ms leaves, a
// replica that reached the HW and the start of the current leader epoch joins. At most one
// proposal is in flight; UpdateLeaderState (the new ISR took effect) or ISRProposalFailed
// ends it.
//
// Follower: AppendAsFollower writes the leader's batches as they are and folds them into the
// producer state and leader epochs as recovery does; Flush makes them durable (the follower
// reports only durable offsets under FlushAlways); SetFollowerHW follows the leader's HW;
// TruncateTo and ResetTo cut a diverged tail or restart the log at the leader's start.
//
// The fetcher (internal/replica) drives the follower side; the replica manager calls
// BecomeLeader, BecomeFollower and UpdateLeaderState as metadata images arrive. All of it is
// under Partition.mu.

import (
	"errors"
	"fmt"
	"slices"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/record"
)

// LeaderState is what the metadata says about a partition this node leads.
type LeaderState struct {
	LeaderEpoch, PartitionEpoch int32
	Replicas, ISR               []int32 // ISR includes this node
	// MinISR is the topic's min.insync.replicas (acks=all is refused below it).
	MinISR int
}

// ReplicaState is the leader's view of one replica (DescribeLogDirs, DescribeQuorum-style
// reporting). The leader's own entry has its log end offset and a zero LastCaughtUp: it is
// caught up by definition.
type ReplicaState struct {
	ID           int32
	LogEndOffset int64     // -1 while unknown (no fetch since this node became leader)
	LastCaughtUp time.Time // zero if never caught up since this node became leader
}

// replication is the partition's role and replica bookkeeping, under Partition.mu.
//
// Invariants: on a leader, followers holds one entry per replica and ISR member other than
// self; proposed is nil or differs from isr; on a follower, followers, isr and proposed are
// empty and leaderHW is the leader's high watermark last received (-1 if none).
type replication struct {
	leader         bool
	self, leaderID int32
	partitionEpoch int32
	// epochStart is the log end offset when this node became leader of the current epoch.
	epochStart int64
	replicas   []int32
	isr        []int32 // committed ISR
	minISR     int
	proposed   []int32 // ISR proposal in flight, or nil
	followers  map[int32]*followerProgress
	leaderHW   int64
}

// followerProgress is what a leader knows of one follower.
type followerProgress struct {
	end                int64     // log end offset from its last fetch, -1 unknown
	lastCaughtUp       time.Time // last time it was known to have reached the leader's log end
	lastFetch          time.Time
	lastFetchLeaderEnd int64 // the leader's log end offset at lastFetch, -1 none
}

// initLeaderLocked makes a freshly opened partition the leader of itself alone: the
// single-node behaviour, until the metadata says more.
func (p *Partition) initLeaderLocked(self int32) {
	p.mu.rep = replication{leader: true, self: self, leaderID: self, replicas: []int32{self},
		isr: []int32{self}, minISR: 1, followers: map[int32]*followerProgress{}, leaderHW: -1}
	p.mu.rep.epochStart = p.epochStartLocked()
	p.leader.Store(true)
	p.refreshRoleLocked()
}

// refreshRoleLocked derives solo and enough from mu.rep; every change of the role, the ISR,
// min.insync.replicas or the proposal calls it (mu held).
func (p *Partition) refreshRoleLocked() {
	r := &p.mu.rep
	solo := r.leader && len(r.isr) == 1 && r.isr[0] == r.self
	for _, id := range r.proposed {
		solo = solo && id == r.self
	}
	p.hwmu.Lock()
	p.solo.Store(solo)
	p.enough.Store(r.leader && len(r.isr) >= r.minISR)
	p.hwmu.Unlock()
}

// epochStartLocked returns where the current leader epoch started: its checkpoint entry, or
// the log end offset if no batch of it was written yet.
func (p *Partition) epochStartLocked() int64 {
	if n := len(p.mu.epochs); n > 0 && p.mu.epochs[n-1].Epoch == p.mu.leaderEpoch {
		return p.mu.epochs[n-1].StartOffset
	}
	return p.log.EndOffset()
}

// BecomeLeader makes this node (self) the leader of st.LeaderEpoch. An older epoch than the
// current one is ErrFencedLeaderEpoch; the current epoch while already leading only updates
// the ISR (as UpdateLeaderState). The new epoch's checkpoint entry is written with its first
// batch, at the log end offset of now (nothing else appends in between). The HW never moves
// back; follower progress restarts unknown, and the ISR members count as caught up at now so
// that they are not dropped at once.
func (p *Partition) BecomeLeader(self int32, st LeaderState, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed.Load() {
		return ErrStorage
	}
	r := &p.mu.rep
	switch {
	case st.LeaderEpoch < p.mu.leaderEpoch:
		return ErrFencedLeaderEpoch
	case st.LeaderEpoch == p.mu.leaderEpoch && r.leader && r.self == self:
		p.updateLeaderStateLocked(st, now)
		return nil
	}
	if st.LeaderEpoch != p.mu.leaderEpoch || !r.leader {
		p.lg.Info("becoming leader", "epoch", st.LeaderEpoch, "previous_epoch", p.mu.leaderEpoch,
			"isr", st.ISR, "log_end_offset", p.log.EndOffset(), "high_watermark", p.hw.Load())
	}
	p.mu.leaderEpoch = st.LeaderEpoch
	*r = replication{leader: true, self: self, leaderID: self, partitionEpoch: st.PartitionEpoch,
		replicas: slices.Clone(st.Replicas), isr: slices.Clone(st.ISR), minISR: st.MinISR,
		followers: map[int32]*followerProgress{}, leaderHW: -1}
	r.epochStart = p.epochStartLocked()
	p.syncFollowersLocked(now)
	p.leader.Store(true)
	p.refreshRoleLocked()
	// A former follower may hold appended but unsynced batches: commit them locally.
	p.afterAppendLocked(p.log.EndOffset())
	p.updateHWLocked()
	return nil
}

// syncFollowersLocked gives every replica and ISR member other than self a progress entry
// (unknown end; ISR members caught up at now) and drops the entries of the others.
func (p *Partition) syncFollowersLocked(now time.Time) {
	r := &p.mu.rep
	keep := func(id int32) bool { return slices.Contains(r.replicas, id) || slices.Contains(r.isr, id) }
	for id := range r.followers {
		if !keep(id) || id == r.self {
			delete(r.followers, id)
		}
	}
	for _, ids := range [][]int32{r.replicas, r.isr} {
		for _, id := range ids {
			if id == r.self {
				continue
			}
			fp := r.followers[id]
			if fp == nil {
				fp = &followerProgress{end: -1, lastFetchLeaderEnd: -1}
				r.followers[id] = fp
			}
			if fp.lastCaughtUp.IsZero() && slices.Contains(r.isr, id) {
				fp.lastCaughtUp = now
			}
		}
	}
}

// BecomeFollower makes the partition a follower of leader in leaderEpoch. An older epoch than
// the current one is ErrFencedLeaderEpoch. Appends are refused from now on and waiting
// AwaitCommitted calls return ErrNotLeader: the tail this node wrote as leader may be
// replaced. The fetcher then truncates (TruncateTo) and appends (AppendAsFollower).
func (p *Partition) BecomeFollower(leader int32, leaderEpoch, partitionEpoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed.Load() {
		return ErrStorage
	}
	r := &p.mu.rep
	switch {
	case leaderEpoch < p.mu.leaderEpoch:
		return ErrFencedLeaderEpoch
	case leaderEpoch == p.mu.leaderEpoch && !r.leader && r.leaderID == leader:
		r.partitionEpoch = max(r.partitionEpoch, partitionEpoch)
		return nil
	}
	p.lg.Info("becoming follower", "leader", leader, "epoch", leaderEpoch, "previous_epoch", p.mu.leaderEpoch,
		"log_end_offset", p.log.EndOffset(), "high_watermark", p.hw.Load())
	p.mu.leaderEpoch = leaderEpoch
	*r = replication{self: r.self, leaderID: leader, partitionEpoch: partitionEpoch, epochStart: -1, leaderHW: -1}
	p.leader.Store(false)
	p.refreshRoleLocked()
	p.fence.Add(1)
	p.notify()
	return nil
}

// UpdateLeaderState applies a change of the partition's ISR, replicas or partition epoch in
// the current leader epoch (an AlterPartition took effect, or the controller changed the ISR
// itself). It ends any ISR proposal in flight. A state of another leader epoch, an older
// partition epoch, or a call on a follower is ignored: the caller moves epochs with
// BecomeLeader and BecomeFollower.
func (p *Partition) UpdateLeaderState(st LeaderState, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.mu.rep.leader || st.LeaderEpoch != p.mu.leaderEpoch {
		p.lg.Debug("ignoring leader state of another epoch", "epoch", st.LeaderEpoch, "current", p.mu.leaderEpoch)
		return
	}
	p.updateLeaderStateLocked(st, now)
}

func (p *Partition) updateLeaderStateLocked(st LeaderState, now time.Time) {
	r := &p.mu.rep
	if st.PartitionEpoch < r.partitionEpoch {
		return // a stale image
	}
	if !slices.Equal(st.ISR, r.isr) {
		p.lg.Info("ISR changed", "isr", st.ISR, "previous", r.isr, "partition_epoch", st.PartitionEpoch)
	}
	r.partitionEpoch = st.PartitionEpoch
	r.replicas, r.isr = slices.Clone(st.Replicas), slices.Clone(st.ISR)
	r.minISR = st.MinISR
	r.proposed = nil
	p.refreshRoleLocked()
	p.syncFollowersLocked(now)
	p.updateHWLocked()
}

// SameLeaderState reports whether this partition leads with exactly st (epochs, replicas,
// ISR and min.insync.replicas), so that applying st again would change nothing.
func (p *Partition) SameLeaderState(st LeaderState) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.mu.rep
	return r.leader && p.mu.leaderEpoch == st.LeaderEpoch && r.partitionEpoch == st.PartitionEpoch &&
		r.minISR == st.MinISR && slices.Equal(r.isr, st.ISR) && slices.Equal(r.replicas, st.Replicas)
}

// IsLeader reports whether this node leads the partition.
func (p *Partition) IsLeader() bool { return p.leader.Load() }

// Leader returns the id of the partition's leader as this node knows it.
func (p *Partition) Leader() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.rep.leaderID
}

// ISR returns a copy of the committed ISR (nil on a follower).
func (p *Partition) ISR() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.rep.isr)
}

// PartitionEpoch returns the partition epoch of the metadata last applied.
func (p *Partition) PartitionEpoch() int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.rep.partitionEpoch
}

// CheckLeaderEpoch checks the current leader epoch a request carries (Fetch, ListOffsets,
// OffsetForLeaderEpoch): nil when it is absent (negative) or current, ErrFencedLeaderEpoch
// when older, ErrUnknownLeaderEpoch when newer (this node has not seen that metadata yet).
func (p *Partition) CheckLeaderEpoch(e int32) error {
	p.mu.Lock()
	cur := p.mu.leaderEpoch
	p.mu.Unlock()
	return checkLeaderEpoch(cur, e)
}

func checkLeaderEpoch(cur, e int32) error {
	switch {
	case e < 0 || e == cur:
		return nil
	case e < cur:
		return ErrFencedLeaderEpoch
	default:
		return ErrUnknownLeaderEpoch
	}
}

// EnoughReplicas reports whether this node leads the partition with a committed ISR of at
// least min.insync.replicas members: acks=all produce checks it before appending
// (NOT_ENOUGH_REPLICAS) and again once the HW covers the append
// (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
func (p *Partition) EnoughReplicas() bool { return p.enough.Load() }

// CheckEnoughReplicas is EnoughReplicas as an error: ErrNotLeader on a follower,
// ErrNotEnoughReplicas below min.insync.replicas, nil otherwise.
func (p *Partition) CheckEnoughReplicas() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch r := &p.mu.rep; {
	case !r.leader:
		return ErrNotLeader
	case len(r.isr) < r.minISR:
		return ErrNotEnoughReplicas
	}
	return nil
}

// updateHWLocked moves the high watermark as far as the replication state allows: on a
// leader to min(localEnd, the end offsets of the maximal ISR's other members), on a follower
// to min(localEnd, the leader's HW). It never moves it back.
func (p *Partition) updateHWLocked() {
	r := &p.mu.rep
	if !r.leader {
		if r.leaderHW >= 0 {
			p.advanceHWLocked(min(r.leaderHW, p.local.Load()))
		}
		return
	}
	hw := p.local.Load()
	bound := func(id int32) {
		if id == r.self {
			return
		}
		if fp := r.followers[id]; fp != nil {
			hw = min(hw, fp.end)
		} else {
			hw = -1
		}
	}
	for _, id := range r.isr {
		bound(id)
	}
	for _, id := range r.proposed {
		if !slices.Contains(r.isr, id) {
			bound(id)
		}
	}
	p.advanceHWLocked(hw)
}

// FollowerFetch records that replica fetched at fetchOffset (its log end offset, durable
// under FlushAlways: the follower guarantees that) at time now, advances the HW when it can
// and returns the HW to send back. A replica that is neither assigned nor in the ISR, or a
// call on a follower, is ErrNotLeader; an offset outside the log is ErrOffsetOutOfRange and
// records nothing.
//
// Caught-up time, Kafka's rule: a fetch at the leader's log end offset catches the replica up
// at now; a fetch at or past the leader's log end offset as of the previous fetch caught it
// up at the previous fetch's time.
func (p *Partition) FollowerFetch(replica int32, fetchOffset int64, now time.Time) (hw int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.mu.rep
	fp := r.followers[replica]
	switch {
	case !r.leader || fp == nil:
		return p.hw.Load(), ErrNotLeader
	case p.failed.Load():
		return p.hw.Load(), ErrStorage
	}
	leo := p.log.EndOffset()
	if fetchOffset > leo || fetchOffset < p.log.StartOffset() {
		return p.hw.Load(), ErrOffsetOutOfRange
	}
	var caught time.Time
	switch {
	case fetchOffset >= leo:
		caught = now
	case fp.lastFetchLeaderEnd >= 0 && fetchOffset >= fp.lastFetchLeaderEnd:
		caught = fp.lastFetch
	}
	if caught.After(fp.lastCaughtUp) {
		fp.lastCaughtUp = caught
	}
	fp.end, fp.lastFetch, fp.lastFetchLeaderEnd = fetchOffset, now, leo
	p.updateHWLocked()
	return p.hw.Load(), nil
}

// ReadForFollower returns batches from offset up to the log end offset (not limited by the
// HW), at least one whole batch if there is one, like Read otherwise. It is for followers'
// fetches; on a follower it is ErrNotLeader.
func (p *Partition) ReadForFollower(offset int64, maxBytes int) (plog.Slice, error) {
	if !p.leader.Load() {
		return plog.Slice{}, ErrNotLeader
	}
	return p.readTo(offset, p.log.EndOffset(), maxBytes, true)
}

// ISRUpdate proposes an ISR change if one is due at now: members whose last caught-up time
// is older than lagMax leave; replicas outside the ISR whose end offset is at least the HW
// and the start offset of the current leader epoch join. It returns the proposed ISR and
// true when it differs from the committed one and no proposal is in flight, and then marks
// the proposal in flight: until UpdateLeaderState or ISRProposalFailed ends it, the HW is
// computed over the committed ISR plus the proposed additions and no other proposal is made.
func (p *Partition) ISRUpdate(now time.Time, lagMax time.Duration) (isr []int32, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.mu.rep
	if !r.leader || r.proposed != nil || p.failed.Load() {
		return nil, false
	}
	hw := p.hw.Load()
	next := make([]int32, 0, len(r.replicas)+1)
	for _, id := range r.isr {
		fp := r.followers[id]
		if id == r.self || fp != nil && now.Sub(fp.lastCaughtUp) <= lagMax {
			next = append(next, id)
		}
	}
	for _, id := range r.replicas {
		if id == r.self || slices.Contains(r.isr, id) {
			continue
		}
		if fp := r.followers[id]; fp != nil && fp.end >= 0 && fp.end >= hw && fp.end >= r.epochStart {
			next = append(next, id)
		}
	}
	if sameMembers(next, r.isr) {
		return nil, false
	}
	p.lg.Info("proposing ISR change", "isr", next, "committed", r.isr)
	r.proposed = next
	p.refreshRoleLocked()
	return slices.Clone(next), true
}

// sameMembers reports whether a and b hold the same ids (each without repeats).
func sameMembers(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}

// ISRProposalFailed ends the ISR proposal in flight without a change (the controller
// refused it or the request failed): the HW goes back to the committed ISR alone and the
// next ISRUpdate may propose again.
func (p *Partition) ISRProposalFailed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.rep.proposed = nil
	p.refreshRoleLocked()
	p.updateHWLocked()
}

// ReplicaStates returns the leader's view of every assigned replica, in assignment order
// (nil on a follower).
func (p *Partition) ReplicaStates() []ReplicaState {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &p.mu.rep
	if !r.leader {
		return nil
	}
	out := make([]ReplicaState, 0, len(r.replicas))
	for _, id := range r.replicas {
		if id == r.self {
			out = append(out, ReplicaState{ID: id, LogEndOffset: p.log.EndOffset()})
		} else if fp := r.followers[id]; fp != nil {
			out = append(out, ReplicaState{ID: id, LogEndOffset: fp.end, LastCaughtUp: fp.lastCaughtUp})
		}
	}
	return out
}

// followerBatch is one batch of a payload fetched from the leader: its header and where it
// lies in the payload.
type followerBatch struct {
	h         record.Header
	pos, size int
}

// parseFollowerPayload checks a payload fetched from the leader: whole v2 batches with
// valid framing, CRC and codec, offsets contiguous from end, transaction markers readable.
// A trailing partial batch (a fetch cut short) is left out; used is the length of the
// whole batches.
func parseFollowerPayload(dst []followerBatch, data []byte, end int64) (bs []followerBatch, used int, err error) {
	next := end
	pos := 0
	for pos < len(data) {
		h, err := record.ParseHeader(data[pos:])
		if err != nil {
			break // fewer bytes left than a header: a partial batch
		}
		size := h.Size()
		if size < record.HeaderSize {
			return dst, 0, fmt.Errorf("%w: batch length %d at byte %d", record.ErrCorrupt, h.BatchLength, pos)
		}
		if size > len(data)-pos {
			break
		}
		b := data[pos : pos+size]
		switch {
		case h.Magic != 2:
			return dst, 0, fmt.Errorf("%w: magic %d at offset %d", record.ErrUnsupportedMagic, h.Magic, h.BaseOffset)
		case record.VerifyCRC(b) != nil:
			return dst, 0, fmt.Errorf("%w: checksum of the batch at offset %d", record.ErrCorrupt, h.BaseOffset)
		case h.Compression() > record.Zstd:
			return dst, 0, fmt.Errorf("%w: codec %d at offset %d", record.ErrUnsupportedCompression, h.Compression(), h.BaseOffset)
		case h.LastOffsetDelta < 0 || h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1:
			return dst, 0, fmt.Errorf("%w: %d records, last offset delta %d at offset %d", record.ErrCorrupt, h.NumRecords, h.LastOffsetDelta, h.BaseOffset)
		case h.BaseOffset < next:
			// A gap (h.BaseOffset > next) is a compacted leader's, copied as it is.
			return dst, 0, fmt.Errorf("%w: batch at %d, expected at least %d", ErrOffsetMismatch, h.BaseOffset, next)
		}
		if h.IsControl() && h.IsTransactional() && h.ProducerID >= 0 {
			if _, _, err := markerType(b); err != nil {
				return dst, 0, fmt.Errorf("marker at offset %d: %w", h.BaseOffset, err)
			}
		}
		dst = append(dst, followerBatch{h: h, pos: pos, size: size})
		next = h.LastOffset() + 1
		pos += size
	}
	if len(dst) == 0 {
		return dst, 0, fmt.Errorf("%w: no whole batch in %d bytes", record.ErrCorrupt, len(data))
	}
	return dst, pos, nil
}

// AppendAsFollower appends batches fetched from the leader: one or more v2 batches with
// offsets and leader epochs already assigned. The first batch's base offset must be the log
// end offset and the batches contiguous (ErrOffsetMismatch otherwise: the fetcher
// restarts). Each batch is CRC-checked and structurally validated (no timestamp policy, no
// sequence checks: the leader decided), written as is, and folded into the producer state
// (idempotence, transactions, markers, aborted transactions) as recovery folds it, and into
// the leader epochs (a batch of a larger epoch than the last entry starts an entry at its
// base offset; the checkpoint is durable before the batch is written). A trailing partial
// batch is ignored. It returns the new log end offset. The data is written, not fsynced:
// Flush makes it durable. On a leader it is ErrNotLeader.
func (p *Partition) AppendAsFollower(data []byte) (end int64, err error) {
	if p.failed.Load() {
		return 0, ErrStorage
	}
	var stack [8]followerBatch
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.rep.leader {
		return p.log.EndOffset(), ErrNotLeader
	}
	bs, used, err := parseFollowerPayload(stack[:0], data, p.log.EndOffset())
	if err != nil {
		return p.log.EndOffset(), err
	}
	data = data[:used]

	epochs := p.mu.epochs
	for i := range bs {
		h := &bs[i].h
		e := h.PartitionLeaderEpoch
		if n := len(epochs); e >= 0 && (n == 0 || epochs[n-1].Epoch < e) {
			epochs = append(slices.Clip(epochs), EpochEntry{Epoch: e, StartOffset: h.BaseOffset})
		}
	}
	newEpochs := len(epochs) != len(p.mu.epochs)
	if newEpochs {
		if err := p.writeEpochCheckpoint(epochs); err != nil {
			p.fail(err)
			return p.log.EndOffset(), ErrStorage
		}
	}
	// A follower's copy is written once and read again only if it becomes leader (or
	// serves a fetch from a follower): it goes past the page cache, which would cost
	// more CPU than the rest of the append.
	if err := p.log.AppendDirect(data); err != nil {
		if errors.Is(err, plog.ErrInvalidAppend) {
			// Nothing was written: take the new entries back out of the checkpoint.
			if newEpochs {
				if werr := p.writeEpochCheckpoint(p.mu.epochs); werr != nil {
					p.fail(werr)
					return p.log.EndOffset(), ErrStorage
				}
			}
			return p.log.EndOffset(), err
		}
		p.fail(err)
		return p.log.EndOffset(), ErrStorage
	}
	p.mu.epochs = epochs
	p.maybeSnapshotLocked() // before folding: the state is the state at a roll's base
	now := time.Now()
	if p.cfg.Log.Now != nil {
		now = p.cfg.Log.Now()
	}
	p.expireProducersLocked(now.UnixMilli())
	for i := range bs {
		b := &bs[i]
		if err := p.foldLocked(&b.h, data[b.pos:b.pos+b.size]); err != nil {
			// parseFollowerPayload read every marker already; this is a bug.
			p.fail(err)
			return p.log.EndOffset(), ErrStorage
		}
	}
	end = p.log.EndOffset()
	if p.cfg.FlushPolicy != FlushAlways {
		p.setLocalEndLocked(end)
	}
	return end, nil
}

// Flush fsyncs the log and returns the durable end offset: a follower reports only durable
// offsets to its leader under FlushAlways. It also lets the HW follow the durable end.
func (p *Partition) Flush() (durable int64, err error) {
	if p.failed.Load() {
		return 0, ErrStorage
	}
	for {
		fence := p.fence.Load()
		durable, err := p.syncLocal()
		if err != nil {
			p.fail(err)
			return 0, ErrStorage
		}
		if p.fence.Load() == fence {
			return durable, nil
		}
		// A truncation ran during the sync: sync the log as it is now.
	}
}

// SetFollowerHW sets a follower's HW from its leader's: min(leaderHW, the local committed
// end — durable under FlushAlways). It never moves the HW back (only TruncateTo and ResetTo
// do). On a leader it does nothing.
func (p *Partition) SetFollowerHW(leaderHW int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.rep.leader {
		return
	}
	p.mu.rep.leaderHW = leaderHW
	p.updateHWLocked()
}

// TruncateTo removes everything at and after offset on a follower (a diverged tail found
// with OffsetForLeaderEpoch); if offset falls inside a batch the whole batch goes. Leader
// epochs starting at or after the new end are removed and the checkpoint rewritten, the
// producer and transaction state is rebuilt for the log that remains (snapshots past the
// new end are deleted), and the HW becomes min(HW, new end). The truncation is durable when
// it returns. An offset at or past the log end does nothing; on a leader it is ErrNotLeader.
func (p *Partition) TruncateTo(offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.rep.leader:
		return ErrNotLeader
	case p.failed.Load():
		return ErrStorage
	case offset < 0:
		return ErrOffsetOutOfRange
	case offset >= p.log.EndOffset():
		return nil
	}
	if err := p.log.Truncate(offset); err != nil {
		p.fail(err)
		return ErrStorage
	}
	p.lg.Info("truncated diverged tail", "offset", offset, "log_end_offset", p.log.EndOffset())
	return p.afterTruncateLocked(false)
}

// ResetTo empties a follower's log and restarts it at start, as a follower does when its
// leader's log starts past its own end. Leader epochs, producer-state snapshots and producer
// state are dropped (the batches they described are gone); the HW becomes start. On a leader
// it is ErrNotLeader.
func (p *Partition) ResetTo(start int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.mu.rep.leader:
		return ErrNotLeader
	case p.failed.Load():
		return ErrStorage
	case start < 0:
		return ErrOffsetOutOfRange
	}
	if err := p.log.ResetTo(start); err != nil {
		p.fail(err)
		return ErrStorage
	}
	p.lg.Info("restarted log at the leader's start", "start_offset", start)
	return p.afterTruncateLocked(true)
}

// afterTruncateLocked brings the state beside the log in line with a log just truncated
// (or, with reset, emptied and restarted at its end).
func (p *Partition) afterTruncateLocked(reset bool) error {
	end := p.log.EndOffset()
	p.fence.Add(1) // after the log changed: see syncLocal
	p.rolled.Store(-1)
	// Epochs starting at or past the new end are gone with their batches.
	k := len(p.mu.epochs)
	if reset {
		k = 0
	}
	for k > 0 && p.mu.epochs[k-1].StartOffset >= end {
		k--
	}
	onDisk := p.mu.epochs
	p.mu.epochs = slices.Clone(p.mu.epochs[:k])
	// A snapshot at the new end still describes exactly the batches kept (unless the log was
	// reset: then none does); later ones go, durably, before the log can grow past them.
	keep := len(p.mu.snapshots)
	for keep > 0 && (reset || p.mu.snapshots[keep-1] > end) {
		keep--
	}
	if keep < len(p.mu.snapshots) {
		p.removeSnapshots(p.mu.snapshots[keep:])
		p.mu.snapshots = p.mu.snapshots[:keep]
		if err := p.fsys().SyncDir(p.log.Dir()); err != nil {
			p.fail(err)
			return ErrStorage
		}
	}
	clear(p.mu.producers)
	clear(p.mu.ongoing)
	p.mu.completing, p.mu.aborted = nil, nil
	if err := p.rebuildStateLocked(); err != nil {
		p.fail(err)
		return ErrStorage
	}
	if !slices.Equal(onDisk, p.mu.epochs) {
		if err := p.writeEpochCheckpoint(p.mu.epochs); err != nil {
			p.fail(err)
			return ErrStorage
		}
	}
	p.hwmu.Lock()
	if reset || p.hw.Load() > end {
		p.hw.Store(end)
	}
	if reset || p.local.Load() > end {
		p.local.Store(end)
	}
	p.hwmu.Unlock()
	if p.mu.rep.leaderHW > end {
		p.mu.rep.leaderHW = end
	}
	p.notify()
	return nil
}

// LastEpoch returns the latest leader epoch in the checkpoint and the offset it starts at
// (for the fetcher's OffsetForLeaderEpoch and Fetch's LastFetchedEpoch); ok is false when
// there is none.
func (p *Partition) LastEpoch() (epoch int32, start int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.mu.epochs)
	if n == 0 {
		return -1, -1, false
	}
	e := p.mu.epochs[n-1]
	return e.Epoch, e.StartOffset, true
}
