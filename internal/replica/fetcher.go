package replica

// Follower fetching (Kafka's ISR protocol): one fetcher per source broker pulls the
// partitions this node follows from their leader with the Fetch API, appends what it gets,
// fsyncs it under log.flush.policy=always before the next fetch reports the new end offset
// (so the leader's high watermark counts only data durable on every ISR member), and
// truncates a diverged tail with OffsetForLeaderEpoch before it fetches a partition whose
// leader changed.

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/partition"
)

// FetcherConfig is what the fetchers need from the broker.
type FetcherConfig struct {
	NodeID int32
	// BrokerEpoch is this broker's current registration epoch (sent in ReplicaState).
	BrokerEpoch   func() int64
	MaxWait       time.Duration
	MinBytes      int32
	MaxBytes      int32 // per response
	PartitionMax  int32
	Backoff       time.Duration
	Rack          string
	DurableAppend bool // log.flush.policy=always: fsync before reporting an offset
}

// fetchPart is one followed partition.
type fetchPart struct {
	p           *partition.Partition
	topicID     [16]byte
	leaderEpoch int32
	truncate    bool      // run OffsetForLeaderEpoch before fetching
	retryAt     time.Time // after an error, not fetched before
}

// fetcher follows partitions led by one source broker.
//
// Invariants: parts holds exactly the partitions this node follows with that broker as
// leader (the manager adds and removes them as images arrive); one goroutine (run) sends
// requests; a partition is appended to only by that goroutine.
type fetcher struct {
	cfg    *FetcherConfig
	leader int32
	addr   string
	lg     *slog.Logger
	conn   *leaderConn // used by run's goroutine only, closed once it ended

	mu struct {
		sync.Mutex
		parts map[TP]*fetchPart
	}
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// failingSince is when requests to the leader started failing (unix ns), 0 while they
	// succeed: a follower's first sign that its leader died, shown to clients (Metadata).
	failingSince atomic.Int64
}

func newFetcher(cfg *FetcherConfig, leader int32, addr string, lg *slog.Logger) (*fetcher, error) {
	f := &fetcher{cfg: cfg, leader: leader, addr: addr, conn: newLeaderConn(addr), lg: lg.With("leader", leader),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	f.mu.parts = make(map[TP]*fetchPart)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go f.run(ctx)
	return f, nil
}

// add starts (or restarts, after a leader epoch change) following tp; it truncates first.
func (f *fetcher) add(tp TP, p *partition.Partition, topicID [16]byte, leaderEpoch int32) {
	f.mu.Lock()
	if cur, ok := f.mu.parts[tp]; ok && cur.p == p && cur.leaderEpoch == leaderEpoch {
		f.mu.Unlock()
		return
	}
	f.mu.parts[tp] = &fetchPart{p: p, topicID: topicID, leaderEpoch: leaderEpoch, truncate: true}
	f.mu.Unlock()
	f.poke()
}

func (f *fetcher) remove(tp TP) {
	f.mu.Lock()
	delete(f.mu.parts, tp)
	f.mu.Unlock()
}

func (f *fetcher) size() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.mu.parts)
}

func (f *fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) close() {
	f.cancel()
	<-f.done
	f.conn.close()
}

func (f *fetcher) snapshot(now time.Time) map[TP]*fetchPart {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[TP]*fetchPart, len(f.mu.parts))
	for tp, fp := range f.mu.parts {
		if !now.Before(fp.retryAt) {
			out[tp] = fp
		}
	}
	return out
}

// current reports whether fp is still the state followed for tp (not replaced or removed
// while a request was in flight).
func (f *fetcher) current(tp TP, fp *fetchPart) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.parts[tp] == fp
}

func (f *fetcher) run(ctx context.Context) {
	defer close(f.done)
	for ctx.Err() == nil {
		parts := f.snapshot(time.Now())
		if len(parts) == 0 {
			select {
			case <-ctx.Done():
			case <-f.wake:
			case <-time.After(50 * time.Millisecond): // a partition's retryAt may have passed
			}
			continue
		}
		var err error
		if trunc := pick(parts, true); len(trunc) > 0 {
			err = f.truncate(ctx, trunc)
		} else {
			err = f.fetch(ctx, parts)
		}
		if err == nil {
			f.failingSince.Store(0)
		} else if ctx.Err() == nil {
			f.failingSince.CompareAndSwap(0, time.Now().UnixNano())
		}
		if err != nil && ctx.Err() == nil {
			f.lg.Debug("replica fetch failed", "addr", f.addr, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(f.cfg.Backoff):
			}
		}
	}
}

func pick(parts map[TP]*fetchPart, truncate bool) map[TP]*fetchPart {
	out := make(map[TP]*fetchPart)
	for tp, fp := range parts {
		if fp.truncate == truncate {
			out[tp] = fp
		}
	}
	return out
}

// backoff keeps fp out of fetches for a while after a partition-level error. Epoch errors
// clear quickly (the metadata that resolves them is usually a moment away).
func (f *fetcher) backoff(fp *fetchPart, d time.Duration) {
	f.mu.Lock()
	fp.retryAt = time.Now().Add(d)
	f.mu.Unlock()
}

func (f *fetcher) epochBackoff() time.Duration { return min(f.cfg.Backoff, 100*time.Millisecond) }

// truncate asks the leader where each partition's last epoch ends and cuts the local log
// there (KIP-101/KIP-279): everything past it was never committed by that leader.
func (f *fetcher) truncate(ctx context.Context, parts map[TP]*fetchPart) error {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.ReplicaID = f.cfg.NodeID
	byTopic := map[string]int{}
	for tp, fp := range parts {
		epoch, _, ok := fp.p.LastEpoch()
		if !ok {
			// Nothing written yet in any epoch: nothing can diverge.
			f.mu.Lock()
			fp.truncate = false
			f.mu.Unlock()
			continue
		}
		i, seen := byTopic[tp.Topic]
		if !seen {
			t := kmsg.NewOffsetForLeaderEpochRequestTopic()
			t.Topic = tp.Topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[tp.Topic] = i
		}
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = tp.Partition, fp.leaderEpoch, epoch
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	if len(req.Topics) == 0 {
		return nil
	}
	kresp, err := f.conn.request(ctx, req, 0)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.OffsetForLeaderEpochResponse)
	for _, t := range resp.Topics {
		for _, rp := range t.Partitions {
			tp := TP{t.Topic, rp.Partition}
			fp, ok := parts[tp]
			if !ok || !f.current(tp, fp) {
				continue
			}
			if rp.ErrorCode != 0 {
				f.lg.Debug("OffsetForLeaderEpoch failed", "topic", tp.Topic, "partition", tp.Partition, "err", kerr.ErrorForCode(rp.ErrorCode))
				f.backoff(fp, f.epochBackoff())
				continue
			}
			if err := f.truncateTo(tp, fp, rp.LeaderEpoch, rp.EndOffset); err != nil {
				return err
			}
		}
	}
	return nil
}

// truncateTo applies the leader's answer (its largest epoch ≤ ours and where it ends).
func (f *fetcher) truncateTo(tp TP, fp *fetchPart, leaderEpoch int32, leaderEnd int64) error {
	p := fp.p
	end := p.LogEndOffset()
	to := end
	switch {
	case leaderEpoch < 0 || leaderEnd < 0:
		// The leader knows none of our epochs: keep only what was committed.
		to = min(end, p.HighWatermark())
	default:
		// Our own end of the epoch the leader answered with, which may be earlier than the
		// leader's when we never got all of that epoch.
		_, ours, err := p.EndOffsetForEpoch(leaderEpoch)
		if err != nil {
			return err
		}
		if ours >= 0 {
			to = min(to, ours)
		}
		to = min(to, leaderEnd)
	}
	if to < end {
		f.lg.Info("truncating diverged log tail", "topic", tp.Topic, "partition", tp.Partition,
			"from", end, "to", to, "leader_epoch", leaderEpoch)
		if err := p.TruncateTo(to); err != nil {
			return err
		}
	}
	f.mu.Lock()
	fp.truncate = false
	f.mu.Unlock()
	return nil
}

// fetch sends one Fetch for every ready partition and applies the answer.
func (f *fetcher) fetch(ctx context.Context, parts map[TP]*fetchPart) error {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = f.cfg.NodeID
	req.ReplicaState.ID = f.cfg.NodeID
	req.ReplicaState.Epoch = f.cfg.BrokerEpoch()
	req.MaxWaitMillis = int32(f.cfg.MaxWait / time.Millisecond)
	req.MinBytes = f.cfg.MinBytes
	req.MaxBytes = f.cfg.MaxBytes
	req.SessionID, req.SessionEpoch = 0, -1 // sessionless
	req.Rack = f.cfg.Rack
	byTopic := map[string]int{}
	ids := map[[16]byte]string{}
	for tp, fp := range parts {
		i, seen := byTopic[tp.Topic]
		if !seen {
			t := kmsg.NewFetchRequestTopic()
			t.Topic, t.TopicID = tp.Topic, fp.topicID
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[tp.Topic] = i
			ids[fp.topicID] = tp.Topic
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.CurrentLeaderEpoch = fp.leaderEpoch
		rp.FetchOffset = fp.p.LogEndOffset()
		rp.LastFetchedEpoch = -1
		if e, _, ok := fp.p.LastEpoch(); ok {
			rp.LastFetchedEpoch = e
		}
		rp.LogStartOffset = fp.p.LogStartOffset()
		rp.PartitionMaxBytes = f.cfg.PartitionMax
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	kresp, err := f.conn.request(ctx, req, f.cfg.MaxWait)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if resp.ErrorCode != 0 {
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	var done []appended
	for _, t := range resp.Topics {
		name := t.Topic
		if name == "" {
			name = ids[t.TopicID]
		}
		for i := range t.Partitions {
			rp := &t.Partitions[i]
			tp := TP{name, rp.Partition}
			fp, ok := parts[tp]
			if !ok || !f.current(tp, fp) {
				continue
			}
			fin, err := f.apply(tp, fp, rp)
			if err != nil {
				// What was appended must still be made durable before the next fetch
				// reports it.
				f.finish(done)
				return err
			}
			if fin != nil {
				done = append(done, *fin)
			}
		}
	}
	f.finish(done)
	return nil
}

// appended is a partition that took data from one fetch response: the high watermark and
// log start the leader sent apply once the data is durable.
type appended struct {
	tp       TP
	fp       *fetchPart
	hw       int64
	logStart int64
	flush    bool
}

// finish fsyncs the partitions appended to by one response — in parallel, so one fetch of
// many partitions costs one fsync's latency, not their sum — and then applies the leader's
// high watermark and log start to each.
func (f *fetcher) finish(done []appended) {
	errs := make([]error, len(done))
	var wg sync.WaitGroup
	for i := range done {
		if !done[i].flush {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = done[i].fp.p.Flush()
		}()
	}
	wg.Wait()
	for i, a := range done {
		if errs[i] != nil {
			f.backoff(a.fp, f.cfg.Backoff)
			continue
		}
		p := a.fp.p
		p.SetFollowerHW(a.hw)
		if a.logStart > p.LogStartOffset() {
			if err := p.FollowLogStart(a.logStart); err != nil {
				f.lg.Debug("following the leader's log start failed", "topic", a.tp.Topic, "partition", a.tp.Partition, "err", err)
			}
		}
	}
}

// apply handles one partition of a fetch response; what it returns is finished (fsync, high
// watermark, log start) with the response's other partitions.
func (f *fetcher) apply(tp TP, fp *fetchPart, rp *kmsg.FetchResponseTopicPartition) (*appended, error) {
	p := fp.p
	switch rp.ErrorCode {
	case 0:
	case kerr.OffsetOutOfRange.Code:
		f.lg.Warn("replica fetch offset out of range", "topic", tp.Topic, "partition", tp.Partition,
			"offset", p.LogEndOffset(), "leader_log_start", rp.LogStartOffset)
		if rp.LogStartOffset > p.LogEndOffset() {
			// The leader no longer has what we lack (retention, DeleteRecords): start over at
			// its log start, as Kafka's followers do.
			if err := p.ResetTo(rp.LogStartOffset); err != nil {
				f.lg.Error("resetting the replica to the leader's log start failed", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				f.backoff(fp, f.cfg.Backoff)
			}
			return nil, nil
		}
		// Our end is past the leader's (a tail it never had): find out where the epochs agree.
		f.mu.Lock()
		fp.truncate = true
		f.mu.Unlock()
		f.backoff(fp, f.epochBackoff())
		return nil, nil
	case kerr.FencedLeaderEpoch.Code, kerr.UnknownLeaderEpoch.Code, kerr.NotLeaderForPartition.Code,
		kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code:
		f.backoff(fp, f.epochBackoff())
		return nil, nil
	default:
		f.lg.Warn("replica fetch error", "topic", tp.Topic, "partition", tp.Partition, "err", kerr.ErrorForCode(rp.ErrorCode))
		f.backoff(fp, f.cfg.Backoff)
		return nil, nil
	}
	if rp.DivergingEpoch.Epoch >= 0 && rp.DivergingEpoch.EndOffset >= 0 {
		return nil, f.truncateTo(tp, fp, rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset)
	}
	a := &appended{tp: tp, fp: fp, hw: rp.HighWatermark, logStart: rp.LogStartOffset}
	if data := wholeBatches(rp.RecordBatches); len(data) > 0 {
		if _, err := p.AppendAsFollower(data); err != nil {
			if errors.Is(err, partition.ErrOffsetMismatch) {
				f.mu.Lock()
				fp.truncate = true
				f.mu.Unlock()
				return nil, nil
			}
			f.lg.Error("appending replicated batches failed", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			f.backoff(fp, f.cfg.Backoff)
			return nil, nil
		}
		a.flush = f.cfg.DurableAppend
	}
	return a, nil
}

// wholeBatches drops a trailing partial batch, which a leader may send when a batch does
// not fit the fetch's byte limit.
func wholeBatches(b []byte) []byte {
	n := 0
	for len(b)-n >= 12 {
		size := int(binary.BigEndian.Uint32(b[n+8:]))
		if size < 0 || len(b)-n-12 < size {
			break
		}
		n += 12 + size
	}
	return b[:n]
}
