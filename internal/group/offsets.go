package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// CommitOffset is one partition's offset in a commit.
type CommitOffset struct {
	TopicPartition
	Offset
}

// Commit handles an OffsetCommit request; cb gets one error per offset (nil for success),
// or a group error, once the records are committed.
func (s *Shard) Commit(now time.Time, req CommitRequest, offsets []CommitOffset, cb func(error, []error)) coord.Result {
	if req.Group == "" {
		cb(ErrInvalidGroupID, nil)
		return coord.Result{}
	}
	g := s.groups[req.Group]
	created := false
	if g == nil {
		if req.Generation >= 0 && !req.Transactional {
			// A member of a generation this coordinator does not know.
			cb(ErrIllegalGeneration, nil)
			return coord.Result{}
		}
		// A commit from outside group management (kadm, a simple consumer).
		g = newGroup(req.Group, now)
		s.groups[req.Group] = g
		created = true
	} else {
		switch {
		case g.state == Dead:
			cb(ErrCoordinatorNotAvail, nil)
			return coord.Result{}
		case req.Transactional:
		case g.cg != nil:
			if err := commitCheckConsumer(g, req, offsets); err != nil {
				cb(err, nil)
				return coord.Result{}
			}
		case req.Generation < 0 && g.state == Empty:
		default:
			m, err := checkMember(g, req.MemberID, req.InstanceID, req.Generation)
			if err == nil && g.state == CompletingRebalance {
				err = ErrRebalanceInProgress
			}
			if err != nil {
				cb(err, nil)
				return coord.Result{}
			}
			s.scheduleHeartbeat(g, m, now)
		}
	}
	errs := make([]error, len(offsets))
	var recs []coord.Record
	var written []int
	for i := range offsets {
		o := &offsets[i]
		if len(o.Metadata) > s.cfg.MaxMetadataBytes {
			errs[i] = ErrMetadataTooLarge
			continue
		}
		o.CommitTime = now.UnixMilli()
		recs = append(recs, offsetRecord(g.id, o.TopicPartition, o.Offset))
		written = append(written, i)
	}
	if len(recs) == 0 {
		if created {
			delete(s.groups, g.id)
		}
		cb(nil, errs)
		return coord.Result{}
	}
	return coord.Result{Records: recs, Done: func(err error) {
		if err != nil {
			for _, i := range written {
				errs[i] = err
			}
			if created && s.groups[g.id] == g && len(g.offsets) == 0 && len(g.members) == 0 && len(g.pending) == 0 {
				delete(s.groups, g.id)
			}
			cb(nil, errs)
			return
		}
		for _, i := range written {
			g.offsets[offsets[i].TopicPartition] = offsets[i].Offset
		}
		cb(nil, errs)
	}}
}

// Fetch returns a group's committed offsets: of the listed partitions, or all when tps is nil.
func (s *Shard) Fetch(groupID string, tps []TopicPartition) FetchResult {
	res := FetchResult{Offsets: map[TopicPartition]Offset{}}
	g := s.groups[groupID]
	if g == nil {
		return res
	}
	if tps == nil {
		for tp, o := range g.offsets {
			res.Offsets[tp] = o
		}
		return res
	}
	for _, tp := range tps {
		if o, ok := g.offsets[tp]; ok {
			res.Offsets[tp] = o
		}
	}
	return res
}

// subscribedTopics returns the topics the members of a consumer group subscribe to.
func subscribedTopics(g *group) map[string]bool {
	out := map[string]bool{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			continue
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out
}

// DeleteOffsets handles an OffsetDelete request: cb gets a group error or one error per
// partition. Offsets of topics the group's members subscribe to stay.
func (s *Shard) DeleteOffsets(groupID string, tps []TopicPartition, cb func(error, []error)) coord.Result {
	g := s.groups[groupID]
	if g == nil || g.state == Dead {
		cb(ErrGroupNotFound, nil)
		return coord.Result{}
	}
	var subscribed map[string]bool
	if g.cg != nil && len(g.cg.members) > 0 {
		subscribed = consumerSubscribed(g.cg)
	} else if g.state != Empty {
		if g.protocolType != "consumer" {
			cb(ErrNonEmptyGroup, nil)
			return coord.Result{}
		}
		subscribed = subscribedTopics(g)
	}
	errs := make([]error, len(tps))
	var recs []coord.Record
	var gone []TopicPartition
	var idx []int
	for i, tp := range tps {
		if subscribed[tp.Topic] {
			errs[i] = ErrSubscribedToTopic
			continue
		}
		if _, ok := g.offsets[tp]; ok {
			recs = append(recs, coord.Record{Key: offsetKey(g.id, tp)})
			gone = append(gone, tp)
			idx = append(idx, i)
		}
	}
	if len(recs) == 0 {
		cb(nil, errs)
		return coord.Result{}
	}
	return coord.Result{Records: recs, Done: func(err error) {
		if err != nil {
			for _, i := range idx {
				errs[i] = err
			}
		} else {
			for _, tp := range gone {
				delete(g.offsets, tp)
			}
		}
		cb(nil, errs)
	}}
}

// Describe returns a group as DescribeGroups shows it; an unknown group is Dead.
func (s *Shard) Describe(groupID string) Description {
	g := s.groups[groupID]
	if g == nil || g.cg != nil {
		// DescribeGroups shows classic groups only, as in Kafka; a consumer group is described
		// by ConsumerGroupDescribe.
		return Description{Group: groupID, State: Dead}
	}
	d := Description{Group: g.id, State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol}
	for _, id := range g.order {
		m := g.members[id]
		md := MemberDescription{MemberID: m.id, ClientID: m.clientID, ClientHost: m.host, InstanceID: m.instanceID}
		if g.state == Stable {
			md.Metadata, md.Assignment = m.metadataFor(g.protocol), m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

// List returns every group of the shard.
func (s *Shard) List() []Listing {
	out := make([]Listing, 0, len(s.groups))
	for _, g := range s.groups {
		if g.cg != nil {
			out = append(out, Listing{Group: g.id, ProtocolType: "consumer", Type: "consumer", ConsumerState: g.cg.state()})
			continue
		}
		out = append(out, Listing{Group: g.id, ProtocolType: g.protocolType, State: g.state, Type: "classic"})
	}
	return out
}

// Delete handles one group of a DeleteGroups request: an empty group and its offsets go.
func (s *Shard) Delete(groupID string, cb func(error)) coord.Result {
	g := s.groups[groupID]
	switch {
	case g == nil || g.state == Dead:
		cb(ErrGroupNotFound)
		return coord.Result{}
	case g.state != Empty || (g.cg != nil && len(g.cg.members) > 0):
		cb(ErrNonEmptyGroup)
		return coord.Result{}
	}
	recs := make([]coord.Record, 0, len(g.offsets)+2)
	for _, tp := range sortedTPs(g.offsets) {
		recs = append(recs, coord.Record{Key: offsetKey(g.id, tp)})
	}
	cg := g.cg
	if cg != nil {
		recs = append(recs, s.dropConsumerGroup(g)...)
	} else {
		recs = append(recs, groupTombstone(g.id))
	}
	delete(s.groups, g.id)
	g.state = Dead
	s.timers.Cancel(joinKey(g.id))
	return coord.Result{Records: recs, Done: func(err error) {
		if err != nil && s.groups[g.id] == nil {
			g.state = Empty
			g.cg = cg
			s.groups[g.id] = g
		} else if err == nil {
			g.offsets = map[TopicPartition]Offset{}
		}
		cb(err)
	}}
}

func sortedTPs(m map[TopicPartition]Offset) []TopicPartition {
	out := make([]TopicPartition, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// retentionCheck expires the offsets of empty groups (offsets.retention.minutes): all of
// them once a group with a protocol has been empty that long, each one that long after its
// commit for a group never managed by the coordinator; an empty group left with nothing is
// deleted. It reschedules itself.
func (s *Shard) retentionCheck(now time.Time) coord.Result {
	s.timers.Schedule(retentionKey, now.Add(s.cfg.RetentionCheck), s.retentionCheck)
	if s.cfg.OffsetsRetention <= 0 {
		return coord.Result{}
	}
	ids := make([]string, 0, len(s.groups))
	for id, g := range s.groups {
		if g.state == Empty && (g.cg == nil || len(g.cg.members) == 0) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	var recs []coord.Record
	for _, id := range ids {
		g := s.groups[id]
		for _, tp := range sortedTPs(g.offsets) {
			base := time.UnixMilli(g.offsets[tp].CommitTime)
			if g.protocolType != "" {
				base = g.stateTime
			} else if g.cg != nil {
				base = g.cg.stateTime
			}
			if !now.Before(base.Add(s.cfg.OffsetsRetention)) {
				recs = append(recs, coord.Record{Key: offsetKey(id, tp)})
				delete(g.offsets, tp)
			}
		}
		if len(g.offsets) == 0 && len(g.pending) == 0 {
			if g.cg != nil {
				recs = append(recs, s.dropConsumerGroup(g)...)
			}
			if g.stored {
				recs = append(recs, groupTombstone(id))
			}
			delete(s.groups, id)
			g.state = Dead
		}
	}
	return coord.Result{Records: recs}
}
