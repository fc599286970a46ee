package api

// AlterReplicaLogDirs (key 34), versions 0–2.
//   v0: move partitions of this broker to another of its log dirs.  v1: same as v0.
//   v2: flexible.
// The move runs before the answer (copy, fsync, atomic switch, removal of the old copy);
// meanwhile the partition answers NOT_LEADER_OR_FOLLOWER, which clients retry. A path that is
// not one of log.dirs is LOG_DIR_NOT_FOUND, an offline dir KAFKA_STORAGE_ERROR, a partition
// not hosted here REPLICA_NOT_AVAILABLE. Kafka's moves of replicas not yet created here (a
// future dir for a later assignment) are not served.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/replica"
)

func init() { register(34, 0, 2, handleAlterReplicaLogDirs) }

func handleAlterReplicaLogDirs(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.AlterReplicaLogDirsRequest)
	resp := kmsg.NewPtrAlterReplicaLogDirsResponse()
	byTopic := make(map[string]int)
	for _, d := range r.Dirs {
		for _, t := range d.Topics {
			i, ok := byTopic[t.Topic]
			if !ok {
				i = len(resp.Topics)
				byTopic[t.Topic] = i
				rt := kmsg.NewAlterReplicaLogDirsResponseTopic()
				rt.Topic = t.Topic
				resp.Topics = append(resp.Topics, rt)
			}
			for _, p := range t.Partitions {
				rp := kmsg.NewAlterReplicaLogDirsResponseTopicPartition()
				rp.Partition = p
				err := h.Replicas.MoveReplica(t.Topic, p, d.Dir)
				switch {
				case errors.Is(err, replica.ErrNotHosted):
					rp.ErrorCode = kerr.ReplicaNotAvailable.Code
				case err != nil:
					rp.ErrorCode = errCode(err)
					h.logReq(req).Warn("moving partition between log dirs failed", "topic", t.Topic, "partition", p, "dir", d.Dir, "err", err)
				}
				resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, rp)
			}
		}
	}
	return resp, nil
}
