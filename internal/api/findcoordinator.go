package api

// FindCoordinator (key 10), versions 0–5.
//   v1: coordinator type (0 group, 1 transaction), throttle time and an error message.
//   v2: no schema change.  v3: flexible.
//   v4: batched coordinator keys; the answer moves to a per-key list (KIP-699).
//   v5: no schema change (transactional ids may get TRANSACTIONAL_ID_NOT_FOUND, KIP-890).
// A group's coordinator is the leader of its __consumer_offsets partition. As in Kafka, the
// first request creates __consumer_offsets (offsets.topic.num.partitions, compacted) when it
// does not exist. A transactional id's coordinator is the leader of its __transaction_state
// partition (same formula), the topic created alike (transaction.state.log.num.partitions).

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/txn"
)

func init() { register(10, 0, 5, handleFindCoordinator) }

// offsetsTopicSegmentBytes is Kafka's offsets.topic.segment.bytes default.
const offsetsTopicSegmentBytes = "104857600"

func handleFindCoordinator(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.FindCoordinatorRequest)
	resp := kmsg.NewPtrFindCoordinatorResponse()
	keys := r.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{r.CoordinatorKey}
	}
	for _, key := range keys {
		c := h.findCoordinator(ctx, req, r.CoordinatorType, key)
		if req.Version < 4 {
			resp.ErrorCode, resp.ErrorMessage = c.ErrorCode, c.ErrorMessage
			resp.NodeID, resp.Host, resp.Port = c.NodeID, c.Host, c.Port
			break
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return resp, nil
}

func (h *Handlers) findCoordinator(ctx context.Context, req *Request, typ int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	c := kmsg.NewFindCoordinatorResponseCoordinator()
	c.Key, c.NodeID, c.Port = key, -1, -1
	fail := func(e *kerr.Error) kmsg.FindCoordinatorResponseCoordinator {
		c.ErrorCode = e.Code
		return c
	}
	if typ != 0 && typ != 1 {
		return fail(kerr.InvalidRequest)
	}
	if key == "" {
		return fail(kerr.InvalidRequest)
	}
	topic := group.OffsetsTopic
	ensure, partitionFor := h.ensureOffsetsTopic, h.Groups.PartitionFor
	if typ == 1 {
		if h.Txns == nil {
			return fail(kerr.CoordinatorNotAvailable)
		}
		topic, ensure, partitionFor = txn.StateTopic, h.ensureTxnTopic, h.Txns.PartitionFor
	}
	if err := ensure(ctx); err != nil {
		h.logReq(req).Warn("creating "+topic+" failed", "err", err)
		return fail(kerr.CoordinatorNotAvailable)
	}
	p, ok := partitionFor(key)
	t := h.Meta.Image().Topic(topic)
	if !ok || t == nil || int(p) >= len(t.Partitions) || t.Partitions[p].Leader < 0 {
		return fail(kerr.CoordinatorNotAvailable)
	}
	leader := t.Partitions[p].Leader
	if leader != h.Config.NodeID {
		// A cluster answers with the leader's endpoint on the same listener.
		b := h.Meta.Image().Broker(leader)
		if b == nil {
			return fail(kerr.CoordinatorNotAvailable)
		}
		for _, e := range b.Endpoints {
			if e.Name == req.Conn.Listener {
				c.NodeID, c.Host, c.Port = leader, e.Host, e.Port
				return c
			}
		}
		return fail(kerr.CoordinatorNotAvailable)
	}
	c.NodeID = leader
	c.Host, c.Port = h.advertised(req.Conn.Listener)
	return c
}

// ensureOffsetsTopic creates __consumer_offsets if it does not exist and waits until this
// broker's partitions and coordinator shards have seen it.
func (h *Handlers) ensureOffsetsTopic(ctx context.Context) error {
	if h.Meta.Image().Topic(group.OffsetsTopic) != nil {
		return nil
	}
	compact, seg, codec := "compact", offsetsTopicSegmentBytes, "producer"
	res := h.createTopics(ctx, []controller.TopicSpec{{
		Name:              group.OffsetsTopic,
		NumPartitions:     h.Config.OffsetsTopicNumPartitions,
		ReplicationFactor: h.Config.OffsetsTopicReplicationFactor,
		Configs:           map[string]*string{"cleanup.policy": &compact, "segment.bytes": &seg, "compression.type": &codec},
	}})
	if err := res[0].Err; err != nil && !errors.Is(err, controller.ErrTopicExists) {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.Meta.WaitDelivered(wctx, h.Meta.Image().AppliedIndex())
}

// ensureTxnTopic creates __transaction_state if it does not exist, like ensureOffsetsTopic.
func (h *Handlers) ensureTxnTopic(ctx context.Context) error {
	if h.Meta.Image().Topic(txn.StateTopic) != nil {
		return nil
	}
	compact, seg, codec := "compact", offsetsTopicSegmentBytes, "producer"
	res := h.createTopics(ctx, []controller.TopicSpec{{
		Name:              txn.StateTopic,
		NumPartitions:     h.Config.TransactionStateLogNumPartitions,
		ReplicationFactor: h.Config.TransactionStateLogReplicationFactor,
		Configs:           map[string]*string{"cleanup.policy": &compact, "segment.bytes": &seg, "compression.type": &codec},
	}})
	if err := res[0].Err; err != nil && !errors.Is(err, controller.ErrTopicExists) {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return h.Meta.WaitDelivered(wctx, h.Meta.Image().AppliedIndex())
}

// awaitResult starts an asynchronous call and returns a function that waits for its answer.
func awaitResult[T any](start func(cb func(T))) func() T {
	ch := make(chan T, 1)
	start(func(v T) { ch <- v })
	return func() T { return <-ch }
}

// clientHost renders a connection's peer address as Kafka does ("/127.0.0.1").
func clientHost(c ConnInfo) string {
	if c.RemoteAddr == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr.String())
	if err != nil {
		host = c.RemoteAddr.String()
	}
	return "/" + host
}

func msDuration(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func strPtr(s string) *string { return &s }
