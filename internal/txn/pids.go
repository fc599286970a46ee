// Package txn owns producer identities and transactions: producer-id allocation and the
// transaction coordinator (its state in __transaction_state, markers, transaction versions 1
// and 2, timeouts and the expiration of idle transactional ids).
package txn

import (
	"context"
	"sync"
)

// blockSize is how many producer ids are reserved through the metadata log at a time, so
// InitProducerId rarely waits on a quorum write.
const blockSize = 1000

// Allocator reserves a block of producer ids unique cluster-wide.
type Allocator func(ctx context.Context, count int64) (first int64, err error)

// ProducerIDs hands out producer ids from blocks reserved through the metadata log.
//
// Invariant: next < end, or the block is exhausted and the next call reserves a new one. Ids are
// never reused: a block reserved and not used up before a restart is abandoned. Safe for
// concurrent use.
type ProducerIDs struct {
	alloc Allocator
	mu    struct {
		sync.Mutex
		next, end int64
	}
}

// NewProducerIDs returns an allocator drawing blocks from alloc.
func NewProducerIDs(alloc Allocator) *ProducerIDs { return &ProducerIDs{alloc: alloc} }

// Next returns a fresh producer id.
func (p *ProducerIDs) Next(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.next >= p.mu.end {
		first, err := p.alloc(ctx, blockSize)
		if err != nil {
			return -1, err
		}
		p.mu.next, p.mu.end = first, first+blockSize
	}
	id := p.mu.next
	p.mu.next++
	return id, nil
}
