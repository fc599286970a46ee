package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// groups848Config makes KIP-848 members heartbeat often, so reassignments settle fast.
var groups848Config = map[string]string{
	"group.consumer.heartbeat.interval.ms": "200",
	"group.consumer.session.timeout.ms":    "6000",
}

// member848 is a franz-go consumer in a KIP-848 group that records what it consumes and
// the assignment changes its client reports.
type member848 struct {
	*groupConsumer
	mu      sync.Mutex
	owned   map[int32]bool
	revoked []int32 // every partition revoked or lost, in order
}

func (m *member848) assigned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int32
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (m *member848) revokedSince(n int) []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.revoked[n:])
}

func (m *member848) revokedCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.revoked)
}

func start848(t *testing.T, ctx context.Context, addr, group, topic string, bal kgo.GroupBalancer) *member848 {
	t.Helper()
	m := &member848{owned: map[int32]bool{}}
	lose := func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range ps[topic] {
			delete(m.owned, p)
			m.revoked = append(m.revoked, p)
		}
	}
	m.groupConsumer = startGroupConsumer(t, ctx, addr, group, topic, kgo.ServerSideBalancer(), kgo.Balancers(bal),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, p := range ps[topic] {
				m.owned[p] = true
			}
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
			// Commit what was consumed before the partitions move, so nothing is read twice.
			cl.CommitUncommittedOffsets(ctx)
			lose(ctx, cl, ps)
		}),
		kgo.OnPartitionsLost(lose))
	t.Cleanup(m.cl.Close)
	return m
}

// waitSettled waits until the group is Stable with n members whose assignments cover the
// topic's partitions, the assignor is as expected, and the clients agree with the broker.
func waitSettled(t *testing.T, ctx context.Context, adm *kadm.Client, group, assignor string, ms []*member848, partitions int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d members sharing %d partitions", len(ms), partitions), 30*time.Second, func() bool {
		ds, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return false
		}
		d := ds[group]
		if d.Err != nil || d.State != "Stable" || len(d.Members) != len(ms) || d.AssignorName != assignor {
			return false
		}
		server := map[int32]int{}
		for _, m := range d.Members {
			if m.MemberEpoch != d.AssignmentEpoch {
				return false
			}
			m.Assignment.Each(func(_ string, p int32) { server[p]++ })
		}
		client := map[int32]int{}
		for _, m := range ms {
			for _, p := range m.assigned() {
				client[p]++
			}
		}
		if len(server) != partitions || len(client) != partitions {
			return false
		}
		for p := range int32(partitions) {
			if server[p] != 1 || client[p] != 1 {
				return false
			}
		}
		return true
	})
}

// checkOnce waits for the n records produced with prefix and fails if any was consumed
// twice or not at all.
func checkOnce(t *testing.T, ms []*member848, prefix string, n int) {
	t.Helper()
	count := func() (total int, distinct map[string]bool) {
		distinct = map[string]bool{}
		for _, m := range ms {
			for _, r := range m.got() {
				if v := string(r.Value); strings.HasPrefix(v, prefix+"-") {
					total++
					distinct[v] = true
				}
			}
		}
		return total, distinct
	}
	waitFor(t, "records "+prefix, 30*time.Second, func() bool { total, _ := count(); return total >= n })
	if total, distinct := count(); total != n || len(distinct) != n {
		t.Fatalf("records %s: consumed %d, %d distinct, want %d", prefix, total, len(distinct), n)
	}
}

// TestConsumerGroup848 drives KIP-848 groups with franz-go's ServerSideBalancer: members
// share a topic, a joining member takes partitions only from members that must give some
// up (they keep the rest throughout), a leaving member hands its partitions over, and
// committed offsets survive a broker restart.
func TestConsumerGroup848(t *testing.T) {
	for _, a := range []struct {
		assignor string
		bal      kgo.GroupBalancer
	}{
		{"uniform", kgo.CooperativeStickyBalancer()}, // franz-go asks for "uniform" for sticky balancers
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(a.assignor, func(t *testing.T) {
			b := testkit.StartBroker(t, groups848Config)
			const topic, partitions = "orders", 6
			group := "g848-" + a.assignor
			createTopic(t, b.Addr, topic, partitions, nil)
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			adm := kadm.NewClient(client(t, b.Addr))

			var ms []*member848
			for range 3 {
				ms = append(ms, start848(t, ctx, b.Addr, group, topic, a.bal))
			}
			waitSettled(t, ctx, adm, group, a.assignor, ms, partitions)
			produceKeyed(t, b.Addr, topic, 300, "one")
			checkOnce(t, ms, "one", 300)

			// A fourth member joins. Every partition an original member keeps must never
			// have been revoked from it: no member pauses what it keeps.
			before := make([][]int32, len(ms))
			marks := make([]int, len(ms))
			for i, m := range ms {
				before[i], marks[i] = m.assigned(), m.revokedCount()
			}
			joined := time.Now()
			ms = append(ms, start848(t, ctx, b.Addr, group, topic, a.bal))
			waitSettled(t, ctx, adm, group, a.assignor, ms, partitions)
			t.Logf("a join settled in %v", time.Since(joined).Round(time.Millisecond)) // informative only
			moved := 0
			for i, m := range ms[:3] {
				after := m.assigned()
				for _, p := range m.revokedSince(marks[i]) {
					if slices.Contains(after, p) {
						t.Errorf("member %d: partition %d revoked although it kept it (before %v, after %v)", i, p, before[i], after)
					}
					if !slices.Contains(before[i], p) {
						t.Errorf("member %d: partition %d revoked but never assigned", i, p)
					}
				}
				for _, p := range before[i] {
					if !slices.Contains(after, p) {
						moved++
					}
				}
			}
			if a.assignor == "uniform" && moved != 1 {
				// 2,2,2 becomes 2,2,1,1: a sticky assignor moves exactly one partition.
				t.Errorf("uniform assignor moved %d partitions on a join, want 1", moved)
			}
			produceKeyed(t, b.Addr, topic, 300, "two")
			checkOnce(t, ms, "two", 300)

			// The first member leaves; the others take over its partitions.
			ms[0].cl.CommitUncommittedOffsets(ctx)
			ms[0].cl.Close()
			ms = ms[1:]
			waitSettled(t, ctx, adm, group, a.assignor, ms, partitions)
			produceKeyed(t, b.Addr, topic, 300, "three")
			checkOnce(t, ms, "three", 300)

			// Listed as a consumer group.
			ls, err := adm.ListGroups(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if l, ok := ls[group]; !ok || l.ProtocolType != "consumer" || l.State != "Stable" {
				t.Fatalf("ListGroups: %+v", ls[group])
			}

			// Committed offsets survive a restart.
			for _, m := range ms {
				if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
					t.Fatal(err)
				}
				m.cl.Close()
			}
			committed := func() int64 {
				// Right after a restart the coordinator may still be loading: retry what
				// a client retries.
				os, err := adm.FetchOffsets(ctx, group)
				for deadline := time.Now().Add(10 * time.Second); err != nil && kerr.IsRetriable(err) && time.Now().Before(deadline); {
					time.Sleep(100 * time.Millisecond)
					os, err = adm.FetchOffsets(ctx, group)
				}
				if err != nil {
					t.Fatal(err)
				}
				var sum int64
				os.Each(func(o kadm.OffsetResponse) { sum += o.At })
				return sum
			}
			if n := committed(); n != 900 {
				t.Fatalf("committed offsets sum to %d, want 900", n)
			}
			b.Restart()
			adm = kadm.NewClient(client(t, b.Addr))
			if n := committed(); n != 900 {
				t.Fatalf("after restart, committed offsets sum to %d, want 900", n)
			}
			m := start848(t, ctx, b.Addr, group, topic, a.bal)
			waitSettled(t, ctx, adm, group, a.assignor, []*member848{m}, partitions)
			produceKeyed(t, b.Addr, topic, 50, "four")
			checkOnce(t, []*member848{m}, "four", 50)
			for _, r := range m.got() {
				if !strings.HasPrefix(string(r.Value), "four-") {
					t.Fatalf("after restart the group re-read %q", r.Value)
				}
			}
		})
	}
}

// TestConsumerGroup848Regex subscribes by regular expression (ConsumerGroupHeartbeat v1):
// the broker resolves it against whole topic names, including topics created later.
func TestConsumerGroup848Regex(t *testing.T) {
	b := testkit.StartBroker(t, groups848Config)
	createTopic(t, b.Addr, "metrics-a", 2, nil)
	createTopic(t, b.Addr, "other", 2, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	c := startGroupConsumer(t, ctx, b.Addr, "g848-regex", "metrics-.*", kgo.ConsumeRegex(), kgo.ServerSideBalancer(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()))
	defer c.cl.Close()
	adm := kadm.NewClient(client(t, b.Addr))
	waitFor(t, "metrics-a assigned", 30*time.Second, func() bool {
		ds, err := adm.DescribeConsumerGroups(ctx, "g848-regex")
		d := ds["g848-regex"]
		if err != nil || d.State != "Stable" {
			return false
		}
		return len(d.AssignedPartitions()["metrics-a"]) == 2
	})
	createTopic(t, b.Addr, "metrics-b", 2, nil)
	produceKeyed(t, b.Addr, "metrics-a", 20, "a")
	produceKeyed(t, b.Addr, "metrics-b", 20, "b")
	produceKeyed(t, b.Addr, "other", 20, "o")
	waitFor(t, "metrics-a and metrics-b consumed", 30*time.Second, func() bool {
		n := map[string]int{}
		for _, r := range c.got() {
			n[r.Topic]++
		}
		return n["metrics-a"] == 20 && n["metrics-b"] == 20
	})
	for _, r := range c.got() {
		if r.Topic == "other" {
			t.Fatal("consumed a topic the regex does not match")
		}
	}
}
