package api

// TxnOffsetCommit (key 28), versions 0–5.
//   v1: no schema change.  v2: committed leader epoch.  v3: flexible; generation, member id
//   and instance id (KIP-447), checked against the group like an OffsetCommit's.
//   v4–v5: no schema change (KIP-890 error handling). v6 (topic ids) is not served.
// The offsets are kept with the transaction by its coordinator and become the group's
// committed offsets only when the transaction commits; an abort drops them.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/txn"
)

func init() { register(28, 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.TxnOffsetCommitRequest)
	answer := func(code int16) Response {
		resp := kmsg.NewPtrTxnOffsetCommitResponse()
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	if r.Group == "" {
		return answer(kerr.InvalidGroupID.Code), nil
	}
	pg := txn.PendingGroup{Group: r.Group, Generation: -1, Offsets: map[txn.TopicPartition]txn.Offset{}}
	if req.Version >= 3 {
		pg.MemberID, pg.Generation, pg.InstanceID = r.MemberID, r.Generation, r.InstanceID
	}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			o := txn.Offset{Offset: rp.Offset, LeaderEpoch: -1}
			if req.Version >= 2 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			pg.Offsets[txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}] = o
		}
	}
	// In a cluster the group's coordinator (this broker, where clients send TxnOffsetCommit)
	// checks the member, and the transaction's coordinator keeps the offsets until the
	// transaction ends: a request for a transaction coordinated elsewhere is passed on once
	// checked here, and one passed on to us is not checked again.
	node, addr, localTxn, ok := h.txnCoordinator(r.TransactionalID)
	if !ok {
		return answer(kerr.CoordinatorNotAvailable.Code), nil
	}
	localGroup := h.Peers == nil
	if gp, ok := h.Groups.PartitionFor(r.Group); ok && !localGroup {
		_, _, localGroup, _ = h.leaderOf(group.OffsetsTopic, gp)
	}
	if pg.Generation >= 0 && !localGroup && localTxn && !hasPeerTag(&r.UnknownTags, TagCheckedByPeer) {
		// Sent here by a client, not passed on by the group's coordinator: nobody checked
		// the member. As Kafka, only the group's coordinator takes it; the client finds it
		// again and retries there.
		return answer(kerr.NotCoordinator.Code), nil
	}
	var validate func() error
	if pg.Generation >= 0 && localGroup {
		// An empty commit checks the member and generation without writing anything.
		validate = awaitResult(func(cb func(error)) {
			h.Groups.Commit(group.CommitRequest{Group: r.Group, Generation: pg.Generation, MemberID: pg.MemberID,
				InstanceID: pg.InstanceID}, nil, func(err error, _ []error) { cb(err) })
		})
	}
	return DeferFunc(func() Response {
		if validate != nil {
			if err := validate(); err != nil {
				return answer(errCode(err))
			}
		}
		if !localTxn {
			ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
			defer cancel()
			if validate != nil {
				r.UnknownTags.Set(TagCheckedByPeer, nil)
			}
			kresp, err := h.Peers.Request(ctx, node, addr, r)
			if err != nil {
				return answer(kerr.CoordinatorNotAvailable.Code)
			}
			resp := kresp.(*kmsg.TxnOffsetCommitResponse)
			resp.SetVersion(req.Version)
			// This broker coordinates the group: remember that the transaction holds offsets
			// of it, for require_stable fetches (offsetfetch.go).
			h.Txns.NoteRemotePending(r.TransactionalID, pg)
			return resp
		}
		err := awaitResult(func(cb func(error)) {
			h.commitTxnOffsets(req.Version, r.TransactionalID, r.ProducerID, r.ProducerEpoch, pg, cb)
		})()
		code := errCode(err)
		if req.Version < 3 && code == kerr.ProducerFenced.Code {
			code = kerr.InvalidProducerEpoch.Code
		}
		return answer(code)
	}), nil
}
