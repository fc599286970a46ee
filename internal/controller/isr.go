package controller

import (
	"slices"

	"github.com/poste-io/poste/internal/metadata"
)

// ISRChange is one partition of an AlterPartition request: the leader
// proposes NewISR for the partition state it knows (its epochs).
type ISRChange struct {
	TopicID        [16]byte
	Partition      int32
	LeaderEpoch    int32
	PartitionEpoch int32
	NewISR         []int32
}

// ISRResult is the outcome of one ISRChange.
type ISRResult struct {
	Partition metadata.Partition // the state after the change (or the current one on error)
	Err       error
}

// decideAlterPartition checks each change as Kafka's AlterPartition does and
// returns the records of the accepted ones. Checks, in order: the caller's
// registration and epoch; the partition exists; the caller leads it; its
// leader epoch and partition epoch are current; the new ISR is a set of
// replicas holding the leader; every added member is usable. An unchanged
// ISR is accepted without a record. An accepted change also completes the
// partition's reassignment when it brings the last adding replica in.
func decideAlterPartition(img *metadata.Image, o Options, brokerID int32, brokerEpoch int64, changes []ISRChange) ([]metadata.Record, []ISRResult, error) {
	results := make([]ISRResult, len(changes))
	var reqErr error
	switch b := img.Broker(brokerID); {
	case b == nil:
		reqErr = errorf(ErrBrokerNotRegistered, "Broker %d is not registered.", brokerID)
	case b.Epoch != brokerEpoch:
		reqErr = errorf(ErrStaleBrokerEpoch, "Broker %d has epoch %d; the request carries %d.", brokerID, b.Epoch, brokerEpoch)
	}
	type key struct {
		id [16]byte
		p  int32
	}
	count := map[key]int{}
	for _, ch := range changes {
		count[key{ch.TopicID, ch.Partition}]++
	}
	var recs []metadata.Record
	accepted := make([]bool, len(changes))
	for i, ch := range changes {
		cur := img.Partition(ch.TopicID, ch.Partition)
		if cur != nil {
			results[i].Partition = *cur
		}
		err := reqErr
		if err == nil {
			err = checkISRChange(img, brokerID, ch, cur, count[key{ch.TopicID, ch.Partition}] > 1)
		}
		if err != nil {
			results[i].Err = err
			continue
		}
		accepted[i] = true
		if sameSet(ch.NewISR, cur.ISR) {
			continue
		}
		t := img.TopicByID(ch.TopicID)
		pol := policyFor(img, o, t.Name)
		after := *cur
		setISR(&after, slices.Clone(ch.NewISR), pol.minISR)
		completeReassignment(img, &after, pol)
		if r, ok := changeRecord(t.ID, cur, &after); ok {
			recs = append(recs, r)
		}
	}
	if len(recs) == 0 {
		return nil, results, nil
	}
	next, err := img.Fold(img.AppliedIndex()+1, recs)
	if err != nil {
		return nil, nil, err
	}
	for i, ch := range changes {
		if accepted[i] {
			results[i].Partition = *next.Partition(ch.TopicID, ch.Partition)
		}
	}
	return recs, results, nil
}

func checkISRChange(img *metadata.Image, brokerID int32, ch ISRChange, cur *metadata.Partition, duplicate bool) error {
	switch {
	case img.TopicByID(ch.TopicID) == nil:
		return errorf(ErrUnknownTopicID, "Topic id %s does not exist.", metadata.UUIDString(ch.TopicID))
	case cur == nil:
		return errorf(ErrUnknownTopic, "Partition %d of topic id %s does not exist.", ch.Partition, metadata.UUIDString(ch.TopicID))
	case duplicate:
		return errorf(ErrInvalidRequest, "Partition %d appears more than once in the request.", ch.Partition)
	case cur.Leader != brokerID:
		return errorf(ErrNotLeaderOrFollower, "Broker %d is not the leader of partition %d; the leader is %d.", brokerID, ch.Partition, cur.Leader)
	case ch.LeaderEpoch < cur.LeaderEpoch:
		return errorf(ErrFencedLeaderEpoch, "Leader epoch %d of partition %d is older than the current %d.", ch.LeaderEpoch, ch.Partition, cur.LeaderEpoch)
	case ch.LeaderEpoch > cur.LeaderEpoch:
		return errorf(ErrNotLeaderOrFollower, "Leader epoch %d of partition %d is newer than the controller's %d.", ch.LeaderEpoch, ch.Partition, cur.LeaderEpoch)
	case ch.PartitionEpoch != cur.PartitionEpoch:
		return errorf(ErrInvalidUpdateVersion, "Partition epoch %d of partition %d is not the current %d.", ch.PartitionEpoch, ch.Partition, cur.PartitionEpoch)
	case !slices.Contains(ch.NewISR, cur.Leader):
		return errorf(ErrInvalidRequest, "The new ISR %v of partition %d does not contain its leader %d.", ch.NewISR, ch.Partition, cur.Leader)
	}
	for i, r := range ch.NewISR {
		if !slices.Contains(cur.Replicas, r) || slices.Contains(ch.NewISR[:i], r) {
			return errorf(ErrInvalidRequest, "The new ISR %v of partition %d is not a set of its replicas %v.", ch.NewISR, ch.Partition, cur.Replicas)
		}
		if !slices.Contains(cur.ISR, r) && !usable(img, r) {
			return errorf(ErrIneligibleReplica, "Broker %d cannot join the ISR of partition %d: it is fenced, in controlled shutdown or not registered.", r, ch.Partition)
		}
	}
	return nil
}
