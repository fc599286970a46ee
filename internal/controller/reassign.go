package controller

import (
	"errors"
	"slices"

	"github.com/poste-io/poste/internal/metadata"
)

// Partition reassignment (KIP-455). While a reassignment runs, Replicas is
// the target followed by the original replicas leaving it; AddingReplicas
// are the target members that were not replicas, RemovingReplicas the
// original ones not in the target. The new replicas catch up as followers
// and join the ISR through AlterPartition; once every adding replica is in
// the ISR (and the target holds a leader), one change makes Replicas the
// target. Cancelling reverts to the original replicas.

// TopicPartition names a partition by topic name.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// PartitionResult is the outcome for one partition of ElectLeaders or
// AlterReassignments.
type PartitionResult struct {
	Topic     string
	Partition int32
	Err       error
}

// Reassignment asks to move a partition to Replicas; nil Replicas cancels
// the ongoing reassignment.
type Reassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
}

// OngoingReassignment is a reassignment in progress, as ListReassignments
// reports it.
type OngoingReassignment struct {
	Topic     string
	Partition int32
	Replicas  []int32
	Adding    []int32
	Removing  []int32
}

// completeReassignment finishes p's reassignment when every adding replica
// is in the ISR and the target's ISR members include the leader or a usable
// broker to replace it. It reports whether it did.
func completeReassignment(img *metadata.Image, p *metadata.Partition, pol policy) bool {
	if !p.Reassigning() {
		return false
	}
	for _, a := range p.AddingReplicas {
		if !slices.Contains(p.ISR, a) {
			return false
		}
	}
	target := p.TargetReplicas()
	isr := intersect(p.ISR, target)
	if len(isr) == 0 {
		return false
	}
	leader := p.Leader
	if leader != metadata.NoLeader && !slices.Contains(target, leader) {
		if leader = firstUsable(img, target, isr, -1); leader == metadata.NoLeader {
			return false
		}
	}
	p.Replicas = target
	setISR(p, isr, pol.minISR)
	p.ELR = nilIfEmpty(intersect(p.ELR, target))
	p.LastKnownELR = nilIfEmpty(intersect(p.LastKnownELR, target))
	p.AddingReplicas, p.RemovingReplicas = nil, nil
	setLeader(p, leader)
	return true
}

// decideAlterReassignments starts, replaces or cancels reassignments; one
// result per request, in order.
func decideAlterReassignments(img *metadata.Image, o Options, reqs []Reassignment) ([]metadata.Record, []PartitionResult) {
	results := make([]PartitionResult, len(reqs))
	count := map[TopicPartition]int{}
	for _, r := range reqs {
		count[TopicPartition{r.Topic, r.Partition}]++
	}
	var recs []metadata.Record
	for i, r := range reqs {
		results[i] = PartitionResult{Topic: r.Topic, Partition: r.Partition}
		if count[TopicPartition{r.Topic, r.Partition}] > 1 {
			results[i].Err = errorf(ErrInvalidRequest, "Partition %s-%d appears more than once in the request.", r.Topic, r.Partition)
			continue
		}
		rec, err := decideOneReassignment(img, o, r)
		if err != nil {
			results[i].Err = err
			continue
		}
		if rec != nil {
			recs = append(recs, rec)
		}
	}
	return recs, results
}

func decideOneReassignment(img *metadata.Image, o Options, r Reassignment) (metadata.Record, error) {
	t := img.Topic(r.Topic)
	if t == nil || r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return nil, errorf(ErrUnknownTopic, "Partition %s-%d does not exist.", r.Topic, r.Partition)
	}
	cur := &t.Partitions[r.Partition]
	pol := policyFor(img, o, t.Name)
	original := minus(cur.Replicas, cur.AddingReplicas)
	after := *cur
	if r.Replicas == nil {
		if !cur.Reassigning() {
			return nil, errorf(ErrNoReassignmentInProgress, "Partition %s-%d has no reassignment in progress.", r.Topic, r.Partition)
		}
		if err := moveTo(img, &after, original, original, pol); err != nil {
			return nil, err
		}
	} else {
		target := r.Replicas
		if len(target) == 0 {
			return nil, errorf(ErrInvalidReplicaAssignment, "The target replicas of partition %s-%d are empty.", r.Topic, r.Partition)
		}
		for i, b := range target {
			if slices.Contains(target[:i], b) {
				return nil, errorf(ErrInvalidReplicaAssignment, "The target replicas of partition %s-%d list broker %d more than once.", r.Topic, r.Partition, b)
			}
			if img.Broker(b) == nil {
				return nil, errorf(ErrInvalidReplicaAssignment, "The target replicas of partition %s-%d list broker %d, which is not registered.", r.Topic, r.Partition, b)
			}
		}
		replicas := append(slices.Clone(target), minus(original, target)...)
		if err := moveTo(img, &after, replicas, target, pol); err != nil {
			return nil, err
		}
		after.AddingReplicas = nilIfEmpty(minus(target, original))
		after.RemovingReplicas = nilIfEmpty(minus(original, target))
		completeReassignment(img, &after, pol)
	}
	rec, ok := changeRecord(t.ID, cur, &after)
	if !ok {
		return nil, nil
	}
	return rec, nil
}

// moveTo sets p's replicas, keeps ISR and ELR within them and elects a new
// leader (preferring the target order) if the current one is dropped.
func moveTo(img *metadata.Image, p *metadata.Partition, replicas, target []int32, pol policy) error {
	isr := intersect(p.ISR, replicas)
	if len(isr) == 0 {
		return errorf(ErrInvalidReplicaAssignment, "Moving partition %d to replicas %v would leave it without an in-sync replica.", p.ID, replicas)
	}
	p.Replicas = replicas
	setISR(p, isr, pol.minISR)
	p.ELR = nilIfEmpty(intersect(p.ELR, replicas))
	p.LastKnownELR = nilIfEmpty(intersect(p.LastKnownELR, replicas))
	p.AddingReplicas, p.RemovingReplicas = nil, nil
	if p.Leader != metadata.NoLeader && !slices.Contains(replicas, p.Leader) {
		l := firstUsable(img, target, isr, -1)
		if l == metadata.NoLeader {
			l = firstUsable(img, replicas, isr, -1)
		}
		setLeader(p, l)
	}
	return nil
}

// decideCompleteReassignments completes every reassignment that can.
func decideCompleteReassignments(img *metadata.Image, o Options) []metadata.Record {
	var recs []metadata.Record
	for _, t := range img.Topics() {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if !p.Reassigning() {
				continue
			}
			after := *p
			if completeReassignment(img, &after, policyFor(img, o, t.Name)) {
				if r, ok := changeRecord(t.ID, p, &after); ok {
					recs = append(recs, r)
				}
			}
		}
	}
	return recs
}

// listReassignments reports the ongoing reassignments of parts (nil: all),
// by topic name then partition. Partitions that do not exist or have no
// reassignment are left out.
func listReassignments(img *metadata.Image, parts []TopicPartition) []OngoingReassignment {
	var out []OngoingReassignment
	add := func(t *metadata.Topic, i int32) {
		p := &t.Partitions[i]
		if p.Reassigning() {
			out = append(out, OngoingReassignment{Topic: t.Name, Partition: i, Replicas: slices.Clone(p.Replicas),
				Adding: slices.Clone(p.AddingReplicas), Removing: slices.Clone(p.RemovingReplicas)})
		}
	}
	if parts == nil {
		for _, t := range img.Topics() {
			for i := range t.Partitions {
				add(t, int32(i))
			}
		}
		return out
	}
	for _, tp := range parts {
		if t := img.Topic(tp.Topic); t != nil && tp.Partition >= 0 && int(tp.Partition) < len(t.Partitions) {
			add(t, tp.Partition)
		}
	}
	return out
}

// decideElectLeaders runs preferred or unclean elections (ElectLeaders).
// Preferred: the first replica leads if it is a usable ISR member. Unclean:
// only a leaderless partition, by the election rules with rule 4 allowed.
// nil parts means every partition; then partitions needing no election are
// left out of the results, as Kafka does.
func decideElectLeaders(img *metadata.Image, o Options, unclean bool, parts []TopicPartition) ([]metadata.Record, []PartitionResult) {
	all := parts == nil
	if all {
		for _, t := range img.Topics() {
			for i := range t.Partitions {
				parts = append(parts, TopicPartition{Topic: t.Name, Partition: int32(i)})
			}
		}
	}
	var recs []metadata.Record
	var results []PartitionResult
	seen := map[TopicPartition]bool{}
	for _, tp := range parts {
		if seen[tp] {
			continue
		}
		seen[tp] = true
		res := PartitionResult{Topic: tp.Topic, Partition: tp.Partition}
		t := img.Topic(tp.Topic)
		if t == nil || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			res.Err = errorf(ErrUnknownTopic, "Partition %s-%d does not exist.", tp.Topic, tp.Partition)
			results = append(results, res)
			continue
		}
		cur := &t.Partitions[tp.Partition]
		after := *cur
		if unclean {
			if cur.Leader != metadata.NoLeader {
				res.Err = errorf(ErrElectionNotNeeded, "Partition %s-%d has a leader.", tp.Topic, tp.Partition)
			} else if elect(img, &after, policyFor(img, o, t.Name), true); after.Leader == metadata.NoLeader {
				res.Err = errorf(ErrEligibleLeadersNotAvailable, "No replica of partition %s-%d is available to lead it.", tp.Topic, tp.Partition)
			}
		} else {
			pref := cur.Replicas[0]
			switch {
			case cur.Leader == pref:
				res.Err = errorf(ErrElectionNotNeeded, "Broker %d, the preferred replica, already leads partition %s-%d.", pref, tp.Topic, tp.Partition)
			case !slices.Contains(cur.ISR, pref) || !usable(img, pref):
				res.Err = errorf(ErrPreferredLeaderNotAvailable, "The preferred replica %d of partition %s-%d is not an available in-sync replica.", pref, tp.Topic, tp.Partition)
			default:
				setLeader(&after, pref)
			}
		}
		if res.Err == nil {
			if r, ok := changeRecord(t.ID, cur, &after); ok {
				recs = append(recs, r)
			}
		}
		if all && res.Err != nil && errors.Is(res.Err, ErrElectionNotNeeded) {
			continue
		}
		results = append(results, res)
	}
	return recs, results
}
