package api

// The parts of Fetch that depend on replication: which replica serves a fetch, follower
// fetches at the leader (ISR tracking, diverging epochs), and consumers fetching from a
// follower in their rack (KIP-392).

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/metadata"
	"github.com/poste-io/poste/internal/partition"
)

// checkRole decides whether this replica of the partition serves the fetch. A follower's
// fetch must reach the leader; a consumer's too, except from v11 on, when a follower serves
// consumers up to its own high watermark (the leader points rack-aware consumers at it with
// a preferred read replica). It may fill fp's preferred read replica or diverging epoch.
func (f *fetch) checkRole(img *metadata.Image, topic string, p *partition.Partition, fp *fetchPart, rp *kmsg.FetchRequestTopicPartition) int16 {
	if f.replica >= 0 {
		if !p.IsLeader() {
			return kerr.NotLeaderForPartition.Code
		}
		if t := img.Topic(topic); t == nil || int(fp.partition) >= len(t.Partitions) ||
			!slices.Contains(t.Partitions[fp.partition].Replicas, f.replica) {
			return kerr.NotLeaderForPartition.Code
		}
		if f.version >= 12 && rp.LastFetchedEpoch >= 0 {
			epoch, end, err := p.EndOffsetForEpoch(rp.LastFetchedEpoch)
			if err != nil {
				return errCode(err)
			}
			if epoch < rp.LastFetchedEpoch || end < rp.FetchOffset {
				fp.diverging = &divergingEpoch{epoch: epoch, end: end}
				fp.hw, fp.lso0 = p.HighWatermark(), p.LogStartOffset()
			}
		}
		return 0
	}
	if !p.IsLeader() {
		if f.version < 11 {
			return kerr.NotLeaderForPartition.Code
		}
		return 0
	}
	if f.h.Config.RackAwareReplicaSelector && f.req.Rack != "" {
		if id, ok := preferredReplica(img, topic, fp.partition, f.req.Rack, f.h.Config.NodeID); ok {
			fp.hasPreferred, fp.preferred = true, id
			fp.hw, fp.lso, fp.lso0 = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
		}
	}
	return 0
}

// preferredReplica is Kafka's rack-aware selection: an in-sync, unfenced replica in the
// client's rack other than this leader, if there is one (the leader itself when it is in
// that rack).
func preferredReplica(img *metadata.Image, topic string, partition int32, rack string, self int32) (int32, bool) {
	t := img.Topic(topic)
	if t == nil || int(partition) >= len(t.Partitions) {
		return 0, false
	}
	if b := img.Broker(self); b != nil && b.Rack != nil && *b.Rack == rack {
		return 0, false
	}
	mp := &t.Partitions[partition]
	for _, id := range mp.ISR {
		b := img.Broker(id)
		if id != self && b != nil && !b.Fenced && b.Rack != nil && *b.Rack == rack {
			return id, true
		}
	}
	return 0, false
}

// followerFetched records a follower's position (its fetch offset is its log end offset)
// and returns the high watermark to send it.
func (f *fetch) followerFetched(p *partition.Partition, rp *kmsg.FetchRequestTopicPartition) int64 {
	hw, err := p.FollowerFetch(f.replica, rp.FetchOffset, f.now())
	if err != nil {
		return p.HighWatermark()
	}
	return hw
}
