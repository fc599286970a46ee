package streams

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceChunk is how many records the processing goroutine hands over at once (each
// hand-off may wake the producing goroutine: fewer, larger chunks cost fewer wake-ups).
const produceChunk = 1024

// queued is one record waiting to be given to the producer, with its promise (nil: the
// queue's default).
type queued struct {
	r       *kgo.Record
	promise func(*kgo.Record, error)
}

// produceQueue moves the producer's per-record work (partitioning, batching, buffer
// accounting inside kgo.Produce) off the goroutine that processes records: tasks append
// their writes to a chunk, and one goroutine hands full chunks to the client in order, so
// processing and producing run on two cores. Records keep their order, per partition and
// overall. A full queue blocks the appender (the client's own buffer limit still applies
// behind it).
//
// add, push and drain are called by whoever holds the application's mu (the processing
// goroutine, or a group callback while it waits); run is the handing goroutine. Invariant:
// once drain returns, every record added before it was passed to Produce. Nothing is added,
// pushed or drained after close (Run closes it once its tasks are closed).
type produceQueue struct {
	produce func(context.Context, *kgo.Record, func(*kgo.Record, error)) // the client's Produce
	def     func(*kgo.Record, error)                                     // the promise of records added without one
	cur     []queued
	ch      chan []queued // a nil chunk is a drain marker, answered on ack
	free    chan []queued // emptied chunks, back from run for reuse
	ack     chan struct{}
	added   int // records added since the last takeAdded (read at exactly_once_v2 commits)
}

func newProduceQueue(produce func(context.Context, *kgo.Record, func(*kgo.Record, error)), def func(*kgo.Record, error)) *produceQueue {
	const depth = 8
	return &produceQueue{produce: produce, def: def, ch: make(chan []queued, depth), free: make(chan []queued, depth+2),
		ack: make(chan struct{})}
}

// run hands chunks to the client until the queue is closed.
func (q *produceQueue) run() {
	for chunk := range q.ch {
		if chunk == nil {
			q.ack <- struct{}{}
			continue
		}
		for i := range chunk {
			promise := chunk[i].promise
			if promise == nil {
				promise = q.def
			}
			q.produce(context.Background(), chunk[i].r, promise)
		}
		clear(chunk) // at once: cheaper than a pair of pointer writes per record
		select {     // a chunk is 16 KiB of pointers: reuse it rather than make garbage
		case q.free <- chunk[:0]:
		default:
		}
	}
	close(q.ack)
}

// add queues one record; a nil promise stands for the queue's default.
func (q *produceQueue) add(r *kgo.Record, promise func(*kgo.Record, error)) {
	if q.cur == nil {
		select {
		case q.cur = <-q.free:
		default:
			q.cur = make([]queued, 0, produceChunk)
		}
	}
	q.cur = append(q.cur, queued{r, promise})
	q.added++
	if len(q.cur) == produceChunk {
		q.push()
	}
}

// push hands over the records queued so far without waiting for them.
func (q *produceQueue) push() {
	if len(q.cur) > 0 {
		q.ch <- q.cur
		q.cur = nil
	}
}

// takeAdded returns how many records were added since its last call.
func (q *produceQueue) takeAdded() int {
	n := q.added
	q.added = 0
	return n
}

// drain returns once every record queued so far was passed to Produce: before a flush,
// a transaction's end, or the client's close.
func (q *produceQueue) drain() {
	q.push()
	q.ch <- nil
	<-q.ack
}

// close drains the queue and stops its goroutine.
func (q *produceQueue) close() {
	q.drain()
	close(q.ch)
	<-q.ack
}
