package api

// Fetch (key 1), versions 4–16, for consumers.
//   v4: isolation level, last stable offset, aborted transactions (read_committed reads up to
//       the last stable offset and gets the aborted transactions overlapping what it read).  v5: log start offset.
//   v7: fetch sessions (KIP-227) — see below.  v9: current leader epoch (fencing, KIP-320).
//   v11: rack id, preferred read replica (always -1: fetch from followers comes with clusters).
//   v12: flexible; last fetched epoch and diverging epoch (used by followers).
//   v13: topics by id.  v15: replica state in a tag.  v16: node endpoints tag (none sent).
// Fetch sessions: Poste answers sessionless. A request for a new session (id 0, epoch 0) gets
// session id 0, which KIP-227 defines as "no session was created": clients keep sending full
// fetch requests, which is what librdkafka always does. A request naming a session id gets
// FETCH_SESSION_ID_NOT_FOUND, after which clients fall back to a full request.
// Replica fetches (replica id ≥ 0) are refused until replication exists.
// Size limits follow Kafka: max_bytes for the response and partition_max_bytes per partition,
// except that the first batch of the first partition with data is returned whole even if it is
// larger, so a consumer always makes progress.

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/partition"
)

func init() { register(1, 4, 16, handleFetch) }

// maxFetchBytes caps a response whatever the client asks (Kafka's fetch.max.bytes default).
const maxFetchBytes = 55 << 20

func handleFetch(ctx context.Context, h *Handlers, req *Request) (Response, error) {
	r := req.Body.(*kmsg.FetchRequest)
	replica := r.ReplicaID
	if req.Version >= 15 {
		replica = r.ReplicaState.ID
	}
	if replica >= 0 {
		// Only a registered broker replicates; since v15 it proves its registration with
		// its broker epoch.
		b := h.Meta.Image().Broker(replica)
		if b == nil || (req.Version >= 15 && r.ReplicaState.Epoch >= 0 && r.ReplicaState.Epoch != b.Epoch) {
			return encodeFetch(req.Version, kerr.NotLeaderForPartition.Code, 0, nil), nil
		}
	}
	if req.Version >= 7 && r.SessionID != 0 {
		return encodeFetch(req.Version, kerr.FetchSessionIDNotFound.Code, 0, nil), nil
	}
	maxBytes := int(r.MaxBytes)
	if req.Version < 3 || maxBytes <= 0 || maxBytes > maxFetchBytes {
		maxBytes = maxFetchBytes
	}
	f := &fetch{h: h, req: r, version: req.Version, maxBytes: maxBytes, replica: replica, now: time.Now}
	topics, total, done := f.read()
	wait := time.Duration(r.MaxWaitMillis) * time.Millisecond
	if done || total >= int(r.MinBytes) || wait <= 0 {
		return encodeFetch(req.Version, 0, 0, topics), nil
	}
	deadline := time.Now().Add(wait)
	return DeferFunc(func() Response { return f.longPoll(ctx, deadline) }), nil
}

// fetch is one consumer fetch being served.
type fetch struct {
	h        *Handlers
	req      *kmsg.FetchRequest
	version  int16
	maxBytes int
	// replica is the fetching follower's id, or -1 for a consumer.
	replica int32
	now     func() time.Time
}

// read reads every requested partition once. done reports a result that must be answered
// now (any partition error), total the record bytes gathered.
func (f *fetch) read() (topics []fetchTopic, total int, done bool) {
	img := f.h.Meta.Image()
	budget := f.maxBytes
	minOne := true
	committed := f.req.IsolationLevel == 1
	topics = make([]fetchTopic, 0, len(f.req.Topics))
	for i := range f.req.Topics {
		rt := &f.req.Topics[i]
		ft := fetchTopic{name: rt.Topic, id: rt.TopicID, parts: make([]fetchPart, 0, len(rt.Partitions))}
		name := rt.Topic
		topicErr := int16(0)
		if f.version >= 13 {
			if t := img.TopicByID(rt.TopicID); t != nil {
				name = t.Name
			} else {
				topicErr = kerr.UnknownTopicID.Code
			}
		} else if img.Topic(name) == nil {
			topicErr = kerr.UnknownTopicOrPartition.Code
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			fp := fetchPart{partition: rp.Partition, hw: -1, lso: -1, lso0: -1, committed: committed}
			if topicErr != 0 {
				fp.errCode = topicErr
				done = true
				ft.parts = append(ft.parts, fp)
				continue
			}
			p, err := f.h.Replicas.Get(name, rp.Partition)
			if err != nil {
				fp.errCode = errCode(err)
				done = true
				ft.parts = append(ft.parts, fp)
				continue
			}
			if code := checkLeaderEpoch(p, rp.CurrentLeaderEpoch); code != 0 {
				fp.errCode = code
				done = true
				ft.parts = append(ft.parts, fp)
				continue
			}
			if code := f.checkRole(img, name, p, &fp, rp); code != 0 {
				fp.errCode = code
				done = true
				ft.parts = append(ft.parts, fp)
				continue
			}
			if fp.hasPreferred || fp.diverging != nil {
				done = true // the client must act on it before it fetches again
				ft.parts = append(ft.parts, fp)
				continue
			}
			fp.hw, fp.lso, fp.lso0 = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
			if f.replica >= 0 {
				fp.hw = f.followerFetched(p, rp)
			}
			limit := int(rp.PartitionMaxBytes)
			if limit > budget {
				limit = budget
			}
			if limit > 0 || minOne {
				var s plog.Slice
				if f.replica >= 0 {
					s, err = p.ReadForFollower(rp.FetchOffset, limit)
				} else if committed {
					s, err = p.ReadBelow(rp.FetchOffset, fp.lso, limit, minOne)
				} else {
					s, err = p.Read(rp.FetchOffset, limit, minOne)
				}
				switch {
				case errors.Is(err, partition.ErrOffsetOutOfRange):
					fp.errCode = kerr.OffsetOutOfRange.Code
					done = true
				case err != nil:
					fp.errCode = errCode(err)
					done = true
				default:
					fp.records = s
					if committed && s.Size > 0 {
						fp.aborted = p.AbortedTxns(rp.FetchOffset, s.NextOffset)
					}
					if s.Size > 0 {
						minOne = false
						budget -= s.Size
						if budget < 0 {
							budget = 0
						}
						total += s.Size
					}
				}
			}
			ft.parts = append(ft.parts, fp)
		}
		topics = append(topics, ft)
	}
	return topics, total, done
}

// checkLeaderEpoch implements KIP-320 fencing: a client that knows a newer epoch than this
// leader's is ahead of it (UNKNOWN_LEADER_EPOCH), an older one is fenced.
func checkLeaderEpoch(p *partition.Partition, epoch int32) int16 {
	if epoch < 0 {
		return 0
	}
	cur := p.LeaderEpoch()
	switch {
	case epoch < cur:
		return kerr.FencedLeaderEpoch.Code
	case epoch > cur:
		return kerr.UnknownLeaderEpoch.Code
	}
	return 0
}

// longPoll waits until min_bytes are available, a partition errors, or the deadline passes,
// re-reading whenever a requested partition's high watermark moves.
func (f *fetch) longPoll(ctx context.Context, deadline time.Time) Response {
	wake := make(chan struct{}, 1)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		// Register before reading, so a move between the read and the wait is not missed.
		f.watch(wake)
		topics, total, done := f.read()
		if done || total >= int(f.req.MinBytes) || !time.Now().Before(deadline) {
			return encodeFetch(f.version, 0, 0, topics)
		}
		select {
		case <-wake:
			continue
		case <-timer.C:
		case <-ctx.Done():
		}
		topics, _, _ = f.read()
		return encodeFetch(f.version, 0, 0, topics)
	}
}

func (f *fetch) watch(ch chan struct{}) {
	img := f.h.Meta.Image()
	for i := range f.req.Topics {
		rt := &f.req.Topics[i]
		name := rt.Topic
		if f.version >= 13 {
			t := img.TopicByID(rt.TopicID)
			if t == nil {
				continue
			}
			name = t.Name
		}
		for j := range rt.Partitions {
			if p, err := f.h.Replicas.Get(name, rt.Partitions[j].Partition); err == nil {
				p.Watch(ch)
				if f.replica >= 0 {
					p.WatchAppend(ch) // a follower wants data before the high watermark shows it
				}
			}
		}
	}
}
