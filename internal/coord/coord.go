// Package coord is the coordinator runtime shared by the group coordinator (and later the
// transaction coordinator): one shard per internal partition this broker leads, each shard's
// state owned by one goroutine that takes operations through a queue, writes the records they
// produce to the partition as one batch, and completes them once the batch is committed.
//
// How an operation runs (the decision recorded in docs/groups.md):
//  1. Submit queues it; the shard goroutine runs it with the shard's state and the time.
//  2. The operation changes the state at once (optimistically) and returns the records that
//     make the change durable together with a Done callback.
//  3. The shard appends the records of every operation it ran in one round as one batch, and
//     hands the batch to its waiter goroutine, which waits for the partition to commit it.
//  4. Done runs on the shard goroutine with nil once the batch is committed, or with the
//     error; an operation that must not leave a trace when its records fail reverts there.
//     Operations that write nothing are done at once.
//
// Done callbacks therefore run in the order their records were appended, and no response is
// sent before the state it reports is durable.
package coord

import (
	"errors"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/partition"
)

// Errors of the runtime; internal/api maps them to Kafka codes.
var (
	// ErrNotCoordinator: this broker does not (or no longer) lead the shard's partition.
	ErrNotCoordinator = errors.New("not the coordinator")
	// ErrLoading: the shard is still replaying its partition.
	ErrLoading = errors.New("coordinator load in progress")
	// ErrUnavailable: the records of an operation could not be written or committed.
	ErrUnavailable = errors.New("coordinator not available")
)

// Log is what a shard needs of its partition; *partition.Partition implements it.
type Log interface {
	Append(batch []byte) (partition.AppendResult, error)
	AwaitCommitted(off int64, deadline time.Time) error
	Read(offset int64, maxBytes int, minOne bool) (plog.Slice, error)
	// ReadForFollower reads up to the log end offset, not only the high watermark: a shard
	// loads everything its leader's log holds, as Kafka's coordinators do, since a new leader's
	// high watermark may still lag what it will commit.
	ReadForFollower(offset int64, maxBytes int) (plog.Slice, error)
	LogStartOffset() int64
	LogEndOffset() int64
	HighWatermark() int64
}

// Record is one key/value record an operation writes; a nil Value is a tombstone.
type Record struct {
	Key, Value []byte
}

// Result is what an operation returns: records to make durable and what to do once they are.
type Result struct {
	Records []Record
	// Done, if set, runs on the shard goroutine after Records are committed (err nil) or
	// failed to be (err wraps ErrUnavailable or ErrNotCoordinator).
	Done func(err error)
}

// Machine is a shard's state. All its methods are called on the shard goroutine only.
type Machine interface {
	// Replay folds one committed record of the partition into the state during load.
	// offset is the record's offset; value is nil for a tombstone.
	Replay(offset int64, key, value []byte) error
	// Loaded is called once the partition has been replayed, before any operation runs;
	// the machine schedules its timers on t from here on.
	Loaded(t Timers, now time.Time)
	// Unloaded is called when the shard stops: the machine answers every parked request
	// (with ErrNotCoordinator). No call follows.
	Unloaded()
}

// Timers schedules work on the shard goroutine. Only the shard goroutine may call it.
type Timers interface {
	// Schedule runs fn at (or soon after) at, replacing any timer with the same key.
	Schedule(key string, at time.Time, fn func(now time.Time) Result)
	// Cancel drops the timer with key, if any.
	Cancel(key string)
}

// Clock is the time source of the runtime; tests inject a manual one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

type partitionAppend = partition.AppendResult
