package txn

import (
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// groupPartition names one partition's committed offset in one group.
type groupPartition struct {
	group     string
	topic     string
	partition int32
}

// pendingEntry is one transaction's contribution to the view.
type pendingEntry struct {
	owner *Shard // the shard instance that published it
	keys  []groupPartition
}

// pendingOffsets is the broker-wide view of transactional offsets not yet settled: a
// (group, topic, partition) is pending while a transaction coordinated here holds a
// TxnOffsetCommit offset for it that has neither reached the group (commit) nor been
// dropped (abort, fencing, timeout). OffsetFetch with require_stable (KIP-447) reads it.
//
// Invariants:
//   - mu.count[k] is the number of entries of mu.byID whose keys hold k; zero counts are
//     deleted, so a key is pending exactly when it is present.
//   - An id's entry is replaced whole (set) or removed (dropShard). Entries remember
//     the shard instance that published them, so a shard stopping after its successor for
//     the same partition loaded removes only its own.
//
// Any goroutine may call its methods; the lock is held only for map updates.
type pendingOffsets struct {
	mu struct {
		sync.Mutex
		byID  map[string]pendingEntry
		count map[groupPartition]int
	}
}

func newPendingOffsets() *pendingOffsets {
	p := &pendingOffsets{}
	p.mu.byID = map[string]pendingEntry{}
	p.mu.count = map[groupPartition]int{}
	return p
}

// set makes keys the pending offsets of id (published by owner); empty keys drop id.
func (p *pendingOffsets) set(owner *Shard, id string, keys []groupPartition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked(id)
	if len(keys) == 0 {
		return
	}
	p.mu.byID[id] = pendingEntry{owner: owner, keys: keys}
	for _, k := range keys {
		p.mu.count[k]++
	}
}

func (p *pendingOffsets) dropLocked(id string) {
	e, ok := p.mu.byID[id]
	if !ok {
		return
	}
	delete(p.mu.byID, id)
	for _, k := range e.keys {
		if p.mu.count[k]--; p.mu.count[k] <= 0 {
			delete(p.mu.count, k)
		}
	}
}

// dropShard removes every entry owner published (it stopped).
func (p *pendingOffsets) dropShard(owner *Shard) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, e := range p.mu.byID {
		if e.owner == owner {
			p.dropLocked(id)
		}
	}
}

// has reports whether k is pending.
func (p *pendingOffsets) has(k groupPartition) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.count[k] > 0
}

// pendingKeys returns the offsets t holds that are still unsettled: those of an ongoing
// transaction or of one decided to commit whose offsets have not reached the group. A
// decided abort's offsets are settled: they will never be committed.
func pendingKeys(t *txnMeta) []groupPartition {
	if len(t.offsets) == 0 {
		return nil
	}
	switch t.state {
	case kmsg.TransactionStateOngoing, kmsg.TransactionStatePrepareCommit:
	default:
		return nil
	}
	var keys []groupPartition
	for g, pg := range t.offsets {
		for tp := range pg.Offsets {
			keys = append(keys, groupPartition{g, tp.Topic, tp.Partition})
		}
	}
	return keys
}

// publishPending makes the view match t's state. It runs on the shard goroutine.
func (s *Shard) publishPending(t *txnMeta) {
	s.deps.pending.set(s, t.id, pendingKeys(t))
}

// HasPendingOffsets reports whether a transaction coordinated by this broker holds an
// offset for (group, topic, partition) that is not yet settled: OffsetFetch with
// require_stable answers UNSTABLE_OFFSET_COMMIT for it. Transactions of a shard still
// loading are not yet known. Any goroutine may call it.
func (c *Coordinator) HasPendingOffsets(group, topic string, partition int32) bool {
	return c.pending.has(groupPartition{group, topic, partition})
}

// PendingOffsets returns the partitions of group for which HasPendingOffsets holds, nil
// when there are none. Any goroutine may call it.
func (c *Coordinator) PendingOffsets(group string) map[TopicPartition]bool {
	return c.pending.ofGroup(group)
}

// ofGroup returns the pending partitions of group (nil: none).
func (p *pendingOffsets) ofGroup(group string) map[TopicPartition]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out map[TopicPartition]bool
	for k := range p.mu.count {
		if k.group == group {
			if out == nil {
				out = map[TopicPartition]bool{}
			}
			out[TopicPartition{k.topic, k.partition}] = true
		}
	}
	return out
}
