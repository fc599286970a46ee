package api

// OffsetFetch (key 9), versions 0–9.
//   v1: no schema change (v0 read ZooKeeper offsets in Kafka; Poste has only one store).
//   v2: a null topic list fetches every committed partition; a top-level error code.
//   v3: throttle time.  v5: leader epoch per partition.  v6: flexible.
//   v7: require_stable (KIP-447): a partition for which a transaction coordinated by this
//   broker holds an offset not yet settled (committed to the group or dropped) answers
//   UNSTABLE_OFFSET_COMMIT with offset -1; the client retries. Without it the last
//   committed offset is answered. With a null topic list only committed partitions are
//   checked, as in Kafka.
//   v8: several groups per request (KIP-709).  v9: member id and epoch for KIP-848 groups
//   (not checked for classic groups).
// A partition without a commit answers offset -1, leader epoch -1, empty metadata.

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/txn"
)

func init() { register(9, 0, 9, handleOffsetFetch) }

// fetchGroup is one group of an OffsetFetch request: its topics (nil: all).
type fetchGroup struct {
	name   string
	topics []kmsg.OffsetFetchRequestGroupTopic
	all    bool
	// unstable holds the partitions with unsettled transactional offsets, when asked.
	unstable map[txn.TopicPartition]bool
}

// fetchedTopic is one topic of an answer.
type fetchedTopic struct {
	topic string
	parts []kmsg.OffsetFetchResponseGroupTopicPartition
}

func handleOffsetFetch(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.OffsetFetchRequest)
	var groups []fetchGroup
	if req.Version < 8 {
		fg := fetchGroup{name: r.Group, all: r.Topics == nil && req.Version >= 2}
		for _, t := range r.Topics {
			fg.topics = append(fg.topics, kmsg.OffsetFetchRequestGroupTopic{Topic: t.Topic, Partitions: t.Partitions})
		}
		groups = append(groups, fg)
	} else {
		for _, g := range r.Groups {
			groups = append(groups, fetchGroup{name: g.Group, topics: g.Topics, all: g.Topics == nil})
		}
	}
	if req.Version >= 7 && r.RequireStable && h.Txns != nil {
		// Taken before the group's offsets are read: the view drops an offset only after the
		// group has it, so a partition found settled here is read with its new offset.
		for i := range groups {
			groups[i].unstable = h.Txns.PendingOffsets(groups[i].name)
			for tp := range h.remoteUnstable(groups[i].name) {
				if groups[i].unstable == nil {
					groups[i].unstable = map[txn.TopicPartition]bool{}
				}
				groups[i].unstable[tp] = true
			}
		}
	}
	waits := make([]func() group.FetchResult, len(groups))
	for i, fg := range groups {
		var tps []group.TopicPartition
		if !fg.all {
			tps = []group.TopicPartition{}
			for _, t := range fg.topics {
				for _, p := range t.Partitions {
					tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
				}
			}
		}
		waits[i] = awaitResult(func(cb func(group.FetchResult)) { h.Groups.Fetch(fg.name, tps, cb) })
	}
	version := req.Version
	return DeferFunc(func() Response {
		resp := kmsg.NewPtrOffsetFetchResponse()
		for i, fg := range groups {
			res := waits[i]()
			topics := fetchAnswer(fg, res)
			if version < 8 {
				resp.ErrorCode = errCode(res.Err)
				for _, t := range topics {
					rt := kmsg.NewOffsetFetchResponseTopic()
					rt.Topic = t.topic
					for _, p := range t.parts {
						rp := kmsg.NewOffsetFetchResponseTopicPartition()
						rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata, rp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
						if version < 2 && res.Err != nil {
							rp.ErrorCode = errCode(res.Err)
						}
						rt.Partitions = append(rt.Partitions, rp)
					}
					resp.Topics = append(resp.Topics, rt)
				}
				continue
			}
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = fg.name
			rg.ErrorCode = errCode(res.Err)
			for _, t := range topics {
				rt := kmsg.NewOffsetFetchResponseGroupTopic()
				rt.Topic, rt.Partitions = t.topic, t.parts
				rg.Topics = append(rg.Topics, rt)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}), nil
}

// fetchAnswer renders a group's offsets in request order (or topic, partition order for all).
func fetchAnswer(fg fetchGroup, res group.FetchResult) []fetchedTopic {
	part := func(tp group.TopicPartition) kmsg.OffsetFetchResponseGroupTopicPartition {
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch, p.Metadata = tp.Partition, -1, -1, strPtr("")
		if fg.unstable[txn.TopicPartition{Topic: tp.Topic, Partition: tp.Partition}] {
			p.ErrorCode = kerr.UnstableOffsetCommit.Code
			return p
		}
		if o, ok := res.Offsets[tp]; ok {
			p.Offset, p.LeaderEpoch, p.Metadata = o.Offset, o.LeaderEpoch, strPtr(o.Metadata)
		}
		return p
	}
	var out []fetchedTopic
	if fg.all {
		if res.Err != nil {
			return nil
		}
		tps := make([]group.TopicPartition, 0, len(res.Offsets))
		for tp := range res.Offsets {
			tps = append(tps, tp)
		}
		sort.Slice(tps, func(i, j int) bool {
			if tps[i].Topic != tps[j].Topic {
				return tps[i].Topic < tps[j].Topic
			}
			return tps[i].Partition < tps[j].Partition
		})
		for _, tp := range tps {
			if len(out) == 0 || out[len(out)-1].topic != tp.Topic {
				out = append(out, fetchedTopic{topic: tp.Topic})
			}
			out[len(out)-1].parts = append(out[len(out)-1].parts, part(tp))
		}
		return out
	}
	for _, t := range fg.topics {
		ft := fetchedTopic{topic: t.Topic}
		for _, p := range t.Partitions {
			ft.parts = append(ft.parts, part(group.TopicPartition{Topic: t.Topic, Partition: p}))
		}
		out = append(out, ft)
	}
	return out
}
