package group

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/poste-io/poste/internal/coord"
	"github.com/poste-io/poste/internal/metadata"
)

// Coordinator routes group requests to the shard of each group's __consumer_offsets partition
// and answers through callbacks.
//
// Every method may be called from any goroutine; each calls its callback exactly once, from
// the calling goroutine (an immediate error) or from the shard's goroutine. Callbacks must
// not block. Requests submitted from one goroutine run in submission order.
type Coordinator struct {
	cfg Config
	rt  *coord.Runtime[*Shard]
}

// NewCoordinator returns a coordinator with no shard loaded; Apply loads them. open returns
// the hosted __consumer_offsets partition of an index.
func NewCoordinator(cfg Config, nodeID int32, open func(index int32) (coord.Log, error), clock coord.Clock, lg *slog.Logger) *Coordinator {
	if lg == nil {
		lg = slog.Default()
	}
	c := &Coordinator{cfg: cfg}
	c.rt = coord.NewRuntime(coord.RuntimeConfig[*Shard]{
		Topic: OffsetsTopic, NodeID: nodeID, Open: open, Clock: clock,
		Logger:  lg.With("component", "group-coordinator"),
		Machine: func(int32) *Shard { return NewShard(cfg) },
	})
	return c
}

// Apply is the metadata watcher that loads and unloads shards; register it after the
// replica manager's.
func (c *Coordinator) Apply(prev, next *metadata.Image) { c.rt.Apply(prev, next) }

// Close stops every shard (parked requests are answered NOT_COORDINATOR). Call it before the
// partitions close.
func (c *Coordinator) Close() { c.rt.Close() }

// PartitionFor returns the partition of a group, or false while __consumer_offsets does not exist.
func (c *Coordinator) PartitionFor(group string) (int32, bool) {
	n := c.rt.Partitions()
	if n <= 0 {
		return 0, false
	}
	return PartitionFor(group, n), true
}

// Ready reports whether this broker serves group now: nil, ErrLoading or coord.ErrNotCoordinator.
func (c *Coordinator) Ready(group string) error {
	sh, err := c.shard(group)
	if err != nil {
		return err
	}
	if !sh.Loaded() {
		return ErrLoading
	}
	return nil
}

func (c *Coordinator) shard(group string) (*coord.Shard[*Shard], error) {
	p, ok := c.PartitionFor(group)
	if !ok {
		return nil, ErrCoordinatorNotAvail
	}
	return c.rt.Shard(p)
}

// mapErr turns the runtime's loading error into the group package's.
func mapErr(err error) error {
	if errors.Is(err, coord.ErrLoading) {
		return ErrLoading
	}
	return err
}

// submit runs fn on the group's shard, or calls fail with why it cannot.
func (c *Coordinator) submit(group string, fn func(m *Shard, now time.Time) coord.Result, fail func(error)) {
	sh, err := c.shard(group)
	if err != nil {
		fail(err)
		return
	}
	sh.Submit(fn, func(err error) { fail(mapErr(err)) })
}

// Join serves JoinGroup.
func (c *Coordinator) Join(req JoinRequest, cb func(JoinResult)) {
	c.submit(req.Group, func(m *Shard, now time.Time) coord.Result { return m.Join(now, req, cb) },
		func(err error) { cb(JoinResult{Err: err, Generation: -1, MemberID: req.MemberID}) })
}

// Sync serves SyncGroup.
func (c *Coordinator) Sync(req SyncRequest, cb func(SyncResult)) {
	c.submit(req.Group, func(m *Shard, now time.Time) coord.Result { return m.Sync(now, req, cb) },
		func(err error) { cb(SyncResult{Err: err}) })
}

// Heartbeat serves Heartbeat.
func (c *Coordinator) Heartbeat(req HeartbeatRequest, cb func(error)) {
	c.submit(req.Group, func(m *Shard, now time.Time) coord.Result {
		return coord.Result{Done: doneWith(cb, m.Heartbeat(now, req))}
	}, cb)
}

// doneWith answers cb once earlier writes of the shard are done, keeping answers in order.
func doneWith(cb func(error), err error) func(error) {
	return func(werr error) {
		if err == nil && errors.Is(werr, coord.ErrNotCoordinator) {
			err = werr
		}
		cb(err)
	}
}

// Leave serves LeaveGroup.
func (c *Coordinator) Leave(group string, members []LeaveMember, cb func(LeaveResult)) {
	c.submit(group, func(m *Shard, now time.Time) coord.Result {
		res, lr := m.Leave(now, group, members)
		return merge(res, coord.Result{Done: func(err error) {
			if err != nil {
				lr.Err = err
			}
			cb(lr)
		}})
	}, func(err error) { cb(LeaveResult{Err: err}) })
}

// Commit serves OffsetCommit: cb gets a group error, or one error per offset.
func (c *Coordinator) Commit(req CommitRequest, offsets []CommitOffset, cb func(error, []error)) {
	c.submit(req.Group, func(m *Shard, now time.Time) coord.Result { return m.Commit(now, req, offsets, cb) },
		func(err error) { cb(err, nil) })
}

// Fetch serves OffsetFetch for one group (tps nil: every committed partition).
func (c *Coordinator) Fetch(group string, tps []TopicPartition, cb func(FetchResult)) {
	c.submit(group, func(m *Shard, now time.Time) coord.Result {
		r := m.Fetch(group, tps)
		cb(r)
		return coord.Result{}
	}, func(err error) { cb(FetchResult{Err: err}) })
}

// DeleteOffsets serves OffsetDelete.
func (c *Coordinator) DeleteOffsets(group string, tps []TopicPartition, cb func(error, []error)) {
	c.submit(group, func(m *Shard, now time.Time) coord.Result { return m.DeleteOffsets(group, tps, cb) },
		func(err error) { cb(err, nil) })
}

// Describe serves DescribeGroups for one group.
func (c *Coordinator) Describe(group string, cb func(Description)) {
	c.submit(group, func(m *Shard, now time.Time) coord.Result {
		cb(m.Describe(group))
		return coord.Result{}
	}, func(err error) { cb(Description{Err: err, Group: group, State: Dead}) })
}

// Delete serves DeleteGroups for one group.
func (c *Coordinator) Delete(group string, cb func(error)) {
	c.submit(group, func(m *Shard, now time.Time) coord.Result { return m.Delete(group, cb) }, cb)
}

// List serves ListGroups: the groups of every shard this broker leads. It fails with
// ErrLoading while a shard is loading, as Kafka does.
func (c *Coordinator) List() ([]Listing, error) {
	shards := c.rt.Shards()
	var (
		mu    sync.Mutex
		out   []Listing
		first error
		wg    sync.WaitGroup
	)
	for _, sh := range shards {
		wg.Add(1)
		sh.Submit(func(m *Shard, now time.Time) coord.Result {
			ls := m.List()
			mu.Lock()
			out = append(out, ls...)
			mu.Unlock()
			wg.Done()
			return coord.Result{}
		}, func(err error) {
			mu.Lock()
			// A shard stopping under us no longer belongs to this broker: not an error.
			if first == nil && errors.Is(err, coord.ErrLoading) {
				first = ErrLoading
			}
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	return out, first
}
