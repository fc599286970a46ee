package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// groupBrokerConfig lets groups form fast and members die fast.
var groupBrokerConfig = map[string]string{
	"group.initial.rebalance.delay.ms": "0",
	"group.min.session.timeout.ms":     "1000",
}

func TestGroupOffsetCommitFetchAdmin(t *testing.T) {
	b := testkit.StartBroker(t, groupBrokerConfig)
	createTopic(t, b.Addr, "parties", 3, nil)
	adm := kadm.NewClient(client(t, b.Addr))
	ctx := ctxT(t)
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "parties", Partition: 0, At: 42, LeaderEpoch: 3, Metadata: "hello"})
	os.Add(kadm.Offset{Topic: "parties", Partition: 2, At: 7, LeaderEpoch: -1})
	resp, err := adm.CommitOffsets(ctx, "simple", os)
	if err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	fetched, err := adm.FetchOffsets(ctx, "simple")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch: %v %v", err, fetched.Error())
	}
	o, ok := fetched.Lookup("parties", 0)
	if !ok || o.At != 42 || o.LeaderEpoch != 3 || o.Metadata != "hello" {
		t.Fatalf("partition 0: %+v %v", o, ok)
	}
	if o, ok := fetched.Lookup("parties", 2); !ok || o.At != 7 {
		t.Fatalf("partition 2: %+v %v", o, ok)
	}
	if _, ok := fetched.Lookup("parties", 1); ok {
		t.Fatalf("partition 1 has an offset it was never given")
	}

	b.Restart()
	adm = kadm.NewClient(client(t, b.Addr))
	fetched, err = adm.FetchOffsets(ctx, "simple")
	if err != nil || fetched.Error() != nil {
		t.Fatalf("fetch after restart: %v %v", err, fetched.Error())
	}
	if o, ok := fetched.Lookup("parties", 0); !ok || o.At != 42 || o.Metadata != "hello" {
		t.Fatalf("after restart partition 0: %+v %v", o, ok)
	}

	groups, err := adm.ListGroups(ctx)
	if err != nil || len(groups) != 1 || groups["simple"].State != "Empty" {
		t.Fatalf("list: %v %+v", err, groups)
	}
	dr, err := adm.DeleteOffsets(ctx, "simple", kadm.TopicsSet{"parties": {2: struct{}{}}})
	if err != nil || dr.Error() != nil {
		t.Fatalf("delete offsets: %v %v", err, dr.Error())
	}
	del, err := adm.DeleteGroups(ctx, "simple")
	if err != nil || del.Error() != nil {
		t.Fatalf("delete group: %v %v", err, del.Error())
	}
	fetched, _ = adm.FetchOffsets(ctx, "simple")
	if _, ok := fetched.Lookup("parties", 0); ok {
		t.Fatalf("offsets survived the group's deletion")
	}
}

// groupConsumer consumes topic in group until its context ends, recording what it received.
type groupConsumer struct {
	cl   *kgo.Client
	mu   sync.Mutex
	recs []*kgo.Record
}

func (c *groupConsumer) got() []*kgo.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*kgo.Record(nil), c.recs...)
}

func startGroupConsumer(t *testing.T, ctx context.Context, addr, group, topic string, opts ...kgo.Opt) *groupConsumer {
	t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6 * time.Second),
		kgo.HeartbeatInterval(500 * time.Millisecond), kgo.FetchMaxWait(200 * time.Millisecond)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := &groupConsumer{cl: cl}
	go func() {
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() {
				return
			}
			c.mu.Lock()
			c.recs = append(c.recs, fs.Records()...)
			c.mu.Unlock()
		}
	}()
	return c
}

func produceKeyed(t *testing.T, addr, topic string, n int, prefix string) {
	t.Helper()
	cl := client(t, addr, kgo.RequiredAcks(kgo.AllISRAcks()))
	var recs []*kgo.Record
	for i := 0; i < n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("key-%d", i%101)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGroupBalancers(t *testing.T) {
	for _, bal := range []struct {
		name string
		b    kgo.GroupBalancer
	}{
		{"range", kgo.RangeBalancer()},
		{"roundrobin", kgo.RoundRobinBalancer()},
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			b := testkit.StartBroker(t, groupBrokerConfig)
			createTopic(t, b.Addr, "parties", 6, nil)
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			var cs []*groupConsumer
			for i := 0; i < 3; i++ {
				c := startGroupConsumer(t, ctx, b.Addr, "g-"+bal.name, "parties", kgo.Balancers(bal.b))
				defer c.cl.Close()
				cs = append(cs, c)
			}
			adm := kadm.NewClient(client(t, b.Addr))
			waitFor(t, "3 members with 2 partitions each", 30*time.Second, func() bool {
				ds, err := adm.DescribeGroups(ctx, "g-"+bal.name)
				if err != nil {
					return false
				}
				d := ds["g-"+bal.name]
				if d.State != "Stable" || len(d.Members) != 3 {
					return false
				}
				for _, m := range d.Members {
					ca, ok := m.Assigned.AsConsumer()
					if !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) != 2 {
						return false
					}
				}
				return true
			})
			produceKeyed(t, b.Addr, "parties", 300, "r")
			waitFor(t, "every record consumed once", 30*time.Second, func() bool {
				n := 0
				for _, c := range cs {
					n += len(c.got())
				}
				return n >= 300
			})
			total := 0
			seen := map[string]bool{}
			for _, c := range cs {
				for _, r := range c.got() {
					total++
					seen[string(r.Value)] = true
				}
			}
			if total != 300 || len(seen) != 300 {
				t.Fatalf("consumed %d records, %d distinct, want 300", total, len(seen))
			}
		})
	}
}

// describeAssigned returns, per member of a stable group, the partitions of topic it owns.
func describeAssigned(ctx context.Context, adm *kadm.Client, group, topic string) (map[string][]int32, bool) {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil, false
	}
	d := ds[group]
	if d.State != "Stable" {
		return nil, false
	}
	out := map[string][]int32{}
	for _, m := range d.Members {
		ca, ok := m.Assigned.AsConsumer()
		if !ok {
			return nil, false
		}
		out[m.MemberID] = nil
		for _, t := range ca.Topics {
			if t.Topic == topic {
				out[m.MemberID] = append(out[m.MemberID], t.Partitions...)
			}
		}
	}
	return out, true
}

// TestGroupSeedScenario is the seed's example: topic parties with 11 partitions; group nerds
// with 11 members, one partition each; group hairy with one member receiving everything;
// keyed records always reach the same member; a member that dies without leaving hands its
// partition over after its session timeout; a broker restart keeps committed offsets.
func TestGroupSeedScenario(t *testing.T) {
	b := testkit.StartBroker(t, groupBrokerConfig)
	createTopic(t, b.Addr, "parties", 11, nil)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	adm := kadm.NewClient(client(t, b.Addr))

	var nerds []*groupConsumer
	for i := 0; i < 11; i++ {
		var opts []kgo.Opt
		if i == 0 {
			// Static: closing it sends no LeaveGroup, so it dies as a crashed process would.
			opts = append(opts, kgo.InstanceID("nerd-0"))
		}
		c := startGroupConsumer(t, ctx, b.Addr, "nerds", "parties", opts...)
		defer c.cl.Close()
		nerds = append(nerds, c)
	}
	hairy := startGroupConsumer(t, ctx, b.Addr, "hairy", "parties")
	defer hairy.cl.Close()

	waitFor(t, "nerds: 11 members with one partition each", 60*time.Second, func() bool {
		a, ok := describeAssigned(ctx, adm, "nerds", "parties")
		if !ok || len(a) != 11 {
			return false
		}
		for _, ps := range a {
			if len(ps) != 1 {
				return false
			}
		}
		return true
	})
	waitFor(t, "hairy: one member with every partition", 30*time.Second, func() bool {
		a, ok := describeAssigned(ctx, adm, "hairy", "parties")
		if !ok || len(a) != 1 {
			return false
		}
		for _, ps := range a {
			return len(ps) == 11
		}
		return false
	})

	count := func(cs []*groupConsumer) int {
		n := 0
		for _, c := range cs {
			n += len(c.got())
		}
		return n
	}
	produceKeyed(t, b.Addr, "parties", 220, "first")
	waitFor(t, "220 records in each group", 30*time.Second, func() bool {
		return count(nerds) >= 220 && len(hairy.got()) >= 220
	})
	if n, h := count(nerds), len(hairy.got()); n != 220 || h != 220 {
		t.Fatalf("nerds got %d, hairy got %d; want 220 each", n, h)
	}
	owner := map[string]int{}
	for i, c := range nerds {
		parts := map[int32]bool{}
		for _, r := range c.got() {
			parts[r.Partition] = true
			if o, ok := owner[string(r.Key)]; ok && o != i {
				t.Fatalf("key %s reached members %d and %d", r.Key, o, i)
			}
			owner[string(r.Key)] = i
		}
		if len(parts) > 1 {
			t.Fatalf("nerd %d received records of partitions %v", i, parts)
		}
	}

	// nerd-0 dies: its partition moves to another member after the session timeout.
	nerds[0].cl.Close()
	waitFor(t, "nerds: 10 members owning all 11 partitions", 40*time.Second, func() bool {
		a, ok := describeAssigned(ctx, adm, "nerds", "parties")
		if !ok || len(a) != 10 {
			return false
		}
		n := 0
		for _, ps := range a {
			n += len(ps)
		}
		return n == 11
	})
	before := count(nerds[1:])
	produceKeyed(t, b.Addr, "parties", 110, "second")
	waitFor(t, "the survivors consume every new record", 30*time.Second, func() bool {
		return count(nerds[1:]) >= before+110
	})

	// Everyone leaves (committing), the broker restarts, and a new member resumes where
	// the group stopped.
	for _, c := range nerds[1:] {
		c.cl.Close()
	}
	hairy.cl.Close()
	committed, err := adm.FetchOffsets(ctx, "nerds")
	if err != nil || committed.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, committed.Error())
	}
	b.Restart()
	adm = kadm.NewClient(client(t, b.Addr))
	var after kadm.OffsetResponses
	waitFor(t, "offsets served after restart", 30*time.Second, func() bool {
		after, err = adm.FetchOffsets(ctx, "nerds")
		return err == nil && after.Error() == nil
	})
	total := int64(0)
	for p := int32(0); p < 11; p++ {
		o1, ok1 := committed.Lookup("parties", p)
		o2, ok2 := after.Lookup("parties", p)
		if ok1 != ok2 || o1.At != o2.At {
			t.Fatalf("partition %d: committed %+v before restart, %+v after", p, o1, o2)
		}
		total += o2.At
	}
	if total != 330 {
		t.Fatalf("committed offsets sum to %d, want 330", total)
	}
	ctx2, cancel2 := context.WithCancel(ctxT(t))
	defer cancel2()
	again := startGroupConsumer(t, ctx2, b.Addr, "nerds", "parties")
	defer again.cl.Close()
	produceKeyed(t, b.Addr, "parties", 11, "third")
	waitFor(t, "the new member reads only the new records", 30*time.Second, func() bool { return len(again.got()) >= 11 })
	time.Sleep(300 * time.Millisecond) // a poll or two more: nothing older may arrive
	for _, r := range again.got() {
		if !strings.HasPrefix(string(r.Value), "third-") {
			t.Fatalf("after restart the group re-read %s", r.Value)
		}
	}
}
