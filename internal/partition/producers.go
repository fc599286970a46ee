package partition

import (
	"math"
	"time"

	"github.com/poste-io/poste/internal/record"
)

// maxBatchesPerProducer is how many recent batches each producer's state remembers, as Kafka
// does: a client has at most 5 requests in flight, so a retry always finds its original.
const maxBatchesPerProducer = 5

// batchMeta is what is remembered of one appended idempotent batch.
type batchMeta struct {
	firstSeq, lastSeq int32
	baseOffset        int64
	lastOffset        int64
	timestamp         int64 // log-append time answered, or -1
}

// producerEntry is one producer's state on one partition.
//
// Invariant: batches holds the last (up to five) appended batches of the current epoch,
// oldest first, with consecutive sequence numbers.
type producerEntry struct {
	epoch   int16
	batches []batchMeta
	lastTs  int64 // wall time of the last append, for producer.id.expiration.ms
	// coordEpoch is the transaction coordinator epoch of the producer's last marker here,
	// or -1 (DescribeProducers reports it).
	coordEpoch int32
}

func newProducerEntry(epoch int16) *producerEntry {
	return &producerEntry{epoch: epoch, coordEpoch: -1}
}

// seqCheck is the outcome of checking a batch against its producer's state.
type seqCheck int8

const (
	seqOK seqCheck = iota
	seqDuplicate
	seqOutOfOrder
	seqFencedEpoch
)

// nextSeq returns the sequence number following s, wrapping as Kafka does.
func nextSeq(s int32, n int32) int32 {
	if int64(s)+int64(n) > math.MaxInt32 {
		return int32(int64(s) + int64(n) - math.MaxInt32 - 1)
	}
	return s + n
}

// check decides what to do with batch h from producer entry e (nil if unknown). For a
// duplicate it also returns the batch remembered.
func (e *producerEntry) check(h *record.Header) (seqCheck, batchMeta) {
	if e == nil {
		// Unknown producer: a fresh producer starts at sequence 0. Anything else means its
		// earlier batches are gone from this log (or never came): out of order.
		if h.BaseSequence != 0 {
			return seqOutOfOrder, batchMeta{}
		}
		return seqOK, batchMeta{}
	}
	switch {
	case h.ProducerEpoch < e.epoch:
		return seqFencedEpoch, batchMeta{}
	case h.ProducerEpoch > e.epoch:
		if h.BaseSequence != 0 {
			return seqOutOfOrder, batchMeta{}
		}
		return seqOK, batchMeta{}
	}
	last := h.BaseSequence + h.LastOffsetDelta
	for _, b := range e.batches {
		if b.firstSeq == h.BaseSequence && b.lastSeq == last {
			return seqDuplicate, b
		}
	}
	if len(e.batches) == 0 {
		if h.BaseSequence != 0 {
			return seqOutOfOrder, batchMeta{}
		}
		return seqOK, batchMeta{}
	}
	if h.BaseSequence != nextSeq(e.batches[len(e.batches)-1].lastSeq, 1) {
		return seqOutOfOrder, batchMeta{}
	}
	return seqOK, batchMeta{}
}

// record remembers an appended batch, starting a new entry or epoch as needed.
func (e *producerEntry) record(h *record.Header, m batchMeta, now int64) {
	if h.ProducerEpoch != e.epoch {
		e.epoch = h.ProducerEpoch
		e.batches = e.batches[:0]
	}
	if len(e.batches) == maxBatchesPerProducer {
		copy(e.batches, e.batches[1:])
		e.batches = e.batches[:maxBatchesPerProducer-1]
	}
	e.batches = append(e.batches, m)
	e.lastTs = now
}

// defaultProducerIDExpiration is Kafka's producer.id.expiration.ms default.
const defaultProducerIDExpiration = 24 * time.Hour

// expiryCheckInterval spaces the scans for idle producers, so appends rarely pay for one.
const expiryCheckInterval = time.Minute

// expireProducersLocked forgets producers idle for longer than producer.id.expiration.ms,
// unless they have a transaction open here. A forgotten producer that comes back with a
// sequence other than 0 gets OUT_OF_ORDER_SEQUENCE_NUMBER, as in Kafka.
func (p *Partition) expireProducersLocked(nowMs int64) {
	if nowMs-p.mu.lastExpiry < expiryCheckInterval.Milliseconds() {
		return
	}
	p.mu.lastExpiry = nowMs
	ttl := p.cfg.ProducerIDExpiration
	if ttl <= 0 {
		ttl = defaultProducerIDExpiration
	}
	for id, pe := range p.mu.producers {
		if _, open := p.mu.ongoing[id]; open {
			continue
		}
		if nowMs-pe.lastTs > ttl.Milliseconds() {
			delete(p.mu.producers, id)
		}
	}
}
