package api

// DescribeQuorum (key 55), versions 0–2 (KIP-595, KIP-836, KIP-853): the metadata quorum's
// leader, term and commit index, with each voter's and observer's progress. A voter's or
// observer's log end offset is the metadata offset its broker last reported in a heartbeat
// (the leader's own is its applied index); v1 adds fetch and caught-up times, v2 the
// voters' listeners.

import (
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// MetadataTopic is the name Kafka gives the metadata log's partition.
const MetadataTopic = "__cluster_metadata"

func init() { register(55, 0, 2, handleDescribeQuorum) }

func handleDescribeQuorum(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DescribeQuorumRequest)
	resp := kmsg.NewPtrDescribeQuorumResponse()
	for _, rt := range r.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			if rt.Topic != MetadataTopic || rp.Partition != 0 {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else if !h.Meta.IsLeader() {
				p.ErrorCode = kerr.NotLeaderForPartition.Code
			} else {
				h.fillQuorum(&p)
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Version >= 2 {
		for _, v := range h.Meta.Voters() {
			n := kmsg.NewDescribeQuorumResponseNode()
			n.NodeID = v.ID
			host, port := splitHostPort(v.Addr)
			l := kmsg.NewDescribeQuorumResponseNodeListener()
			l.Name, l.Host, l.Port = controllerListenerName(h), host, uint16(port)
			n.Listeners = append(n.Listeners, l)
			resp.Nodes = append(resp.Nodes, n)
		}
	}
	return resp, nil
}

func controllerListenerName(h *Handlers) string {
	if len(h.Config.ControllerListeners) > 0 {
		return h.Config.ControllerListeners[0]
	}
	return "CONTROLLER"
}

func (h *Handlers) fillQuorum(p *kmsg.DescribeQuorumResponseTopicPartition) {
	q := h.Meta.Quorum()
	live := h.Controller.BrokerLiveness()
	p.LeaderID, p.LeaderEpoch, p.HighWatermark = q.LeaderID, int32(q.Term), int64(q.CommitIndex)
	state := func(id int32) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		s := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		s.ReplicaID, s.LogEndOffset, s.LastFetchTimestamp, s.LastCaughtUpTimestamp = id, -1, -1, -1
		if id == q.LeaderID {
			s.LogEndOffset = int64(q.AppliedIndex)
			now := time.Now().UnixMilli()
			s.LastFetchTimestamp, s.LastCaughtUpTimestamp = now, now
		} else if l, ok := live[id]; ok {
			s.LogEndOffset = int64(l.MetadataOffset)
			s.LastFetchTimestamp = l.LastHeartbeat.UnixMilli()
			if l.MetadataOffset >= q.CommitIndex {
				s.LastCaughtUpTimestamp = s.LastFetchTimestamp
			}
		}
		return s
	}
	voters := make(map[int32]bool)
	for _, v := range q.Voters {
		voters[v.ID] = true
		p.CurrentVoters = append(p.CurrentVoters, state(v.ID))
	}
	// Brokers that are not voters follow the log as observers.
	var observers []int32
	for id := range live {
		if !voters[id] {
			observers = append(observers, id)
		}
	}
	slices.Sort(observers)
	for _, id := range observers {
		p.Observers = append(p.Observers, state(id))
	}
}

func splitHostPort(addr string) (string, int) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, _ := strconv.Atoi(portText)
	return host, port
}
