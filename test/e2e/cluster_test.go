package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

// fullISR reports whether every partition of topic has all its replicas in sync.
func fullISR(ctx context.Context, adm *kadm.Client, topic string) (bool, string) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return false, err.Error()
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return false, fmt.Sprintf("topic %v", td.Err)
	}
	for _, p := range td.Partitions {
		if len(p.ISR) != len(p.Replicas) || p.Leader < 0 {
			return false, fmt.Sprintf("partition %d leader %d replicas %v isr %v", p.Partition, p.Leader, p.Replicas, p.ISR)
		}
	}
	return true, ""
}

// TestClusterReplication: three brokers (each a controller voter) replicate a topic with
// replication factor 3; acks=all records survive stopping the leader of every partition in
// turn, the stopped broker comes back into the ISR, and every replica ends with the same
// records.
func TestClusterReplication(t *testing.T) {
	c := testkit.StartCluster(t, 3, nil)
	ctx := ctxT(t)
	seeds := c.Addrs()[0]
	all := kgo.SeedBrokers(c.Addrs()...)
	adm := kadm.NewClient(client(t, seeds, all))
	const topic = "replicated"
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a full ISR", 15*time.Second, func() bool { ok, _ := fullISR(ctx, adm, topic); return ok })

	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 {
		t.Fatalf("metadata lists %d brokers, want 3: %v", len(md.Brokers), md.Brokers)
	}

	prod := client(t, seeds, all, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic),
		kgo.RecordRetries(1000), kgo.RetryTimeout(30*time.Second))
	var mu sync.Mutex
	acked := map[string]bool{}
	produce := func(from, n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := from; i < from+n; i++ {
			v := fmt.Sprintf("v%06d", i)
			wg.Add(1)
			prod.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("produce %s: %v", v, err)
					return
				}
				mu.Lock()
				acked[v] = true
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	produce(0, 3000)

	// Stop each partition's leader in turn while producing; the others take over.
	for round := 0; round < 2; round++ {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		leader := md.Topics[topic].Partitions[int32(round)].Leader
		nd := c.Node(leader)
		done := make(chan struct{})
		go func() {
			defer close(done)
			produce(10000*(round+1), 2000)
		}()
		time.Sleep(100 * time.Millisecond)
		nd.Stop()
		<-done
		nd.Restart()
		waitFor(t, "the restarted broker back in the ISR", 30*time.Second, func() bool {
			ok, _ := fullISR(ctx, adm, topic)
			return ok
		})
	}

	// Every acknowledged record is there exactly once.
	cons := client(t, seeds, all, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]int{}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(seen) < len(acked) {
		fs := cons.PollFetches(rctx)
		if rctx.Err() != nil {
			t.Fatalf("read %d of %d acknowledged records", len(seen), len(acked))
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
	}
	for v := range acked {
		if seen[v] != 1 {
			t.Errorf("record %s read %d times", v, seen[v])
		}
	}

	// Every replica holds the same records, in the same offsets, up to the high watermark
	// (once the followers have learnt the leader's: they do on their next fetch).
	for p := int32(0); p < 3; p++ {
		hws := func() (lo, hi int64) {
			lo, hi = -1, -1
			for _, nd := range c.Nodes {
				rp, err := nd.B.Replicas().Get(topic, p)
				if err != nil {
					t.Fatalf("node %d: %v", nd.ID, err)
				}
				hw := rp.HighWatermark()
				if lo < 0 || hw < lo {
					lo = hw
				}
				hi = max(hi, hw)
			}
			return lo, hi
		}
		waitFor(t, "the replicas' high watermarks to agree", 10*time.Second, func() bool { lo, hi := hws(); return lo == hi })
		var ref []string
		for _, nd := range c.Nodes {
			got := replicaContent(t, nd, topic, p)
			if ref == nil {
				ref = got
				continue
			}
			if !slices.Equal(ref, got) {
				t.Errorf("partition %d: replica on node %d differs (%d records vs %d)", p, nd.ID, len(got), len(ref))
			}
		}
	}
}

// replicaContent reads a partition's log on one node directly up to its high watermark.
func replicaContent(t *testing.T, nd *testkit.Node, topic string, partition int32) []string {
	t.Helper()
	p, err := nd.B.Replicas().Get(topic, partition)
	if err != nil {
		t.Fatalf("node %d: %v", nd.ID, err)
	}
	var out []string
	hw := p.HighWatermark()
	for off := p.LogStartOffset(); off < hw; {
		s, err := p.Read(off, 1<<20, true)
		if err != nil || s.Size == 0 {
			t.Fatalf("node %d read at %d: %v", nd.ID, off, err)
		}
		buf := make([]byte, s.Size)
		if _, err := s.File.ReadAt(buf, s.Pos); err != nil {
			t.Fatal(err)
		}
		// One entry per batch, so that replicas whose segments rolled at other points compare
		// equal.
		for len(buf) >= 12 {
			n := 12 + int(binary.BigEndian.Uint32(buf[8:12]))
			out = append(out, fmt.Sprintf("%x", buf[:n]))
			buf = buf[n:]
		}
		off = s.NextOffset
	}
	return out
}

// TestClusterSeparateRoles: a controller-only node is the whole metadata quorum and two
// broker-only nodes follow its log as observers; topics replicate between the brokers and
// admin requests sent to a broker are forwarded to the controller.
func TestClusterSeparateRoles(t *testing.T) {
	c := testkit.StartClusterRoles(t, []string{"controller", "broker", "broker"}, nil)
	all := kgo.SeedBrokers(c.Addrs()...)
	adm := kadm.NewClient(client(t, c.Addrs()[0], all))
	ctx := ctxT(t)
	md, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 2 {
		t.Fatalf("metadata lists brokers %v, want the two broker-only nodes", md.Brokers)
	}
	const topic = "split-roles"
	if _, err := adm.CreateTopic(ctx, 2, 2, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a full ISR", 15*time.Second, func() bool { ok, _ := fullISR(ctx, adm, topic); return ok })
	prod := client(t, c.Addrs()[0], all, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
	for i := 0; i < 100; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dc := kmsg.NewPtrDescribeClusterRequest()
	dc.EndpointType = 2
	dresp, err := dc.RequestWith(ctx, client(t, c.Addrs()[0], all))
	if err != nil {
		t.Fatal(err)
	}
	if dresp.ErrorCode != 0 || len(dresp.Brokers) != 1 || dresp.Brokers[0].NodeID != 1 || dresp.ControllerID != 1 {
		t.Fatalf("DescribeCluster of the controllers: error %d, controller %d, nodes %+v", dresp.ErrorCode, dresp.ControllerID, dresp.Brokers)
	}
	q := c.Node(1).B.Metadata().Quorum()
	if len(q.Voters) != 1 || len(q.Observers) != 2 {
		t.Fatalf("quorum voters %v observers %v, want 1 voter and 2 observers", q.Voters, q.Observers)
	}
}
