package api

// DescribeLogDirs (key 35), versions 0–4.
//   v0: per configured log dir, its partitions and their sizes; an offline dir answers
//   KAFKA_STORAGE_ERROR with no partitions.  v1: same as v0 (throttle on quota).
//   v2: flexible.  v3: top-level error code.  v4: total and usable bytes of each dir's
//   filesystem (-1 when unknown).  v5 (cordoned dirs, KIP-1066) is not served.
// A null topic list asks for every partition; offset_lag is 0 and is_future false: a
// partition being moved between dirs is unavailable rather than served from two copies.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(_ context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.DescribeLogDirsRequest)
	resp := kmsg.NewPtrDescribeLogDirsResponse()
	var want map[string]map[int32]bool // nil: every partition
	if r.Topics != nil {
		want = make(map[string]map[int32]bool, len(r.Topics))
		for _, t := range r.Topics {
			ps := want[t.Topic]
			if ps == nil {
				ps = make(map[int32]bool, len(t.Partitions))
				want[t.Topic] = ps
			}
			for _, p := range t.Partitions {
				ps[p] = true
			}
		}
	}
	for _, d := range h.Replicas.LogDirs() {
		rd := kmsg.NewDescribeLogDirsResponseDir()
		rd.Dir = d.Path
		rd.TotalBytes, rd.UsableBytes = d.TotalBytes, d.UsableBytes
		if d.Err != nil {
			rd.ErrorCode = errCode(d.Err)
			resp.Dirs = append(resp.Dirs, rd)
			continue
		}
		for _, p := range d.Partitions {
			if want != nil && !want[p.Topic][p.Partition] {
				continue
			}
			if n := len(rd.Topics); n == 0 || rd.Topics[n-1].Topic != p.Topic {
				rt := kmsg.NewDescribeLogDirsResponseDirTopic()
				rt.Topic = p.Topic
				rd.Topics = append(rd.Topics, rt)
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = p.Partition, p.Size
			rt := &rd.Topics[len(rd.Topics)-1]
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Dirs = append(resp.Dirs, rd)
	}
	return resp, nil
}
