// Package groupbench measures Poste's group coordinator with franz-go clients against an
// in-process broker: how long a 100-member group takes to settle after one member joins
// (classic eager, classic cooperative, KIP-848), and how many offset commits per second one
// coordinator serves. These are benchmarks only; nothing here asserts a duration. Results
// and the commands that produce them are in docs/benchmarks.md, "Consumer groups".
package groupbench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/testkit"
)

const (
	topic      = "parties"
	partitions = 128 // more than members, so that every member owns a partition
	settleWait = 2 * time.Minute
)

// groupSize is the number of members before the one that joins; GROUPBENCH_MEMBERS
// overrides 100 for a quick look.
func groupSize(b *testing.B) int {
	if s := os.Getenv("GROUPBENCH_MEMBERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("GROUPBENCH_MEMBERS=%q: want a positive count", s)
		}
		return n
	}
	return 100
}

// ownership follows, from the clients' own callbacks, which member owns which partition.
// Callbacks of every member's client goroutines call it; the benchmark goroutine reads it.
type ownership struct {
	mu struct {
		sync.Mutex
		owners  map[int32]map[int]bool // partition -> members owning it
		owned   map[int]int            // member -> partitions owned
		revoked map[int]bool           // members that gave up a partition since reset
		emptied map[int]bool           // members left with no partition since reset
	}
	changed chan struct{} // a non-blocking nudge after every change
}

func newOwnership() *ownership {
	o := &ownership{changed: make(chan struct{}, 1)}
	o.mu.owners = map[int32]map[int]bool{}
	o.mu.owned = map[int]int{}
	o.mu.revoked = map[int]bool{}
	o.mu.emptied = map[int]bool{}
	return o
}

func (o *ownership) assign(member int, ps []int32) {
	o.mu.Lock()
	for _, p := range ps {
		if o.mu.owners[p] == nil {
			o.mu.owners[p] = map[int]bool{}
		}
		if !o.mu.owners[p][member] {
			o.mu.owners[p][member] = true
			o.mu.owned[member]++
		}
	}
	o.mu.Unlock()
	o.nudge()
}

func (o *ownership) revoke(member int, ps []int32) {
	o.mu.Lock()
	for _, p := range ps {
		if o.mu.owners[p][member] {
			delete(o.mu.owners[p], member)
			o.mu.owned[member]--
			o.mu.revoked[member] = true
		}
	}
	if o.mu.owned[member] == 0 {
		o.mu.emptied[member] = true
	}
	o.mu.Unlock()
	o.nudge()
}

func (o *ownership) nudge() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// settledLocked reports whether every partition has exactly one owner and each of members
// owns at least one.
func (o *ownership) settledLocked(members []int) bool {
	for p := range int32(partitions) {
		if len(o.mu.owners[p]) != 1 {
			return false
		}
	}
	for _, m := range members {
		if o.mu.owned[m] == 0 {
			return false
		}
	}
	return true
}

// waitSettled blocks until settledLocked(members) holds.
func (o *ownership) waitSettled(b *testing.B, members []int) {
	b.Helper()
	deadline := time.After(settleWait)
	for {
		o.mu.Lock()
		ok := o.settledLocked(members)
		o.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-o.changed:
		case <-time.After(5 * time.Millisecond):
		case <-deadline:
			b.Fatalf("group not settled with members %v after %v", members, settleWait)
		}
	}
}

// resetRevoked forgets who gave up partitions.
func (o *ownership) resetRevoked() {
	o.mu.Lock()
	o.mu.revoked = map[int]bool{}
	o.mu.emptied = map[int]bool{}
	o.mu.Unlock()
}

// revokedCount counts the members other than exclude that gave up some partition since the
// last reset (moved), and those that were left with none, if only for a moment (paused).
func (o *ownership) revokedCount(exclude int) (moved, paused int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for m := range o.mu.revoked {
		if m != exclude {
			moved++
		}
	}
	for m := range o.mu.emptied {
		if m != exclude {
			paused++
		}
	}
	return moved, paused
}

// protocol is one way to run a group.
type protocol struct {
	name   string
	opts   []kgo.Opt
	broker map[string]string
}

// protocols run with the defaults (classic members heartbeat every 3 s, franz-go's and the
// Java client's default; KIP-848 members every group.consumer.heartbeat.interval.ms, 5 s),
// then with heartbeats every 500 ms: a member learns of a rebalance only at a heartbeat.
var protocols = []protocol{
	{name: "eager-range", opts: []kgo.Opt{kgo.Balancers(kgo.RangeBalancer())}},
	{name: "cooperative-sticky", opts: []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer())}},
	{name: "kip848", opts: []kgo.Opt{kgo.ServerSideBalancer()}},
	{name: "eager-range-hb500ms", opts: []kgo.Opt{kgo.Balancers(kgo.RangeBalancer()), kgo.HeartbeatInterval(500 * time.Millisecond)}},
	{name: "cooperative-sticky-hb500ms", opts: []kgo.Opt{kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.HeartbeatInterval(500 * time.Millisecond)}},
	{name: "kip848-hb500ms", opts: []kgo.Opt{kgo.ServerSideBalancer()},
		broker: map[string]string{"group.consumer.heartbeat.interval.ms": "500"}},
}

// startMember starts member i of group; its callbacks keep o up to date. Each member polls
// (the topic is empty), as an application would.
func startMember(b *testing.B, addr, group string, i int, o *ownership, p protocol) *kgo.Client {
	b.Helper()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { o.assign(i, ps[topic]) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { o.revoke(i, ps[topic]) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { o.revoke(i, ps[topic]) }),
	}, p.opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for {
			if fs := cl.PollFetches(context.Background()); fs.IsClientClosed() {
				return
			}
		}
	}()
	return cl
}

func createTopic(b *testing.B, addr string, n int32) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, n, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		b.Fatalf("create %s: %v", topic, err)
	}
}

// BenchmarkJoinSettle measures, per protocol, the time from a new member's client starting
// to the group settling with it: every partition owned by exactly one member (as the
// clients' callbacks report) and the newcomer owning some. Metrics: s/join; moved/join, the
// other members that gave up some partition; paused/join, the other members left with no
// partition at some point (all of them under eager rebalancing, none otherwise).
//
//	go test ./test/groupbench -run '^$' -bench JoinSettle -benchtime 3x
func BenchmarkJoinSettle(b *testing.B) {
	for _, p := range protocols {
		b.Run(p.name, func(b *testing.B) { benchJoinSettle(b, p) })
	}
}

func benchJoinSettle(b *testing.B, p protocol) {
	tb := testkit.StartBroker(b, p.broker)
	createTopic(b, tb.Addr, partitions)
	n := groupSize(b)
	group := "nerds-" + p.name
	o := newOwnership()
	var members []int
	var clients []*kgo.Client
	for i := range n {
		clients = append(clients, startMember(b, tb.Addr, group, i, o, p))
		members = append(members, i)
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	o.waitSettled(b, members)

	var total time.Duration
	var moved, paused int
	next := n
	for b.Loop() {
		o.resetRevoked()
		start := time.Now()
		cl := startMember(b, tb.Addr, group, next, o, p)
		o.waitSettled(b, append(members, next))
		total += time.Since(start)
		m, p := o.revokedCount(next)
		moved, paused = moved+m, paused+p

		// The newcomer leaves again; the group settles before the next round.
		b.StopTimer()
		cl.Close()
		o.waitSettled(b, members)
		next++
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/join")
	b.ReportMetric(float64(moved)/float64(b.N), "moved/join")
	b.ReportMetric(float64(paused)/float64(b.N), "paused/join")
}

// BenchmarkOffsetCommit measures OffsetCommit throughput on one coordinator: concurrent
// requests (8 clients, 64 goroutines), each committing one partition's offset for a group
// without members (generation -1, as kadm and stream processors commit). One op is one
// commit; commits/s is wall-clock throughput over all goroutines.
//
//	go test ./test/groupbench -run '^$' -bench OffsetCommit -benchtime 5s -count 3
func BenchmarkOffsetCommit(b *testing.B) {
	const clientsN, perClient = 8, 8
	tb := testkit.StartBroker(b, nil)
	createTopic(b, tb.Addr, 16)
	var clients []*kgo.Client
	for range clientsN {
		cl, err := kgo.NewClient(kgo.SeedBrokers(tb.Addr))
		if err != nil {
			b.Fatal(err)
		}
		defer cl.Close()
		clients = append(clients, cl)
	}
	const group = "commits"
	// One commit first, so that the coordinator and the group exist before timing.
	if err := commit(clients[0], group, 0, 0); err != nil {
		b.Fatal(err)
	}
	var offset atomic.Int64
	var worker atomic.Int32
	b.SetParallelism(max(1, clientsN*perClient/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		w := worker.Add(1)
		cl := clients[int(w)%clientsN]
		for pb.Next() {
			if err := commit(cl, group, w%16, offset.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
}

// commit commits one offset of topic's partition for group, outside any generation.
func commit(cl *kgo.Client, group string, partition int32, offset int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = group
	req.Generation = -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = topic
	pt := kmsg.NewOffsetCommitRequestTopicPartition()
	pt.Partition = partition
	pt.Offset = offset
	pt.LeaderEpoch = -1
	t.Partitions = append(t.Partitions, pt)
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return fmt.Errorf("commit %s[%d]: %w", rt.Topic, rp.Partition, err)
			}
		}
	}
	return nil
}
