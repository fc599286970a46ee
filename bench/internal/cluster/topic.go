package cluster

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// lockedWriter serializes whole lines from several goroutines into one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer // guarded by mu
}

func (l *lockedWriter) writeLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, s+"\n")
}

// PartitionState is one partition as a broker's Metadata response shows it.
type PartitionState struct {
	Leader      int32 // -1 when leaderless
	LeaderEpoch int32
	Replicas    []int32
	ISR         []int32
	Controller  int32 // the cluster's active controller in the same response
}

// CreateTopic creates topic with the given partitions, replication factor and
// configs (nil for none).
func CreateTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, rf int16, configs map[string]*string) error {
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("%w: create topic %s: %v", ErrNotReady, topic, err)
	}
	return nil
}

// Partition asks broker id (or any broker if id < 0) for the metadata of one
// partition. Asking a chosen broker lets a caller avoid one it just killed.
func Partition(ctx context.Context, cl *kgo.Client, id int32, topic string, partition int32) (PartitionState, error) {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, t)
	var resp *kmsg.MetadataResponse
	var err error
	if id >= 0 {
		resp, err = req.RequestWith(ctx, cl.Broker(int(id)))
	} else {
		resp, err = req.RequestWith(ctx, cl)
	}
	if err != nil {
		return PartitionState{}, fmt.Errorf("%w: metadata: %v", ErrNotReady, err)
	}
	for _, rt := range resp.Topics {
		if rt.Topic == nil || *rt.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			return PartitionState{}, fmt.Errorf("%w: topic %s: %v", ErrNotReady, topic, err)
		}
		for _, p := range rt.Partitions {
			if p.Partition == partition {
				return PartitionState{
					Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
					Replicas: p.Replicas, ISR: p.ISR, Controller: resp.ControllerID,
				}, nil
			}
		}
	}
	return PartitionState{}, fmt.Errorf("%w: %s/%d not in metadata", ErrNotReady, topic, partition)
}

// WaitTopic waits until every partition of topic (there must be partitions)
// has a leader and at least isr in-sync replicas, polling every 50 ms.
func WaitTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, isr int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	adm := kadm.NewClient(cl)
	last := "no metadata yet"
	for {
		md, err := adm.Metadata(ctx, topic)
		if err == nil {
			last = topicShort(md, topic, partitions, isr)
			if last == "" {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: topic %s after %v: %s", ErrNotReady, topic, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// topicShort says what md lacks for topic to have partitions partitions, each
// with a leader and isr in-sync replicas; "" when nothing.
func topicShort(md kadm.Metadata, topic string, partitions int32, isr int) string {
	td, ok := md.Topics[topic]
	switch {
	case !ok:
		return "topic missing"
	case td.Err != nil:
		return td.Err.Error()
	case int32(len(td.Partitions)) != partitions:
		return fmt.Sprintf("%d partitions, want %d", len(td.Partitions), partitions)
	}
	for _, p := range td.Partitions.Sorted() {
		if p.Err != nil && p.Err != kerr.ReplicaNotAvailable {
			return fmt.Sprintf("partition %d: %v", p.Partition, p.Err)
		}
		if p.Leader < 0 {
			return fmt.Sprintf("partition %d has no leader", p.Partition)
		}
		if len(p.ISR) < isr {
			return fmt.Sprintf("partition %d ISR %v, want %d members", p.Partition, p.ISR, isr)
		}
	}
	return ""
}

// WaitISR polls broker via (or any broker if via < 0) until topic/partition
// has a leader and an ISR of want members, returning that state.
func WaitISR(ctx context.Context, cl *kgo.Client, via int32, topic string, partition int32, want int, timeout time.Duration) (PartitionState, error) {
	deadline := time.Now().Add(timeout)
	var st PartitionState
	var err error
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err = Partition(rctx, cl, via, topic, partition)
		cancel()
		if err == nil && st.Leader >= 0 && len(st.ISR) >= want {
			return st, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("%w: leader %d ISR %v", ErrNotReady, st.Leader, st.ISR)
			}
			return st, fmt.Errorf("%w: %s/%d after %v: %v", ErrNotReady, topic, partition, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Survivor returns a node id in ids other than dead, or -1.
func Survivor(ids []int32, dead int32) int32 {
	i := slices.IndexFunc(ids, func(id int32) bool { return id != dead })
	if i < 0 {
		return -1
	}
	return ids[i]
}
