package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/metadata"
)

// Controller is what a broker asks of the active controller. *controller.Controller
// implements it for the node that leads the quorum; Remote for every other node; Router
// picks one per call.
type Controller interface {
	RegisterBroker(ctx context.Context, reg metadata.RegisterBrokerRecord) (int64, error)
	Heartbeat(ctx context.Context, hb controller.Heartbeat) (controller.HeartbeatResult, error)
	AlterPartition(ctx context.Context, brokerID int32, brokerEpoch int64, changes []controller.ISRChange) []controller.ISRResult
	AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (int64, error)
}

// CodeError turns a Kafka error code from a controller response into an error that matches
// the controller's sentinel for the same condition (errors.Is), so callers handle local and
// remote answers alike.
func CodeError(code int16, msg *string) error {
	if code == 0 {
		return nil
	}
	kind := kerr.ErrorForCode(code)
	var sentinel error
	switch code {
	case kerr.NotController.Code:
		sentinel = controller.ErrNotController
	case kerr.StaleBrokerEpoch.Code:
		sentinel = controller.ErrStaleBrokerEpoch
	case kerr.BrokerIDNotRegistered.Code:
		sentinel = controller.ErrBrokerNotRegistered
	case kerr.NotLeaderForPartition.Code:
		sentinel = controller.ErrNotLeaderOrFollower
	case kerr.FencedLeaderEpoch.Code:
		sentinel = controller.ErrFencedLeaderEpoch
	case kerr.InvalidUpdateVersion.Code:
		sentinel = controller.ErrInvalidUpdateVersion
	case kerr.IneligibleReplica.Code:
		sentinel = controller.ErrIneligibleReplica
	case kerr.UnknownTopicOrPartition.Code:
		sentinel = controller.ErrUnknownTopic
	case kerr.UnknownTopicID.Code:
		sentinel = controller.ErrUnknownTopicID
	case kerr.TopicAlreadyExists.Code:
		sentinel = controller.ErrTopicExists
	}
	text := kind.Error()
	if msg != nil && *msg != "" {
		text += ": " + *msg
	}
	if sentinel == nil {
		return fmt.Errorf("%s: %w", text, kind)
	}
	return fmt.Errorf("%s: %w", text, errors.Join(sentinel, kind))
}

// Remote is the Controller of a node that does not lead the quorum: each call is a Kafka
// request over the Channel. Safe for concurrent use.
type Remote struct {
	Channel   *Channel
	ClusterID func() string
}

func (r *Remote) RegisterBroker(ctx context.Context, reg metadata.RegisterBrokerRecord) (int64, error) {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = reg.BrokerID
	req.ClusterID = r.ClusterID()
	req.IncarnationID = reg.IncarnationID
	req.Rack = reg.Rack
	for _, e := range reg.Endpoints {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port, l.SecurityProtocol = e.Name, e.Host, uint16(e.Port), e.SecurityProtocol
		req.Listeners = append(req.Listeners, l)
	}
	kresp, err := r.Channel.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := kresp.(*kmsg.BrokerRegistrationResponse)
	if err := CodeError(resp.ErrorCode, nil); err != nil {
		return 0, err
	}
	return resp.BrokerEpoch, nil
}

func (r *Remote) Heartbeat(ctx context.Context, hb controller.Heartbeat) (controller.HeartbeatResult, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID = hb.BrokerID
	req.BrokerEpoch = hb.BrokerEpoch
	req.CurrentMetadataOffset = int64(hb.MetadataOffset)
	req.WantFence = hb.WantFence
	req.WantShutdown = hb.WantShutDown
	kresp, err := r.Channel.Request(ctx, req)
	if err != nil {
		return controller.HeartbeatResult{}, err
	}
	resp := kresp.(*kmsg.BrokerHeartbeatResponse)
	if err := CodeError(resp.ErrorCode, nil); err != nil {
		return controller.HeartbeatResult{}, err
	}
	return controller.HeartbeatResult{IsCaughtUp: resp.IsCaughtUp, IsFenced: resp.IsFenced, ShouldShutDown: resp.ShouldShutdown}, nil
}

func (r *Remote) AlterPartition(ctx context.Context, brokerID int32, brokerEpoch int64, changes []controller.ISRChange) []controller.ISRResult {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID = brokerID
	req.BrokerEpoch = brokerEpoch
	byTopic := map[[16]byte]int{}
	for _, ch := range changes {
		i, ok := byTopic[ch.TopicID]
		if !ok {
			t := kmsg.NewAlterPartitionRequestTopic()
			t.TopicID = ch.TopicID
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[ch.TopicID] = i
		}
		p := kmsg.NewAlterPartitionRequestTopicPartition()
		p.Partition, p.LeaderEpoch, p.PartitionEpoch = ch.Partition, ch.LeaderEpoch, ch.PartitionEpoch
		for _, id := range ch.NewISR {
			s := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
			s.BrokerID, s.BrokerEpoch = id, -1
			p.NewEpochISR = append(p.NewEpochISR, s)
			p.NewISR = append(p.NewISR, id)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	results := make([]controller.ISRResult, len(changes))
	kresp, err := r.Channel.Request(ctx, req)
	if err == nil {
		resp := kresp.(*kmsg.AlterPartitionResponse)
		if err = CodeError(resp.ErrorCode, nil); err == nil {
			type key struct {
				id [16]byte
				p  int32
			}
			got := map[key]kmsg.AlterPartitionResponseTopicPartition{}
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					got[key{t.TopidID, p.Partition}] = p
				}
			}
			for i, ch := range changes {
				p, ok := got[key{ch.TopicID, ch.Partition}]
				if !ok {
					results[i].Err = fmt.Errorf("controller did not answer for partition %d", ch.Partition)
					continue
				}
				results[i].Err = CodeError(p.ErrorCode, nil)
				results[i].Partition = metadata.Partition{ID: p.Partition, Leader: p.LeaderID, LeaderEpoch: p.LeaderEpoch,
					ISR: p.ISR, PartitionEpoch: p.PartitionEpoch}
			}
			return results
		}
	}
	for i := range results {
		results[i].Err = err
	}
	return results
}

func (r *Remote) AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (int64, error) {
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = brokerID
	req.BrokerEpoch = -1
	kresp, err := r.Channel.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	resp := kresp.(*kmsg.AllocateProducerIDsResponse)
	if err := CodeError(resp.ErrorCode, nil); err != nil {
		return 0, err
	}
	if int64(resp.ProducerIDLen) < count {
		return 0, fmt.Errorf("controller allocated %d producer ids, need %d", resp.ProducerIDLen, count)
	}
	return resp.ProducerIDStart, nil
}

// Router sends each call to this node's controller when it leads the quorum and to the
// remote active controller otherwise; a call that meets a leadership change in between is
// retried on the new leader until ctx ends.
type Router struct {
	Local    Controller
	Remote   Controller
	IsLeader func() bool
}

func (r *Router) pick() Controller {
	if r.Remote == nil || r.IsLeader() {
		return r.Local
	}
	return r.Remote
}

func retryable(err error) bool {
	return errors.Is(err, controller.ErrNotController) || errors.Is(err, ErrNoController)
}

// wait pauses before a retry; false when ctx ended.
func wait(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-afterRetry():
		return true
	}
}

func (r *Router) RegisterBroker(ctx context.Context, reg metadata.RegisterBrokerRecord) (int64, error) {
	for {
		epoch, err := r.pick().RegisterBroker(ctx, reg)
		if !retryable(err) || !wait(ctx) {
			return epoch, err
		}
	}
}

func (r *Router) Heartbeat(ctx context.Context, hb controller.Heartbeat) (controller.HeartbeatResult, error) {
	for {
		res, err := r.pick().Heartbeat(ctx, hb)
		if !retryable(err) || !wait(ctx) {
			return res, err
		}
	}
}

func (r *Router) AlterPartition(ctx context.Context, brokerID int32, brokerEpoch int64, changes []controller.ISRChange) []controller.ISRResult {
	for {
		res := r.pick().AlterPartition(ctx, brokerID, brokerEpoch, changes)
		again := false
		for _, x := range res {
			again = again || retryable(x.Err)
		}
		if !again || !wait(ctx) {
			return res
		}
	}
}

func (r *Router) AllocateProducerIDs(ctx context.Context, brokerID int32, count int64) (int64, error) {
	for {
		first, err := r.pick().AllocateProducerIDs(ctx, brokerID, count)
		if !retryable(err) || !wait(ctx) {
			return first, err
		}
	}
}
