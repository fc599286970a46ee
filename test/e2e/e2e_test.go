// Package e2e drives an in-process Poste broker with franz-go, as a Kafka user would.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func createTopic(t *testing.T, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(client(t, addr))
	resp, err := adm.CreateTopics(ctxT(t), partitions, 1, configs, topic)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp[topic].Err; err != nil {
		t.Fatalf("create %s: %v", topic, err)
	}
}

// consumeN reads n records from the beginning of the given topics.
func consumeN(t *testing.T, addr string, n int, topics ...string) []*kgo.Record {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

func TestProduceConsumeRoundTrip(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "parties", 11, nil)

	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()} {
		cl := client(t, b.Addr, kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(kgo.AllISRAcks()))
		var recs []*kgo.Record
		for i := 0; i < 50; i++ {
			recs = append(recs, &kgo.Record{
				Topic:   "parties",
				Key:     []byte([]string{"Cool pool party", "Horrible Halloween party"}[i%2]),
				Value:   []byte(fmt.Sprintf("invite %d", i)),
				Headers: []kgo.RecordHeader{{Key: "codec", Value: []byte(fmt.Sprint(codec))}},
			})
		}
		if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}

	got := consumeN(t, b.Addr, 250, "parties")
	if len(got) != 250 {
		t.Fatalf("got %d records, want 250", len(got))
	}
	// Each key lands in exactly one partition, in send order.
	byKey := map[string]int32{}
	last := map[string]int{}
	for _, r := range got {
		k := string(r.Key)
		if p, ok := byKey[k]; ok && p != r.Partition {
			t.Fatalf("key %q in partitions %d and %d", k, p, r.Partition)
		}
		byKey[k] = r.Partition
		var i int
		fmt.Sscanf(string(r.Value), "invite %d", &i)
		_ = last
		if len(r.Headers) != 1 || r.Headers[0].Key != "codec" {
			t.Fatalf("headers not round-tripped: %v", r.Headers)
		}
	}
	if len(byKey) != 2 {
		t.Fatalf("keys seen: %v", byKey)
	}
}

func TestAutoCreateOnMetadata(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{"num.partitions": "3"})
	cl := client(t, b.Addr, kgo.AllowAutoTopicCreation())
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "auto", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce to auto-created topic: %v", err)
	}
	adm := kadm.NewClient(cl)
	td, err := adm.ListTopics(ctxT(t), "auto")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(td["auto"].Partitions); n != 3 {
		t.Fatalf("auto-created topic has %d partitions, want num.partitions=3", n)
	}
}

func TestAutoCreateDisabled(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{"auto.create.topics.enable": "false"})
	adm := kadm.NewClient(client(t, b.Addr))
	md, err := adm.Metadata(ctxT(t), "nope")
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Topics["nope"].Err; err != kerr.UnknownTopicOrPartition {
		t.Fatalf("metadata for a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
}

func TestAdminTopics(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	adm := kadm.NewClient(client(t, b.Addr))
	ctx := ctxT(t)

	seg := "1048576"
	resp, err := adm.CreateTopics(ctx, 2, 1, map[string]*string{"segment.bytes": &seg}, "t1")
	if err != nil || resp["t1"].Err != nil {
		t.Fatalf("create: %v %v", err, resp["t1"].Err)
	}
	if resp["t1"].ID == [16]byte{} {
		t.Fatal("no topic id")
	}
	resp, _ = adm.CreateTopics(ctx, 2, 1, nil, "t1")
	if resp["t1"].Err != kerr.TopicAlreadyExists {
		t.Fatalf("second create: %v", resp["t1"].Err)
	}
	resp, _ = adm.CreateTopics(ctx, 2, 3, nil, "t2")
	if resp["t2"].Err != kerr.InvalidReplicationFactor {
		t.Fatalf("rf 3 on one broker: %v", resp["t2"].Err)
	}
	bad := "nonsense"
	resp, _ = adm.CreateTopics(ctx, 1, 1, map[string]*string{"segment.bytes": &bad}, "t3")
	if resp["t3"].Err != kerr.InvalidConfig {
		t.Fatalf("bad config: %v", resp["t3"].Err)
	}
	resp, _ = adm.CreateTopics(ctx, 1, 1, nil, "bad/name")
	if resp["bad/name"].Err != kerr.InvalidTopicException {
		t.Fatalf("bad name: %v", resp["bad/name"].Err)
	}
	vresp, err := adm.ValidateCreateTopics(ctx, 4, 1, nil, "validated")
	if err != nil || vresp["validated"].Err != nil {
		t.Fatalf("validate only: %v %v", err, vresp["validated"].Err)
	}
	if td, _ := adm.ListTopics(ctx, "validated"); td.Has("validated") && td["validated"].Err == nil {
		t.Fatal("validate_only created the topic")
	}

	cp, err := adm.CreatePartitions(ctx, 3, "t1")
	if err != nil || cp["t1"].Err != nil {
		t.Fatalf("create partitions: %v %v", err, cp["t1"].Err)
	}
	td, err := adm.ListTopics(ctx, "t1")
	if err != nil || len(td["t1"].Partitions) != 5 {
		t.Fatalf("after adding 3 partitions: %v, %d partitions", err, len(td["t1"].Partitions))
	}
	cl := client(t, b.Addr)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t1", Partition: 4, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new partition: %v", err)
	}

	rc, err := adm.DescribeTopicConfigs(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range rc[0].Configs {
		if c.Key == "segment.bytes" {
			found = true
			if c.Value == nil || *c.Value != seg || c.Source.String() != "DYNAMIC_TOPIC_CONFIG" {
				t.Fatalf("segment.bytes: %v from %v", c.MaybeValue(), c.Source)
			}
		}
	}
	if !found {
		t.Fatal("segment.bytes not described")
	}

	dr, err := adm.DeleteTopics(ctx, "t1")
	if err != nil || dr["t1"].Err != nil {
		t.Fatalf("delete: %v %v", err, dr["t1"].Err)
	}
	td, _ = adm.ListTopics(ctx)
	if td.Has("t1") {
		t.Fatal("deleted topic still listed")
	}
	dr, _ = adm.DeleteTopics(ctx, "t1")
	if dr["t1"].Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("delete missing: %v", dr["t1"].Err)
	}
	// Re-created under the same name, the topic starts empty.
	createTopic(t, b.Addr, "t1", 1, nil)
	lo, err := adm.ListEndOffsets(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lo.Lookup("t1", 0); o.Offset != 0 {
		t.Fatalf("re-created topic has end offset %d", o.Offset)
	}
}

func TestListOffsets(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "lo", 1, nil)
	cl := client(t, b.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := ctxT(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Topic: "lo", Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)}
		if i == 5 {
			r.Timestamp = base.Add(30 * time.Minute) // the maximum
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	start, _ := adm.ListStartOffsets(ctx, "lo")
	end, _ := adm.ListEndOffsets(ctx, "lo")
	if o, _ := start.Lookup("lo", 0); o.Offset != 0 {
		t.Fatalf("earliest %d", o.Offset)
	}
	if o, _ := end.Lookup("lo", 0); o.Offset != 10 {
		t.Fatalf("latest %d", o.Offset)
	}
	ts, err := adm.ListOffsetsAfterMilli(ctx, base.Add(3*time.Minute).UnixMilli(), "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ts.Lookup("lo", 0); o.Offset != 3 {
		t.Fatalf("offset for timestamp: %d, want 3", o.Offset)
	}
	ts, _ = adm.ListOffsetsAfterMilli(ctx, base.Add(2*time.Hour).UnixMilli(), "lo")
	if o, _ := ts.Lookup("lo", 0); o.Offset != 10 {
		t.Fatalf("offset for a future timestamp: %d, want the end (10)", o.Offset)
	}
	ts, _ = adm.ListMaxTimestampOffsets(ctx, "lo")
	if o, _ := ts.Lookup("lo", 0); o.Offset != 5 {
		t.Fatalf("max timestamp offset: %d, want 5", o.Offset)
	}
}

func TestRestartKeepsData(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "durable", 4, nil)
	cl := client(t, b.Addr)
	var recs []*kgo.Record
	for i := 0; i < 400; i++ {
		recs = append(recs, &kgo.Record{Topic: "durable", Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Restart()
	got := consumeN(t, b.Addr, 400, "durable")
	if len(got) != 400 {
		t.Fatalf("after restart: %d records", len(got))
	}
	// Producing after the restart continues the offsets.
	cl2 := client(t, b.Addr)
	res := cl2.ProduceSync(ctxT(t), &kgo.Record{Topic: "durable", Key: []byte("0"), Value: []byte("after")})
	if err := res.FirstErr(); err != nil {
		t.Fatal(err)
	}
	r, _ := res.First()
	if r.Offset == 0 {
		t.Fatal("offsets restarted from 0 after a restart")
	}
}

func TestLongPollWakesOnProduce(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "lp", 1, nil)
	cons := client(t, b.Addr, kgo.ConsumeTopics("lp"), kgo.FetchMaxWait(5*time.Second))
	ctx := ctxT(t)
	got := make(chan *kgo.Record, 1)
	go func() {
		fs := cons.PollFetches(ctx)
		if rs := fs.Records(); len(rs) > 0 {
			got <- rs[0]
		}
		close(got)
	}()
	time.Sleep(300 * time.Millisecond) // let the fetch park
	prod := client(t, b.Addr)
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "lp", Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r, ok := <-got
	if !ok || string(r.Value) != "wake" {
		t.Fatalf("long poll returned %v", r)
	}
}

func TestLargeRecordAndFetchLimits(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "big", 1, nil)
	cl := client(t, b.Addr, kgo.ProducerBatchMaxBytes(1<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	big := []byte(strings.Repeat("x", 900<<10))
	if err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "big", Value: big}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// partition max bytes below the record: the first-batch exception still returns it.
	cons := client(t, b.Addr, kgo.ConsumeTopics("big"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxPartitionBytes(1024), kgo.FetchMaxBytes(1024))
	fs := cons.PollFetches(ctxT(t))
	rs := fs.Records()
	if len(rs) != 1 || len(rs[0].Value) != len(big) {
		t.Fatalf("got %d records", len(rs))
	}
	// A batch over the topic's max.message.bytes is refused by the broker (the client does
	// not know the topic's limit, so only the broker can refuse it).
	limit := "100000"
	createTopic(t, b.Addr, "small", 1, map[string]*string{"max.message.bytes": &limit})
	cl2 := client(t, b.Addr, kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordRetries(0))
	err := cl2.ProduceSync(ctxT(t), &kgo.Record{Topic: "small", Value: make([]byte, 200000)}).FirstErr()
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("200 kB record on a 100 kB topic: %v, want MESSAGE_TOO_LARGE", err)
	}
	if err := cl2.ProduceSync(ctxT(t), &kgo.Record{Topic: "small", Value: make([]byte, 50000)}).FirstErr(); err != nil {
		t.Fatalf("50 kB record: %v", err)
	}
}

func TestConcurrentProducers(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	createTopic(t, b.Addr, "many", 8, nil)
	const producers, each = 8, 500
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			cl := client(t, b.Addr, kgo.ProducerLinger(time.Millisecond))
			var recs []*kgo.Record
			for i := 0; i < each; i++ {
				recs = append(recs, &kgo.Record{Topic: "many", Key: []byte(fmt.Sprintf("%d-%d", p, i%10)), Value: []byte(fmt.Sprintf("%d/%d", p, i))})
			}
			if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
				t.Errorf("producer %d: %v", p, err)
			}
		}(p)
	}
	wg.Wait()
	got := consumeN(t, b.Addr, producers*each, "many")
	seen := map[string]bool{}
	for _, r := range got {
		if seen[string(r.Value)] {
			t.Fatalf("duplicate %s", r.Value)
		}
		seen[string(r.Value)] = true
	}
	if len(seen) != producers*each {
		t.Fatalf("%d distinct records, want %d", len(seen), producers*each)
	}
}

func TestDescribeCluster(t *testing.T) {
	b := testkit.StartBroker(t, nil)
	adm := kadm.NewClient(client(t, b.Addr))
	md, err := adm.BrokerMetadata(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if md.Cluster == "" || len(md.Brokers) != 1 || md.Controller != md.Brokers[0].NodeID {
		t.Fatalf("cluster metadata: %+v", md)
	}
	cfgs, err := adm.DescribeBrokerConfigs(ctxT(t))
	if err != nil || len(cfgs) == 0 || len(cfgs[0].Configs) == 0 {
		t.Fatalf("broker configs: %v %v", err, cfgs)
	}
}
