package txn

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
	"github.com/poste-io/poste/internal/metadata"
)

// StateTopic is the internal topic holding transaction state.
const StateTopic = "__transaction_state"

// OffsetsTopic is the group coordinator's topic; AddOffsetsToTxn adds one of its partitions
// to a transaction. Markers are not written there: pending offsets live with the transaction.
const OffsetsTopic = "__consumer_offsets"

// Errors of the transaction coordinator; internal/api maps them to Kafka codes.
var (
	ErrInvalidTimeout           = errors.New("invalid transaction timeout")           // INVALID_TRANSACTION_TIMEOUT
	ErrConcurrentTransactions   = errors.New("concurrent transactions")               // CONCURRENT_TRANSACTIONS
	ErrProducerFenced           = errors.New("producer fenced")                       // PRODUCER_FENCED
	ErrInvalidProducerIDMapping = errors.New("invalid producer id mapping")           // INVALID_PRODUCER_ID_MAPPING
	ErrInvalidTxnState          = errors.New("invalid transaction state")             // INVALID_TXN_STATE
	ErrTransactionalIDNotFound  = errors.New("transactional id not found")            // TRANSACTIONAL_ID_NOT_FOUND
	ErrCoordinatorNotAvailable  = errors.New("transaction coordinator not available") // COORDINATOR_NOT_AVAILABLE
	// ErrPartitionGone is what a MarkerWriter returns for a partition that no longer exists
	// (its topic was deleted): the marker is skipped rather than retried.
	ErrPartitionGone = errors.New("partition no longer exists")
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is one committed offset of a transaction.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// PendingGroup is the offsets a transaction commits for one group, with the member that
// sent them (TxnOffsetCommit v3+; empty and -1 before).
type PendingGroup struct {
	Group      string
	MemberID   string
	Generation int32
	InstanceID *string
	Offsets    map[TopicPartition]Offset
}

// MarkerWriter appends transaction markers; the broker wires it to the hosted partitions.
type MarkerWriter interface {
	// WriteMarker appends a COMMIT or ABORT marker for (pid, epoch) to tp and returns once it
	// is durable. ErrPartitionGone: the partition no longer exists. It may block.
	WriteMarker(tp TopicPartition, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error
}

// OffsetCommitter makes a committed transaction's offsets the group's committed offsets; the
// broker wires it to the group coordinator.
type OffsetCommitter interface {
	// CommitTxnOffsets commits the offsets pg of the committed transaction id and calls cb
	// once they are durable.
	CommitTxnOffsets(id string, pg PendingGroup, cb func(error))
}

// Config configures the transaction coordinator.
type Config struct {
	MaxTimeout time.Duration // transaction.max.timeout.ms
	// RetryBackoff spaces retries of a marker or offset commit that failed.
	RetryBackoff time.Duration
	// IDExpiration is transactional.id.expiration.ms: a transactional id with no transaction
	// open that has not been used for longer is removed. Zero means Kafka's default, 7 days.
	IDExpiration time.Duration
	// ExpiryCheckInterval spaces the scans for expired ids (Kafka's
	// transaction.remove.expired.transaction.cleanup.interval.ms). Zero means one hour.
	ExpiryCheckInterval time.Duration
}

// Defaults of Config.
const (
	DefaultIDExpiration        = 7 * 24 * time.Hour
	DefaultExpiryCheckInterval = time.Hour
)

// InitRequest is an InitProducerId request with a transactional id.
type InitRequest struct {
	TransactionalID string
	TimeoutMs       int32
	ProducerID      int64 // -1 unless the producer asks to bump its epoch (KIP-360)
	ProducerEpoch   int16
}

// InitResult is the answer to InitProducerId.
type InitResult struct {
	ProducerID    int64
	ProducerEpoch int16
	Err           error
}

// Description is DescribeTransactions' view of one transaction.
type Description struct {
	TransactionalID string
	Err             error
	State           kmsg.TransactionState
	ProducerID      int64
	ProducerEpoch   int16
	TimeoutMs       int32
	StartTimestamp  int64
	Partitions      []TopicPartition
}

// Listing is ListTransactions' view of one transaction.
type Listing struct {
	TransactionalID string
	ProducerID      int64
	State           kmsg.TransactionState
	StartTimestamp  int64 // -1 when no transaction is open
}

// markerJob is the work of completing one decided transaction.
type markerJob struct {
	id      string
	pid     int64
	epoch   int16
	commit  bool
	parts   []TopicPartition
	offsets []PendingGroup
}

// Coordinator is the transaction coordinator: it routes each transactional id to the shard
// of its __transaction_state partition and writes the markers of decided transactions.
//
// Every method may be called from any goroutine; each calls its callback exactly once, from
// the calling goroutine (an immediate error) or a shard goroutine. Callbacks must not block.
// Marker writing runs on goroutines of its own (one per decided transaction), never on a
// shard goroutine, since it waits for other partitions' commits; so does the reservation of a
// fresh producer id that an exhausted epoch needs, which may wait for the metadata quorum.
type Coordinator struct {
	cfg     Config
	rt      *coord.Runtime[*Shard]
	pids    *ProducerIDs
	markers MarkerWriter
	offsets OffsetCommitter
	pending *pendingOffsets
	remote  remotePending // offsets passed on to transactions coordinated elsewhere
	lg      *slog.Logger

	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// NewCoordinator returns a coordinator with no shard loaded; Apply loads them. open returns
// the hosted __transaction_state partition of an index.
func NewCoordinator(cfg Config, nodeID int32, open func(index int32) (coord.Log, error), pids *ProducerIDs,
	markers MarkerWriter, offsets OffsetCommitter, clock coord.Clock, lg *slog.Logger) *Coordinator {
	if lg == nil {
		lg = slog.Default()
	}
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.IDExpiration <= 0 {
		cfg.IDExpiration = DefaultIDExpiration
	}
	if cfg.ExpiryCheckInterval <= 0 {
		cfg.ExpiryCheckInterval = DefaultExpiryCheckInterval
	}
	c := &Coordinator{cfg: cfg, pids: pids, markers: markers, offsets: offsets, pending: newPendingOffsets(),
		lg: lg.With("component", "txn-coordinator"), closing: make(chan struct{})}
	c.rt = coord.NewRuntime(coord.RuntimeConfig[*Shard]{
		Topic: StateTopic, NodeID: nodeID, Open: open, Clock: clock, Logger: c.lg,
		Machine: func(i int32) *Shard { return newShard(i, c) },
	})
	return c
}

// Apply is the metadata watcher that loads and unloads shards; register it after the
// replica manager's.
func (c *Coordinator) Apply(prev, next *metadata.Image) { c.rt.Apply(prev, next) }

// Close stops marker writers and every shard. Call it before the partitions close.
func (c *Coordinator) Close() {
	c.once.Do(func() { close(c.closing) })
	c.rt.Close()
	c.wg.Wait()
}

// PartitionFor returns the partition of a transactional id, or false while
// __transaction_state does not exist.
func (c *Coordinator) PartitionFor(id string) (int32, bool) {
	n := c.rt.Partitions()
	if n <= 0 {
		return 0, false
	}
	return partitionFor(id, n), true
}

func (c *Coordinator) submit(id string, fn func(m *Shard, now time.Time) coord.Result, fail func(error)) {
	p, ok := c.PartitionFor(id)
	if !ok {
		fail(ErrCoordinatorNotAvailable)
		return
	}
	sh, err := c.rt.Shard(p)
	if err != nil {
		fail(err)
		return
	}
	sh.Submit(fn, fail)
}

// InitProducerID serves InitProducerId with a transactional id.
func (c *Coordinator) InitProducerID(ctx context.Context, req InitRequest, cb func(InitResult)) {
	// Reserved up front so the shard goroutine never waits on the metadata quorum; an id
	// not needed is simply never used (ids are plentiful).
	pid, err := c.pids.Next(ctx)
	if err != nil {
		cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: ErrCoordinatorNotAvailable})
		return
	}
	c.submit(req.TransactionalID, func(m *Shard, now time.Time) coord.Result {
		return m.InitProducerID(now, req, pid, cb)
	}, func(err error) { cb(InitResult{ProducerID: -1, ProducerEpoch: -1, Err: err}) })
}

// AddPartitions serves AddPartitionsToTxn.
func (c *Coordinator) AddPartitions(id string, pid int64, epoch int16, tps []TopicPartition, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.AddPartitions(now, id, pid, epoch, tps, "", cb)
	}, cb)
}

// AddOffsets serves AddOffsetsToTxn; groupPartition is the group's __consumer_offsets
// partition.
func (c *Coordinator) AddOffsets(id string, pid int64, epoch int16, group string, groupPartition int32, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.AddPartitions(now, id, pid, epoch, []TopicPartition{{OffsetsTopic, groupPartition}}, group, cb)
	}, cb)
}

// Verify serves the verification form of AddPartitionsToTxn and the produce path's check
// that a transactional batch's partition is in its transaction (KIP-890).
func (c *Coordinator) Verify(id string, pid int64, epoch int16, tp TopicPartition, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		cb(m.Verify(id, pid, epoch, tp))
		return coord.Result{}
	}, cb)
}

// CommitOffsets serves TxnOffsetCommit.
func (c *Coordinator) CommitOffsets(id string, pid int64, epoch int16, pg PendingGroup, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.CommitOffsets(now, id, pid, epoch, pg, cb)
	}, cb)
}

// EndTxn serves EndTxn.
func (c *Coordinator) EndTxn(id string, pid int64, epoch int16, commit bool, cb func(error)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		return m.EndTxn(now, id, pid, epoch, commit, cb)
	}, cb)
}

// Describe serves DescribeTransactions for one id.
func (c *Coordinator) Describe(id string, cb func(Description)) {
	c.submit(id, func(m *Shard, now time.Time) coord.Result {
		cb(m.Describe(id))
		return coord.Result{}
	}, func(err error) { cb(Description{TransactionalID: id, Err: err}) })
}

// List serves ListTransactions: the transactions of every shard this broker leads.
func (c *Coordinator) List() ([]Listing, error) {
	var (
		mu    sync.Mutex
		out   []Listing
		first error
		wg    sync.WaitGroup
	)
	for _, sh := range c.rt.Shards() {
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
			if first == nil && errors.Is(err, coord.ErrLoading) {
				first = err
			}
			mu.Unlock()
			wg.Done()
		})
	}
	wg.Wait()
	return out, first
}

// runMarkers completes a decided transaction on a goroutine of its own: markers on every
// partition, then (on commit) the offsets, then the Complete record through the shard.
func (c *Coordinator) runMarkers(shard int32, job markerJob) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for _, tp := range job.parts {
			if !c.retry(func() error {
				err := c.markers.WriteMarker(tp, job.pid, job.epoch, job.commit, 0)
				if errors.Is(err, ErrPartitionGone) {
					return nil
				}
				return err
			}, "marker", job.id, 0) {
				return
			}
		}
		for _, pg := range job.offsets {
			if !c.retry(func() error {
				ch := make(chan error, 1)
				c.offsets.CommitTxnOffsets(job.id, pg, func(err error) { ch <- err })
				return <-ch
			}, "offset commit", job.id, maxOffsetCommitAttempts) {
				return
			}
		}
		// A shard finishing what it replayed may still be loading: wait for it. Once it is
		// gone the next leader replays the decision and finishes the transaction.
		for {
			sh, err := c.rt.Shard(shard)
			if err != nil {
				return
			}
			aborted := make(chan error, 1)
			sh.Submit(func(m *Shard, now time.Time) coord.Result {
				aborted <- nil
				return m.complete(job, now)
			}, func(err error) { aborted <- err })
			if err := <-aborted; !errors.Is(err, coord.ErrLoading) {
				return
			}
			select {
			case <-c.closing:
				return
			case <-time.After(c.cfg.RetryBackoff):
			}
		}
	}()
}

// maxOffsetCommitAttempts bounds the retries of a committed transaction's offsets: a group
// that refuses them for good (it was deleted, the member's generation is gone) must not keep
// the transaction from completing. The records themselves are committed either way.
const maxOffsetCommitAttempts = 50

// retry runs fn until it succeeds, max attempts (0: unbounded) failed, or the coordinator
// closes; false means it closed.
func (c *Coordinator) retry(fn func() error, what, id string, max int) bool {
	for attempt := 0; ; attempt++ {
		err := fn()
		if err == nil {
			return true
		}
		if max > 0 && attempt+1 >= max {
			c.lg.Error("transaction completion step abandoned", "step", what, "transactional.id", id, "err", err)
			return true
		}
		if attempt%50 == 0 {
			c.lg.Warn("transaction completion step failed; retrying", "step", what, "transactional.id", id, "err", err)
		}
		select {
		case <-c.closing:
			return false
		case <-time.After(c.cfg.RetryBackoff):
		}
	}
}
