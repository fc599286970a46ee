// Package fault checks exactly-once delivery under injected faults: produce responses lost
// on the wire (through testkit's FaultProxy) and a broker killed with SIGKILL in the middle
// of a consume-transform-produce job.
package fault

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl := newClient(t, kgo.SeedBrokers(addr))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// sentinel ends every partition in readAll.
const sentinel = "end"

// readAll writes a sentinel record to each of topic's partitions, then reads every
// partition from the start with isolation iso until its sentinel, and returns the records
// before it per partition. The sentinel is not transactional, so under read_committed it
// is visible only once every transaction before it has ended: what precedes it is the
// partition's final committed content.
func readAll(t *testing.T, addr, topic string, partitions int32, iso kgo.IsolationLevel) map[int32][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod := newClient(t, kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range partitions {
		if err := prod.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(sentinel)}).FirstErr(); err != nil {
			t.Fatalf("produce sentinel to %s/%d: %v", topic, p, err)
		}
	}
	cl := newClient(t, kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	out := map[int32][]*kgo.Record{}
	done := map[int32]bool{}
	for int32(len(done)) < partitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v; partitions done: %v", topic, ctx.Err(), done)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case done[r.Partition]:
			case string(r.Value) == sentinel:
				done[r.Partition] = true
			default:
				out[r.Partition] = append(out[r.Partition], r)
			}
		})
	}
	return out
}

func value(i int) []byte { return fmt.Appendf(nil, "%08d", i) }
