package api

// CreateTopics (key 19), versions 2–7.
//   v1: validate_only and error messages (served from v2, as Kafka 4 does).
//   v4: default partitions and replication factor (-1).  v5: flexible; the response carries
//   the topic's partitions, replication factor and resulting configs.  v7: topic ids.
// The answer waits until the new partitions are open on this broker, so a client that
// produces right after creating a topic finds it ready.

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/controller"
)

func init() { register(19, 2, 7, handleCreateTopics) }

func handleCreateTopics(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.CreateTopicsRequest)
	if resp, ok := h.forward(ctx, req); ok {
		return resp, nil
	}
	resp := kmsg.NewPtrCreateTopicsResponse()

	specs := make([]controller.TopicSpec, 0, len(r.Topics))
	seen := make(map[string]int)
	for _, t := range r.Topics {
		seen[t.Topic]++
	}
	for _, t := range r.Topics {
		if seen[t.Topic] > 1 {
			continue // answered below: Kafka refuses a name listed twice
		}
		spec := controller.TopicSpec{Name: t.Topic, NumPartitions: t.NumPartitions, ReplicationFactor: t.ReplicationFactor}
		if len(t.ReplicaAssignment) > 0 {
			spec.Assignments = make(map[int32][]int32, len(t.ReplicaAssignment))
			for _, a := range t.ReplicaAssignment {
				spec.Assignments[a.Partition] = a.Replicas
			}
		}
		if len(t.Configs) > 0 {
			spec.Configs = make(map[string]*string, len(t.Configs))
			for _, c := range t.Configs {
				spec.Configs[c.Name] = c.Value
			}
		}
		specs = append(specs, spec)
	}

	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := h.Controller.CreateTopics(cctx, specs, r.ValidateOnly)
	if !r.ValidateOnly {
		// Answer once this broker has opened the partitions the creation placed here.
		if err := h.Replicas.WaitApplied(cctx, h.Meta.Image().AppliedIndex()); err != nil {
			h.logReq(req).Warn("created topics not yet open", "err", err)
		}
	}
	byName := make(map[string]controller.TopicResult, len(results))
	for _, res := range results {
		byName[res.Name] = res
	}

	img := h.Meta.Image()
	for _, t := range r.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = t.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		if seen[t.Topic] > 1 {
			st.ErrorCode = kerr.InvalidRequest.Code
			msg := "Duplicate topic name in the request: " + t.Topic
			st.ErrorMessage = &msg
			resp.Topics = append(resp.Topics, st)
			continue
		}
		res := byName[t.Topic]
		if res.Err != nil {
			st.ErrorCode = errCode(res.Err)
			st.ErrorMessage = errMessage(res.Err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = res.ID
		st.NumPartitions = res.NumPartitions
		st.ReplicationFactor = res.ReplicationFactor
		if req.Version >= 5 {
			overrides := img.TopicConfigs(t.Topic)
			if r.ValidateOnly {
				overrides = make(map[string]string)
				for _, c := range t.Configs {
					if c.Value != nil {
						overrides[c.Name] = *c.Value
					}
				}
			}
			for _, e := range h.Config.DescribeTopic(overrides) {
				c := kmsg.NewCreateTopicsResponseTopicConfig()
				c.Name = e.Name
				c.Value = e.Value
				c.ReadOnly = e.ReadOnly
				c.Source = int8(e.Source)
				c.IsSensitive = e.Sensitive
				st.Configs = append(st.Configs, c)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
