package api

// Metadata (key 3), versions 0–12.
//   v0: brokers, topics, partitions; an empty topic list means all topics.
//   v1: controller id, rack, is_internal; a null topic list means all topics, empty means none.
//   v2: cluster id.  v4: allow_auto_topic_creation (earlier versions always allow).
//   v5: offline replicas.  v7: leader epoch.  v8: authorized operations.
//   v9: flexible.  v10: topic ids (request topics may be named by id).
//   v11: cluster authorized operations removed.  v12: topic name nullable in requests.
// Auto-creation follows Kafka: an unknown topic is created with the broker defaults when
// auto.create.topics.enable is on and the request allows it; the first answer for it is
// LEADER_NOT_AVAILABLE, and clients retry.

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/metadata"
)

func init() { register(3, 0, 12, handleMetadata) }

// authorizedOpsAll is the bit set of every topic operation Kafka defines (READ … DESCRIBE_CONFIGS,
// ALTER_CONFIGS): Poste has no authorization yet, so every operation is allowed.
const topicOpsAll = int32(1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11)
const clusterOpsAll = int32(1<<4 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12)

// notRequestedOps is what Kafka sends when authorized operations were not asked for.
const notRequestedOps = int32(-2147483648)

func isInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

func handleMetadata(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.MetadataRequest)
	resp := kmsg.NewPtrMetadataResponse()
	img := h.Meta.Image()

	resp.Brokers = h.brokers(img, req.Conn.Listener)
	cid := img.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = h.controllerID(img)
	resp.AuthorizedOperations = notRequestedOps
	if r.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOpsAll
	}

	all := r.Topics == nil || (req.Version == 0 && len(r.Topics) == 0)
	if all {
		for _, t := range img.Topics() {
			resp.Topics = append(resp.Topics, h.describeTopic(img, t, r.IncludeTopicAuthorizedOperations))
		}
		return resp, nil
	}

	autoCreate := h.Config.AutoCreateTopics && (req.Version < 4 || r.AllowAutoTopicCreation)
	var create []controller.TopicSpec
	for _, rt := range r.Topics {
		var t *metadata.Topic
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			t = img.Topic(*rt.Topic)
		case rt.TopicID != [16]byte{}:
			t = img.TopicByID(rt.TopicID)
			if t == nil {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				mt.AuthorizedOperations = notRequestedOps
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		default:
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.ErrorCode = kerr.InvalidTopicException.Code
			mt.AuthorizedOperations = notRequestedOps
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		if t != nil {
			resp.Topics = append(resp.Topics, h.describeTopic(img, t, r.IncludeTopicAuthorizedOperations))
			continue
		}
		name := *rt.Topic
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = &name
		mt.AuthorizedOperations = notRequestedOps
		mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
		if autoCreate && !isInternalTopic(name) {
			create = append(create, controller.TopicSpec{Name: name, NumPartitions: -1, ReplicationFactor: -1})
		}
		resp.Topics = append(resp.Topics, mt)
	}
	if len(create) > 0 {
		results := h.createTopics(ctx, create)
		byName := make(map[string]controller.TopicResult, len(results))
		for _, res := range results {
			byName[res.Name] = res
		}
		for i := range resp.Topics {
			mt := &resp.Topics[i]
			if mt.Topic == nil {
				continue
			}
			res, ok := byName[*mt.Topic]
			if !ok {
				continue
			}
			switch {
			case res.Err == nil, errors.Is(res.Err, controller.ErrTopicExists):
				mt.ErrorCode = kerr.LeaderNotAvailable.Code
				mt.TopicID = res.ID
			case errors.Is(res.Err, controller.ErrInvalidTopic):
				mt.ErrorCode = kerr.InvalidTopicException.Code
			default:
				h.logReq(req).Warn("auto-creating topic failed", "topic", *mt.Topic, "err", res.Err)
				mt.ErrorCode = errCode(res.Err)
			}
		}
	}
	return resp, nil
}

// describeTopic renders one topic of the image.
func (h *Handlers) describeTopic(img *metadata.Image, t *metadata.Topic, withOps bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = isInternalTopic(t.Name) || strings.HasPrefix(t.Name, "__cluster_metadata")
	mt.AuthorizedOperations = notRequestedOps
	if withOps {
		mt.AuthorizedOperations = topicOpsAll
	}
	for _, p := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = p.ID
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		mp.OfflineReplicas = offlineReplicas(img, p.Replicas)
		if p.Leader < 0 || p.Leader != h.Config.NodeID && h.Replicas.LeaderUnreachable(p.Leader) {
			// A leader this broker's fetches cannot reach is most likely dead and about to be
			// replaced: LEADER_NOT_AVAILABLE makes clients ask again shortly instead of
			// waiting out their metadata age on a stale answer.
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		if _, err := h.Replicas.Get(t.Name, p.ID); err != nil && p.Leader == h.Config.NodeID {
			// Hosted here but its log is offline, or not opened yet.
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
			if errCode(err) == kerr.KafkaStorageError.Code {
				mp.ErrorCode = kerr.KafkaStorageError.Code
				if !slices.Contains(mp.OfflineReplicas, h.Config.NodeID) {
					mp.OfflineReplicas = append(mp.OfflineReplicas, h.Config.NodeID)
				}
			}
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}

// brokers lists the live (registered, unfenced) brokers with their endpoint on the listener
// the request came in on, as Kafka does; a broker without that listener is left out.
func (h *Handlers) brokers(img *metadata.Image, listener string) []kmsg.MetadataResponseBroker {
	var out []kmsg.MetadataResponseBroker
	for _, br := range img.Brokers() {
		if br.Fenced && br.ID != h.Config.NodeID {
			continue
		}
		for _, e := range br.Endpoints {
			if e.Name != listener {
				continue
			}
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port, b.Rack = br.ID, e.Host, e.Port, br.Rack
			out = append(out, b)
			break
		}
	}
	if !slices.ContainsFunc(out, func(b kmsg.MetadataResponseBroker) bool { return b.NodeID == h.Config.NodeID }) {
		host, port := h.advertised(listener)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = h.Config.NodeID, host, port, h.Config.Rack
		out = append(out, b)
	}
	return out
}

// controllerID is the broker clients send controller requests to: the active controller when
// it is a live broker, otherwise this broker, which forwards them (KRaft's answer).
func (h *Handlers) controllerID(img *metadata.Image) int32 {
	if id, ok := h.Meta.LeaderID(); ok {
		if b := img.Broker(id); b != nil && !b.Fenced {
			return id
		}
	}
	return h.Config.NodeID
}

// offlineReplicas are the replicas whose broker is not registered or is fenced.
func offlineReplicas(img *metadata.Image, replicas []int32) []int32 {
	out := []int32{}
	for _, id := range replicas {
		if b := img.Broker(id); b == nil || b.Fenced {
			out = append(out, id)
		}
	}
	return out
}
