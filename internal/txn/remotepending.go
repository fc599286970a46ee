package txn

import "sync"

// remotePending remembers, on a group's coordinator, the transactional offsets it passed on
// to a transaction coordinated by another broker: which transactional ids hold offsets of
// which of its groups' partitions. OffsetFetch with require_stable asks those transactions'
// coordinators whether they are still open (the group coordinator is not told when they
// end) and forgets the ones that are not.
//
// Invariants: byGroup[g][id] holds the partitions id committed for g since it was last
// found closed; an empty set is deleted. Safe for concurrent use.
type remotePending struct {
	mu struct {
		sync.Mutex
		byGroup map[string]map[string]map[TopicPartition]bool
	}
}

// NoteRemotePending records that the transaction id, coordinated on another broker, now
// holds offsets of pg's partitions for pg.Group.
func (c *Coordinator) NoteRemotePending(id string, pg PendingGroup) {
	r := &c.remote
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mu.byGroup == nil {
		r.mu.byGroup = map[string]map[string]map[TopicPartition]bool{}
	}
	ids := r.mu.byGroup[pg.Group]
	if ids == nil {
		ids = map[string]map[TopicPartition]bool{}
		r.mu.byGroup[pg.Group] = ids
	}
	tps := ids[id]
	if tps == nil {
		tps = map[TopicPartition]bool{}
		ids[id] = tps
	}
	for tp := range pg.Offsets {
		tps[tp] = true
	}
}

// RemotePending returns, for group, each transactional id coordinated elsewhere that may
// still hold offsets for it, with those partitions (copies).
func (c *Coordinator) RemotePending(group string) map[string]map[TopicPartition]bool {
	r := &c.remote
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[TopicPartition]bool{}
	for id, tps := range r.mu.byGroup[group] {
		cp := make(map[TopicPartition]bool, len(tps))
		for tp := range tps {
			cp[tp] = true
		}
		out[id] = cp
	}
	return out
}

// ForgetRemotePending drops id's entry for group once its transaction was found closed.
func (c *Coordinator) ForgetRemotePending(group, id string) {
	r := &c.remote
	r.mu.Lock()
	defer r.mu.Unlock()
	if ids := r.mu.byGroup[group]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(r.mu.byGroup, group)
		}
	}
}

// RemotePendingCovers reports whether id was noted (NoteRemotePending) as holding offsets of
// every one of tps for group: offsets this broker checked against the group and passed on.
func (c *Coordinator) RemotePendingCovers(group, id string, tps []TopicPartition) bool {
	r := &c.remote
	r.mu.Lock()
	defer r.mu.Unlock()
	noted := r.mu.byGroup[group][id]
	if noted == nil {
		return false
	}
	for _, tp := range tps {
		if !noted[tp] {
			return false
		}
	}
	return true
}
