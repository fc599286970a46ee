package controller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

func openController(t *testing.T, dir string) (*Controller, *metadata.Store) {
	t.Helper()
	s, err := metadata.Open(metadata.StoreConfig{Dir: dir, NodeID: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return New(s, Options{NodeID: 1, DefaultPartitions: 2, DefaultReplicationFactor: 1}), s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestControllerEndToEnd(t *testing.T) {
	dir := t.TempDir()
	c, s := openController(t, dir)
	ctx := ctxT(t)

	res := c.CreateTopics(ctx, []TopicSpec{
		{Name: "orders", NumPartitions: -1, ReplicationFactor: -1, Configs: map[string]*string{"retention.ms": sp("60000")}},
		{Name: "__consumer_offsets", NumPartitions: 5, ReplicationFactor: 1},
		{Name: "bad name", NumPartitions: 1, ReplicationFactor: 1},
	}, false)
	if res[0].Err != nil || res[1].Err != nil || !errors.Is(res[2].Err, ErrInvalidTopic) {
		t.Fatalf("create: %+v", res)
	}
	img := s.Image()
	orders := img.Topic("orders")
	if orders == nil || orders.ID != res[0].ID || len(orders.Partitions) != 2 || orders.Partitions[1].Leader != 1 {
		t.Fatalf("orders in image: %+v", orders)
	}
	if img.TopicConfigs("orders")["retention.ms"] != "60000" || len(img.Topic("__consumer_offsets").Partitions) != 5 {
		t.Fatal("configs or internal topic missing")
	}

	if r := c.CreateTopics(ctx, []TopicSpec{{Name: "orders", NumPartitions: 1, ReplicationFactor: 1}}, false); !errors.Is(r[0].Err, ErrTopicExists) {
		t.Fatalf("second create: %v", r[0].Err)
	}
	if r := c.CreateTopics(ctx, []TopicSpec{{Name: "v", NumPartitions: 1, ReplicationFactor: 1}}, true); r[0].Err != nil || s.Image().Topic("v") != nil {
		t.Fatalf("validate-only created the topic: %+v", r)
	}
	if r := c.CreatePartitions(ctx, []PartitionsSpec{{Topic: "orders", Count: 4}}, false); r[0].Err != nil || len(s.Image().Topic("orders").Partitions) != 4 {
		t.Fatalf("create partitions: %+v", r)
	}
	if r := c.AlterConfigs(ctx, []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders",
		Configs: map[string]*string{"retention.ms": nil, "cleanup.policy": sp("compact")}}}, false); r[0].Err != nil {
		t.Fatal(r[0].Err)
	}
	if cfg := s.Image().TopicConfigs("orders"); len(cfg) != 1 || cfg["cleanup.policy"] != "compact" {
		t.Fatalf("configs after alter: %v", cfg)
	}
	first, err := c.AllocateProducerIDs(ctx, 1, 1000)
	second, err2 := c.AllocateProducerIDs(ctx, 1, 1000)
	if err != nil || err2 != nil || first != 0 || second != 1000 {
		t.Fatalf("producer ids: %d %v, %d %v", first, err, second, err2)
	}
	reg := metadata.RegisterBrokerRecord{BrokerID: 1, IncarnationID: metadata.NewUUID(),
		Endpoints: []metadata.Endpoint{{Name: "PLAINTEXT", Host: "localhost", Port: 9092}}}
	epoch, err := c.RegisterBroker(ctx, reg)
	if b := s.Image().Broker(1); err != nil || b == nil || !b.Fenced || b.Epoch != epoch || uint64(epoch) != s.Image().AppliedIndex() {
		t.Fatalf("register: epoch %d, %v, broker %+v", epoch, err, b)
	}
	before := s.Image().AppliedIndex()
	if again, err := c.RegisterBroker(ctx, reg); err != nil || again != epoch || s.Image().AppliedIndex() != before {
		t.Fatalf("identical re-registration wrote a record: %v", err)
	}
	// A fenced node cannot take new partitions; its first caught-up
	// heartbeat unfences it.
	if r := c.CreateTopics(ctx, []TopicSpec{{Name: "early", NumPartitions: 1, ReplicationFactor: 1}}, false); !errors.Is(r[0].Err, ErrInvalidReplicationFactor) {
		t.Fatalf("create on a fenced node: %+v", r)
	}
	hb, err := c.Heartbeat(ctx, Heartbeat{BrokerID: 1, BrokerEpoch: epoch, MetadataOffset: uint64(epoch)})
	if err != nil || !hb.IsCaughtUp || hb.IsFenced || s.Image().Broker(1).Fenced {
		t.Fatalf("heartbeat: %+v %v", hb, err)
	}
	if l := c.BrokerLiveness()[1]; l.MetadataOffset != uint64(epoch) || l.LastHeartbeat.IsZero() {
		t.Fatalf("liveness %+v", l)
	}
	if _, err := c.Heartbeat(ctx, Heartbeat{BrokerID: 1, BrokerEpoch: epoch - 1}); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("stale heartbeat: %v", err)
	}

	del := c.DeleteTopics(ctx, nil, [][16]byte{res[1].ID})
	if del[0].Err != nil || del[0].Name != "__consumer_offsets" || s.Image().Topic("__consumer_offsets") != nil {
		t.Fatalf("delete by id: %+v", del)
	}
	want := s.Image()

	// Everything survives a restart of the store.
	s.Close()
	c2, s2 := openController(t, dir)
	img = s2.Image()
	if img.Topic("orders") == nil || len(img.Topic("orders").Partitions) != 4 || img.Topic("__consumer_offsets") != nil ||
		img.TopicConfigs("orders")["cleanup.policy"] != "compact" || img.NextProducerID() != 2000 ||
		img.ClusterID() != want.ClusterID() || img.Broker(1) == nil {
		t.Fatal("state lost across restart")
	}
	if first, err := c2.AllocateProducerIDs(ctx, 1, 10); err != nil || first != 2000 {
		t.Fatalf("producer ids after restart: %d %v", first, err)
	}
	if r := c2.DeleteTopics(ctx, []string{"orders", "orders"}, nil); !errors.Is(r[0].Err, ErrInvalidRequest) || s2.Image().Topic("orders") == nil {
		t.Fatalf("duplicate delete: %+v", r)
	}
}

func TestControllerClosedStore(t *testing.T) {
	c, s := openController(t, t.TempDir())
	s.Close()
	r := c.CreateTopics(ctxT(t), []TopicSpec{{Name: "a", NumPartitions: 1, ReplicationFactor: 1}}, false)
	if r[0].Err == nil || r[0].NumPartitions != -1 {
		t.Fatalf("create on a closed store succeeded: %+v", r)
	}
	if _, err := c.AllocateProducerIDs(ctxT(t), 1, 10); err == nil {
		t.Fatal("allocation on a closed store succeeded")
	}
}

func TestControllerWaitsForTurnWithContext(t *testing.T) {
	c, _ := openController(t, t.TempDir())
	c.turn <- struct{}{} // another decision holds the turn
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.AllocateProducerIDs(ctx, 1, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want deadline exceeded", err)
	}
	<-c.turn
}

func TestConcurrentCreateSameName(t *testing.T) {
	c, s := openController(t, t.TempDir())
	const n = 8
	var wg sync.WaitGroup
	results := make([]TopicResult, n)
	for i := range n {
		wg.Go(func() {
			results[i] = c.CreateTopics(ctxT(t), []TopicSpec{{Name: "race", NumPartitions: 1, ReplicationFactor: 1}}, false)[0]
		})
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		switch {
		case r.Err == nil:
			ok++
			if s.Image().Topic("race").ID != r.ID {
				t.Error("winner's id is not the topic's id")
			}
		case !errors.Is(r.Err, ErrTopicExists):
			t.Errorf("loser got %v, want ErrTopicExists", r.Err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1", ok)
	}

	// Producer-id blocks from concurrent callers never overlap.
	firsts := make([]int64, n)
	for i := range n {
		wg.Go(func() {
			f, err := c.AllocateProducerIDs(ctxT(t), 1, 100)
			if err != nil {
				t.Error(err)
			}
			firsts[i] = f
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for _, f := range firsts {
		if f%100 != 0 || seen[f] {
			t.Fatalf("overlapping producer id blocks: %v", firsts)
		}
		seen[f] = true
	}
}
