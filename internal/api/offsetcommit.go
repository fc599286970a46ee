package api

// OffsetCommit (key 8), versions 0–9.
//   v0: group and offsets only (Poste stores them like any commit from outside a generation).
//   v1: generation and member id; a per-partition commit timestamp (ignored, as in Kafka 4).
//   v2–v4: retention time (ignored: offsets.retention.minutes applies, as in Kafka 2.1+).
//   v3: throttle time.  v5: retention time removed.  v6: leader epoch per partition.
//   v7: group.instance.id (KIP-345).  v8: flexible.  v9: no schema change (KIP-848 members
//   use it with their epoch; classic groups only here).
// The answer is sent once the offsets' records are committed in __consumer_offsets.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/txn"
)

func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.OffsetCommitRequest)
	cr := group.CommitRequest{Group: r.Group, Generation: r.Generation, MemberID: r.MemberID}
	if req.Version == 0 {
		cr.Generation, cr.MemberID = -1, ""
	}
	if req.Version >= 7 {
		cr.InstanceID = r.InstanceID
	}
	img := h.Meta.Image()
	resp := kmsg.NewPtrOffsetCommitResponse()
	// where[i] points at the response partition of offsets[i].
	var offsets []group.CommitOffset
	var where []*kmsg.OffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(r.Topics))
	for i, rt := range r.Topics {
		st := &resp.Topics[i]
		*st = kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		t := img.Topic(rt.Topic)
		for j, rp := range rt.Partitions {
			sp := &st.Partitions[j]
			*sp = kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			if t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			}
			o := group.CommitOffset{TopicPartition: group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition},
				Offset: group.Offset{Offset: rp.Offset, LeaderEpoch: -1}}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			offsets = append(offsets, o)
			where = append(where, sp)
		}
	}
	if len(offsets) == 0 {
		return resp, nil
	}
	if id, ok := peerTag(&r.UnknownTags, TagTxnOffsetsOf); ok && h.Txns != nil {
		tps := make([]txn.TopicPartition, len(offsets))
		for i, o := range offsets {
			tps[i] = txn.TopicPartition{Topic: o.Topic, Partition: o.Partition}
		}
		cr.Transactional = h.Txns.RemotePendingCovers(r.Group, string(id), tps)
	}
	type answer struct {
		err  error
		errs []error
	}
	wait := awaitResult(func(cb func(answer)) {
		h.Groups.Commit(cr, offsets, func(err error, errs []error) { cb(answer{err, errs}) })
	})
	return DeferFunc(func() Response {
		a := wait()
		for i, sp := range where {
			switch {
			case a.err != nil:
				sp.ErrorCode = errCode(a.err)
			case i < len(a.errs):
				sp.ErrorCode = errCode(a.errs[i])
			}
		}
		return resp
	}), nil
}
