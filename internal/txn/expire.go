package txn

// transactional.id.expiration.ms: a transactional id whose state is Empty, CompleteCommit or
// CompleteAbort and that nothing has touched for longer than Config.IDExpiration is removed
// by a tombstone in __transaction_state, so it stays removed across a restart (the replay
// deletes it) and, once compacted, leaves nothing behind. Each shard scans its ids every
// Config.ExpiryCheckInterval on its injected clock. While the tombstone is being written the
// id is hidden from DescribeTransactions and ListTransactions and its requests get
// CONCURRENT_TRANSACTIONS; afterwards the id is unknown, and InitProducerId starts it afresh.

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

const expiryKey = "expire-transactional-ids"

// scheduleExpiry arms the next scan for expired ids.
func (s *Shard) scheduleExpiry(now time.Time) {
	s.timers.Schedule(expiryKey, now.Add(s.cfg.ExpiryCheckInterval), func(now time.Time) coord.Result {
		res := s.expireIDs(now)
		s.scheduleExpiry(now)
		return res
	})
}

// expirable reports whether t may be removed at now.
func (s *Shard) expirable(t *txnMeta, now time.Time) bool {
	switch t.state {
	case kmsg.TransactionStateEmpty, kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
	default:
		return false
	}
	return !t.completing && !t.expiring && len(t.offsets) == 0 && now.Sub(t.lastUpdate) > s.cfg.IDExpiration
}

// expireIDs writes the tombstones of every expired id of the shard; once durable the ids
// are forgotten.
func (s *Shard) expireIDs(now time.Time) coord.Result {
	var expired []*txnMeta
	for _, t := range s.txns {
		if s.expirable(t, now) {
			expired = append(expired, t)
		}
	}
	if len(expired) == 0 {
		return coord.Result{}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].id < expired[j].id })
	var recs []coord.Record
	for _, t := range expired {
		t.expiring = true
		recs = append(recs, tombstones(t.id)...)
	}
	return coord.Result{Records: recs, Done: func(err error) {
		for _, t := range expired {
			t.expiring = false
			if err == nil && s.txns[t.id] == t {
				delete(s.txns, t.id)
				s.deps.pending.set(s, t.id, nil)
			}
		}
		if err != nil {
			s.deps.lg.Warn("removing expired transactional ids failed; the next scan retries", "count", len(expired), "err", err)
			return
		}
		s.deps.lg.Info("removed expired transactional ids", "count", len(expired))
	}}
}
