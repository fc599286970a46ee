package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

// Hand-built cluster images: brokers registered in the entry at index 10,
// so every broker's epoch is 10. Topic "t" has id 10.

const ep = 10

var tID = id(10)

func broker(n int32, rack string) metadata.Record {
	r := metadata.RegisterBrokerRecord{BrokerID: n, IncarnationID: id(byte(n))}
	if rack != "" {
		r.Rack = &rack
	}
	return r
}

func fence(n int32) metadata.Record {
	return metadata.BrokerRegistrationChangeRecord{BrokerID: n, BrokerEpoch: ep, Fenced: metadata.SetTrue, InControlledShutdown: metadata.Unchanged}
}

func shutting(n int32) metadata.Record {
	return metadata.BrokerRegistrationChangeRecord{BrokerID: n, BrokerEpoch: ep, Fenced: metadata.Unchanged, InControlledShutdown: metadata.SetTrue}
}

func part(n int32, replicas, isr []int32, leader int32, elr ...int32) metadata.Record {
	return metadata.PartitionRecord{TopicID: tID, Partition: n, Replicas: replicas, ISR: isr, Leader: leader, ELR: elr}
}

func topicConfig(k, v string) metadata.Record {
	return metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "t", Name: k, Value: &v}
}

// cluster folds brokers 1..3 and topic t with the given partitions and extra
// records (fences, configs) at index 10.
func cluster(t *testing.T, recs ...metadata.Record) *metadata.Image {
	t.Helper()
	all := []metadata.Record{broker(1, ""), broker(2, ""), broker(3, ""), metadata.TopicRecord{Name: "t", ID: tID}}
	img, err := metadata.Empty().Fold(ep, append(all, recs...))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func r(ids ...int32) []int32 { return ids }

// state renders topic t's partitions and the brokers' flags compactly.
func state(img *metadata.Image) string {
	var b strings.Builder
	for _, br := range img.Brokers() {
		switch {
		case br.Fenced:
			fmt.Fprintf(&b, "b%d:fenced ", br.ID)
		case br.InControlledShutdown:
			fmt.Fprintf(&b, "b%d:shutdown ", br.ID)
		}
	}
	for _, p := range img.Topic("t").Partitions {
		fmt.Fprintf(&b, "| p%d r=%v isr=%v l=%d", p.ID, p.Replicas, p.ISR, p.Leader)
		if p.ELR != nil {
			fmt.Fprintf(&b, " elr=%v", p.ELR)
		}
		if p.LastKnownELR != nil {
			fmt.Fprintf(&b, " lastelr=%v", p.LastKnownELR)
		}
		if p.AddingReplicas != nil || p.RemovingReplicas != nil {
			fmt.Fprintf(&b, " adding=%v removing=%v", p.AddingReplicas, p.RemovingReplicas)
		}
		b.WriteString(" ")
	}
	return strings.TrimSpace(b.String())
}

// fold applies decided records as the next entry; they must fold.
func fold(t *testing.T, img *metadata.Image, recs []metadata.Record) *metadata.Image {
	t.Helper()
	if len(recs) == 0 {
		return img
	}
	next, err := img.Fold(img.AppliedIndex()+1, recs)
	if err != nil {
		t.Fatalf("decided records do not fold: %v", err)
	}
	return next
}

func TestHeartbeatTransitions(t *testing.T) {
	cases := []struct {
		name  string
		img   []metadata.Record
		hb    Heartbeat
		want  string
		res   HeartbeatResult
		err   error
		nrecs int // -1: any
	}{
		{name: "fence the leader: ISR member takes over, ISR shrinks",
			img:  []metadata.Record{part(0, r(1, 2, 3), r(1, 2, 3), 1)},
			hb:   Heartbeat{BrokerID: 1, BrokerEpoch: ep, MetadataOffset: ep, WantFence: true},
			want: "b1:fenced | p0 r=[1 2 3] isr=[2 3] l=2", res: HeartbeatResult{IsCaughtUp: true, IsFenced: true}, nrecs: 2},
		{name: "fence the last ISR member: no leader, ISR keeps it",
			img:  []metadata.Record{part(0, r(1, 2), r(1), 1)},
			hb:   Heartbeat{BrokerID: 1, BrokerEpoch: ep, WantFence: true},
			want: "b1:fenced | p0 r=[1 2] isr=[1] l=-1", res: HeartbeatResult{IsFenced: true}, nrecs: 2},
		{name: "fence a follower: it leaves the ISR",
			img:  []metadata.Record{part(0, r(1, 2), r(1, 2), 1), part(1, r(3), r(3), 3)},
			hb:   Heartbeat{BrokerID: 2, BrokerEpoch: ep, WantFence: true},
			want: "b2:fenced | p0 r=[1 2] isr=[1] l=1 | p1 r=[3] isr=[3] l=3", res: HeartbeatResult{IsFenced: true}, nrecs: 2},
		{name: "fence below min ISR: the removed member joins the ELR",
			img:  []metadata.Record{topicConfig("min.insync.replicas", "2"), part(0, r(1, 2, 3), r(1, 2), 1)},
			hb:   Heartbeat{BrokerID: 2, BrokerEpoch: ep, WantFence: true},
			want: "b2:fenced | p0 r=[1 2 3] isr=[1] l=1 elr=[2]", res: HeartbeatResult{IsFenced: true}, nrecs: 2},
		{name: "fence last ISR member with unclean election enabled",
			img:  []metadata.Record{topicConfig("unclean.leader.election.enable", "true"), part(0, r(1, 2), r(1), 1)},
			hb:   Heartbeat{BrokerID: 1, BrokerEpoch: ep, WantFence: true},
			want: "b1:fenced | p0 r=[1 2] isr=[2] l=2", res: HeartbeatResult{IsFenced: true}, nrecs: 2},
		{name: "fenced broker that caught up is unfenced and leads again",
			img:  []metadata.Record{fence(1), part(0, r(1, 2), r(1), -1), part(1, r(2, 1), r(2, 1), 2)},
			hb:   Heartbeat{BrokerID: 1, BrokerEpoch: ep, MetadataOffset: ep},
			want: "| p0 r=[1 2] isr=[1] l=1 | p1 r=[2 1] isr=[2 1] l=2", res: HeartbeatResult{IsCaughtUp: true}, nrecs: 2},
		{name: "fenced broker behind stays fenced",
			img:  []metadata.Record{fence(1), part(0, r(1, 2), r(1), -1)},
			hb:   Heartbeat{BrokerID: 1, BrokerEpoch: ep, MetadataOffset: ep - 1},
			want: "b1:fenced | p0 r=[1 2] isr=[1] l=-1", res: HeartbeatResult{IsFenced: true}, nrecs: 0},
		{name: "unfenced ELR member is elected when no ISR member can lead",
			img: []metadata.Record{topicConfig("min.insync.replicas", "2"), fence(1), fence(2),
				part(0, r(1, 2, 3), r(1), -1, 2)},
			hb:   Heartbeat{BrokerID: 2, BrokerEpoch: ep, MetadataOffset: ep + 5},
			want: "b1:fenced | p0 r=[1 2 3] isr=[2] l=2 elr=[1]", res: HeartbeatResult{IsCaughtUp: true}, nrecs: 2},
		{name: "fenced broker asking to shut down may stop at once",
			img:  []metadata.Record{fence(1), part(0, r(1, 2), r(1), -1)},
			hb:   Heartbeat{BrokerID: 1, BrokerEpoch: ep, MetadataOffset: ep, WantShutDown: true},
			want: "b1:fenced | p0 r=[1 2] isr=[1] l=-1", res: HeartbeatResult{IsCaughtUp: true, IsFenced: true, ShouldShutDown: true}, nrecs: 0},
		{name: "unknown broker", hb: Heartbeat{BrokerID: 7, BrokerEpoch: ep}, err: ErrBrokerNotRegistered},
		{name: "stale epoch", hb: Heartbeat{BrokerID: 1, BrokerEpoch: ep - 1}, err: ErrStaleBrokerEpoch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := cluster(t, tc.img...)
			recs, res, err := decideHeartbeat(img, testOptions(), tc.hb, 0)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || recs != nil {
					t.Fatalf("err %v recs %v, want %v", err, recs, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := state(fold(t, img, recs)); got != tc.want {
				t.Errorf("state:\n got %s\nwant %s", got, tc.want)
			}
			if res != tc.res {
				t.Errorf("result %+v, want %+v", res, tc.res)
			}
			if tc.nrecs >= 0 && len(recs) != tc.nrecs {
				t.Errorf("%d records, want %d: %v", len(recs), tc.nrecs, recs)
			}
		})
	}
}

func TestControlledShutdown(t *testing.T) {
	img := cluster(t,
		part(0, r(1, 2), r(1, 2), 1), // moves to 2
		part(1, r(1), r(1), 1),       // nobody else: 1 keeps it
		part(2, r(2, 1), r(2, 1), 2), // 1 leaves the ISR
		part(3, r(1, 3), r(1, 3), 1), // 3 is fenced: 1 keeps it
		fence(3))
	o := testOptions()
	hb := Heartbeat{BrokerID: 1, BrokerEpoch: ep, MetadataOffset: ep, WantShutDown: true}
	recs, res, err := decideHeartbeat(img, o, hb, 0)
	if err != nil {
		t.Fatal(err)
	}
	img = fold(t, img, recs)
	want := "b1:shutdown b3:fenced | p0 r=[1 2] isr=[2] l=2 | p1 r=[1] isr=[1] l=1 | p2 r=[2 1] isr=[2] l=2 | p3 r=[1 3] isr=[1 3] l=1"
	if got := state(img); got != want || res.ShouldShutDown || res.IsFenced {
		t.Fatalf("after first heartbeat: %s %+v\nwant %s", got, res, want)
	}
	moved := img.AppliedIndex()

	// Until it has applied the entry that moved its partitions it waits.
	hb.MetadataOffset = moved - 1
	if recs, res, _ := decideHeartbeat(img, o, hb, moved); len(recs) != 0 || res.ShouldShutDown {
		t.Fatalf("behind: %v %+v", recs, res)
	}
	hb.MetadataOffset = moved
	if recs, res, _ := decideHeartbeat(img, o, hb, moved); len(recs) != 0 || !res.ShouldShutDown {
		t.Fatalf("caught up: %v %+v", recs, res)
	}

	// If broker 3 comes back meanwhile, partition 3 moves to it first.
	img = fold(t, img, []metadata.Record{metadata.BrokerRegistrationChangeRecord{BrokerID: 3, BrokerEpoch: ep, Fenced: metadata.SetFalse, InControlledShutdown: metadata.Unchanged}})
	recs, res, _ = decideHeartbeat(img, o, hb, moved)
	if res.ShouldShutDown || len(recs) != 1 {
		t.Fatalf("with an alternative leader: %v %+v", recs, res)
	}
	if got := state(fold(t, img, recs)); !strings.HasSuffix(got, "p3 r=[1 3] isr=[3] l=3") {
		t.Fatalf("partition 3 not moved: %s", got)
	}
	// A broker in controlled shutdown is not unfenced or re-elected.
	if l := firstUsable(img, r(1, 2), r(1, 2), -1); l != 2 {
		t.Fatalf("shutting-down broker is eligible: %d", l)
	}
}

func TestDecideRegisterBroker(t *testing.T) {
	o := testOptions()
	img := cluster(t, part(0, r(1, 2), r(1, 2), 1))
	// Same incarnation: nothing written, current epoch returned.
	recs, epoch, err := decideRegisterBroker(img, o, metadata.RegisterBrokerRecord{BrokerID: 1, IncarnationID: id(1)})
	if err != nil || recs != nil || epoch != ep {
		t.Fatalf("idempotent registration: %v %d %v", recs, epoch, err)
	}
	// A new broker is registered fenced.
	recs, _, err = decideRegisterBroker(img, o, metadata.RegisterBrokerRecord{BrokerID: 4, IncarnationID: id(44)})
	if err != nil || len(recs) != 1 || !recs[0].(metadata.RegisterBrokerRecord).Fenced {
		t.Fatalf("new registration: %v %v", recs, err)
	}
	// A restarted leader loses its leadership and ISR place in the same entry.
	recs, _, err = decideRegisterBroker(img, o, metadata.RegisterBrokerRecord{BrokerID: 1, IncarnationID: id(99)})
	if err != nil {
		t.Fatal(err)
	}
	next := fold(t, img, recs)
	if got := state(next); got != "b1:fenced | p0 r=[1 2] isr=[2] l=2" || next.Broker(1).Epoch != int64(next.AppliedIndex()) {
		t.Fatalf("re-registration: %s epoch %d", got, next.Broker(1).Epoch)
	}
	if _, _, err := decideRegisterBroker(img, o, metadata.RegisterBrokerRecord{BrokerID: -1}); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("negative id: %v", err)
	}
}

func TestDecideAlterPartition(t *testing.T) {
	base := []metadata.Record{
		part(0, r(1, 2, 3), r(1, 2), 1),
		metadata.PartitionChangeRecord{TopicID: tID, Partition: 0, Leader: metadata.NoLeaderChange}, // partition epoch 1
	}
	ch := func(isr ...int32) ISRChange {
		return ISRChange{TopicID: tID, Partition: 0, LeaderEpoch: 0, PartitionEpoch: 1, NewISR: isr}
	}
	cases := []struct {
		name    string
		extra   []metadata.Record
		broker  int32
		epoch   int64
		changes []ISRChange
		want    []error
		state   string
	}{
		{name: "expand", broker: 1, epoch: ep, changes: []ISRChange{ch(1, 2, 3)}, want: []error{nil}, state: "| p0 r=[1 2 3] isr=[1 2 3] l=1"},
		{name: "shrink", broker: 1, epoch: ep, changes: []ISRChange{ch(1)}, want: []error{nil}, state: "| p0 r=[1 2 3] isr=[1] l=1"},
		{name: "shrink below min ISR fills the ELR", extra: []metadata.Record{topicConfig("min.insync.replicas", "2")},
			broker: 1, epoch: ep, changes: []ISRChange{ch(1)}, want: []error{nil}, state: "| p0 r=[1 2 3] isr=[1] l=1 elr=[2]"},
		{name: "unchanged writes nothing", broker: 1, epoch: ep, changes: []ISRChange{ch(2, 1)}, want: []error{nil}, state: "-"},
		{name: "stale broker epoch", broker: 1, epoch: ep - 1, changes: []ISRChange{ch(1)}, want: []error{ErrStaleBrokerEpoch}},
		{name: "unregistered broker", broker: 9, epoch: ep, changes: []ISRChange{ch(1)}, want: []error{ErrBrokerNotRegistered}},
		{name: "not the leader", broker: 2, epoch: ep, changes: []ISRChange{ch(2)}, want: []error{ErrNotLeaderOrFollower}},
		{name: "old leader epoch", broker: 1, epoch: ep, changes: []ISRChange{{TopicID: tID, LeaderEpoch: -1, PartitionEpoch: 1, NewISR: r(1)}}, want: []error{ErrFencedLeaderEpoch}},
		{name: "old partition epoch", broker: 1, epoch: ep, changes: []ISRChange{{TopicID: tID, PartitionEpoch: 0, NewISR: r(1)}}, want: []error{ErrInvalidUpdateVersion}},
		{name: "ISR without the leader", broker: 1, epoch: ep, changes: []ISRChange{ch(2)}, want: []error{ErrInvalidRequest}},
		{name: "ISR with a non-replica", broker: 1, epoch: ep, changes: []ISRChange{ch(1, 4)}, want: []error{ErrInvalidRequest}},
		{name: "fenced broker cannot join", extra: []metadata.Record{fence(3)}, broker: 1, epoch: ep, changes: []ISRChange{ch(1, 2, 3)}, want: []error{ErrIneligibleReplica}},
		{name: "shutting-down broker cannot join", extra: []metadata.Record{shutting(3)}, broker: 1, epoch: ep, changes: []ISRChange{ch(1, 2, 3)}, want: []error{ErrIneligibleReplica}},
		{name: "unknown topic id and partition", broker: 1, epoch: ep,
			changes: []ISRChange{{TopicID: id(77), NewISR: r(1)}, {TopicID: tID, Partition: 5, NewISR: r(1)}},
			want:    []error{ErrUnknownTopicID, ErrUnknownTopic}},
		{name: "duplicate partition", broker: 1, epoch: ep, changes: []ISRChange{ch(1), ch(1, 2)}, want: []error{ErrInvalidRequest, ErrInvalidRequest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := cluster(t, append(base, tc.extra...)...)
			recs, res, err := decideAlterPartition(img, testOptions(), tc.broker, tc.epoch, tc.changes)
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range res {
				if (tc.want[i] == nil) != (r.Err == nil) || (r.Err != nil && !errors.Is(r.Err, tc.want[i])) {
					t.Errorf("change %d: err %v, want %v", i, r.Err, tc.want[i])
				}
			}
			next := fold(t, img, recs)
			switch {
			case tc.state == "-" || tc.state == "":
				if len(recs) != 0 {
					t.Errorf("records written: %v", recs)
				}
			case state(next) != tc.state:
				t.Errorf("state %s, want %s", state(next), tc.state)
			}
			if tc.want[0] == nil && !reflect.DeepEqual(res[0].Partition, next.Topic("t").Partitions[0]) {
				t.Errorf("result partition %+v is not the new state", res[0].Partition)
			}
			if tc.want[0] != nil && tc.want[0] != ErrUnknownTopicID && res[0].Partition.PartitionEpoch != 1 {
				t.Errorf("failed result does not carry the current state: %+v", res[0].Partition)
			}
		})
	}
}

func TestDecideElectLeaders(t *testing.T) {
	img := cluster(t,
		part(0, r(1, 2), r(1, 2), 2), // preferred 1 can take over
		part(1, r(1, 2), r(1, 2), 1), // already preferred
		part(2, r(3, 2), r(2), 2),    // preferred not in ISR
		part(3, r(1, 3), r(3), -1),   // leaderless; 3 fenced, 1 not in ISR
		part(4, r(3, 2), r(3, 2), 2), // preferred 3 fenced
		part(5, r(2, 1), r(2, 1), 2), // nothing to do
		fence(3))
	o := testOptions()
	tp := func(ps ...int32) []TopicPartition {
		var out []TopicPartition
		for _, p := range ps {
			out = append(out, TopicPartition{Topic: "t", Partition: p})
		}
		return out
	}
	recs, res := decideElectLeaders(img, o, false, append(tp(0, 1, 2, 4), TopicPartition{Topic: "nope"}))
	want := []error{nil, ErrElectionNotNeeded, ErrPreferredLeaderNotAvailable, ErrPreferredLeaderNotAvailable, ErrUnknownTopic}
	for i, r := range res {
		if (want[i] == nil) != (r.Err == nil) || (r.Err != nil && !errors.Is(r.Err, want[i])) {
			t.Errorf("preferred %d: %v, want %v", i, r.Err, want[i])
		}
	}
	if got := state(fold(t, img, recs)); !strings.Contains(got, "p0 r=[1 2] isr=[1 2] l=1 ") {
		t.Errorf("preferred election: %s", got)
	}

	// Every partition: those needing no election are left out.
	_, res = decideElectLeaders(img, o, false, nil)
	var names []string
	for _, r := range res {
		names = append(names, fmt.Sprintf("%d:%v", r.Partition, r.Err == nil))
	}
	if got := strings.Join(names, " "); got != "0:true 2:false 3:false 4:false" {
		t.Errorf("all partitions: %s", got)
	}

	// Unclean: only leaderless partitions, any usable replica.
	recs, res = decideElectLeaders(img, o, true, tp(3, 0))
	if res[0].Err != nil || !errors.Is(res[1].Err, ErrElectionNotNeeded) {
		t.Fatalf("unclean: %+v", res)
	}
	if got := state(fold(t, img, recs)); !strings.Contains(got, "p3 r=[1 3] isr=[1] l=1 ") {
		t.Errorf("unclean election: %s", got)
	}
	img2 := fold(t, img, []metadata.Record{fence(1)})
	if _, res := decideElectLeaders(img2, o, true, tp(3)); !errors.Is(res[0].Err, ErrEligibleLeadersNotAvailable) {
		t.Errorf("unclean with nobody: %v", res[0].Err)
	}
}

func TestReassignment(t *testing.T) {
	o := testOptions()
	img := cluster(t, broker(4, ""), part(0, r(1, 2), r(1, 2), 1))
	// Move from [1 2] to [3 4]: 3 and 4 are added, 1 and 2 leave at the end.
	recs, res := decideAlterReassignments(img, o, []Reassignment{{Topic: "t", Partition: 0, Replicas: r(3, 4)}})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	img = fold(t, img, recs)
	if got := state(img); got != "| p0 r=[3 4 1 2] isr=[1 2] l=1 adding=[3 4] removing=[1 2]" {
		t.Fatalf("started: %s", got)
	}
	if l := listReassignments(img, nil); len(l) != 1 || !reflect.DeepEqual(l[0].Adding, r(3, 4)) || l[0].Topic != "t" {
		t.Fatalf("list: %+v", l)
	}
	// 3 catches up: not complete yet.
	p := img.Topic("t").Partitions[0]
	recs, ires, err := decideAlterPartition(img, o, 1, ep, []ISRChange{{TopicID: tID, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: r(1, 2, 3)}})
	if err != nil || ires[0].Err != nil {
		t.Fatal(err, ires[0].Err)
	}
	img = fold(t, img, recs)
	if got := state(img); got != "| p0 r=[3 4 1 2] isr=[1 2 3] l=1 adding=[3 4] removing=[1 2]" {
		t.Fatalf("3 in sync: %s", got)
	}
	// 4 catches up: the reassignment completes in the same change and the
	// leader moves to the target.
	p = img.Topic("t").Partitions[0]
	recs, ires, _ = decideAlterPartition(img, o, 1, ep, []ISRChange{{TopicID: tID, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: r(1, 2, 3, 4)}})
	img = fold(t, img, recs)
	if got := state(img); got != "| p0 r=[3 4] isr=[3 4] l=3" || ires[0].Partition.Leader != 3 {
		t.Fatalf("completed: %s %+v", got, ires[0])
	}
	if l := listReassignments(img, nil); l != nil {
		t.Fatalf("still listed: %+v", l)
	}

	cases := []struct {
		name  string
		start string // state of p0 built from recs
		recs  []metadata.Record
		req   Reassignment
		err   error
		want  string
	}{
		{name: "shrink completes at once", recs: []metadata.Record{part(0, r(1, 2, 3), r(1, 2, 3), 1)},
			req: Reassignment{Topic: "t", Replicas: r(2, 3)}, want: "| p0 r=[2 3] isr=[2 3] l=2"},
		{name: "reorder only", recs: []metadata.Record{part(0, r(1, 2), r(1, 2), 1)},
			req: Reassignment{Topic: "t", Replicas: r(2, 1)}, want: "| p0 r=[2 1] isr=[1 2] l=1"},
		{name: "cancel reverts", recs: []metadata.Record{part(0, r(3, 1, 2), r(1, 2), 1),
			metadata.PartitionChangeRecord{TopicID: tID, Leader: metadata.NoLeaderChange, AddingReplicas: r(3), RemovingReplicas: r(2)}},
			req: Reassignment{Topic: "t"}, want: "| p0 r=[1 2] isr=[1 2] l=1"},
		{name: "cancel without reassignment", recs: []metadata.Record{part(0, r(1, 2), r(1, 2), 1)},
			req: Reassignment{Topic: "t"}, err: ErrNoReassignmentInProgress},
		{name: "unregistered target", recs: []metadata.Record{part(0, r(1, 2), r(1, 2), 1)},
			req: Reassignment{Topic: "t", Replicas: r(1, 9)}, err: ErrInvalidReplicaAssignment},
		{name: "repeated target", recs: []metadata.Record{part(0, r(1, 2), r(1, 2), 1)},
			req: Reassignment{Topic: "t", Replicas: r(1, 1)}, err: ErrInvalidReplicaAssignment},
		{name: "unknown partition", recs: []metadata.Record{part(0, r(1, 2), r(1, 2), 1)},
			req: Reassignment{Topic: "t", Partition: 3, Replicas: r(1)}, err: ErrUnknownTopic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := cluster(t, tc.recs...)
			recs, res := decideAlterReassignments(img, o, []Reassignment{tc.req})
			if tc.err != nil {
				if !errors.Is(res[0].Err, tc.err) || len(recs) != 0 {
					t.Fatalf("err %v recs %v, want %v", res[0].Err, recs, tc.err)
				}
				return
			}
			if res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
			if got := state(fold(t, img, recs)); got != tc.want {
				t.Fatalf("state %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPlacementRackAware(t *testing.T) {
	o := testOptions()
	img, err := metadata.Empty().Fold(ep, []metadata.Record{
		broker(1, "a"), broker(2, "a"), broker(3, "b"), broker(4, "b"), broker(5, "c"), broker(6, "c"), broker(7, "c"),
		fence(7),
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, res := decideCreateTopics(img, o, []TopicSpec{{Name: "x", NumPartitions: 6, ReplicationFactor: 3}}, false, epoch)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	rack := map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c", 7: "c"}
	leaders := map[int32]int{}
	for _, rec := range recs[1:] {
		p := rec.(metadata.PartitionRecord)
		racks := map[string]bool{}
		for _, b := range p.Replicas {
			racks[rack[b]] = true
			if b == 7 {
				t.Errorf("partition %d placed on fenced broker 7", p.Partition)
			}
		}
		if len(racks) != 3 {
			t.Errorf("partition %d replicas %v span racks %v", p.Partition, p.Replicas, racks)
		}
		if p.Leader != p.Replicas[0] || !reflect.DeepEqual(p.ISR, p.Replicas) {
			t.Errorf("partition %d: leader %d isr %v", p.Partition, p.Leader, p.ISR)
		}
		leaders[p.Leader]++
	}
	if len(leaders) != 6 {
		t.Errorf("leaders not spread over the six usable brokers: %v", leaders)
	}
	// More replicas than racks: every rack first, then the rest.
	reps := place([]placed{{1, "a"}, {2, "a"}, {3, "b"}}, 0, 0, 1, 3)
	if !reflect.DeepEqual(reps[0], r(1, 3, 2)) {
		t.Errorf("rf 3 over 2 racks: %v", reps)
	}
	// Too few usable brokers: Kafka's message.
	_, res = decideCreateTopics(img, o, []TopicSpec{{Name: "y", NumPartitions: 1, ReplicationFactor: 7}}, false, epoch)
	if !errors.Is(res[0].Err, ErrInvalidReplicationFactor) ||
		res[0].Err.Error() != "Unable to replicate the partition 7 time(s): The target replication factor of 7 cannot be reached because only 6 broker(s) are registered." {
		t.Errorf("rf 7: %v", res[0].Err)
	}
	// Manual assignment: fenced replicas stay out of the ISR; all fenced fails.
	recs, res = decideCreateTopics(img, o, []TopicSpec{{Name: "m", NumPartitions: -1, ReplicationFactor: -1,
		Assignments: map[int32][]int32{0: {7, 1}}}}, false, epoch)
	if res[0].Err != nil || !strings.HasSuffix(recString(recs[1:2]), "] 0 [7 1] [1] 1 0 0 [] [] [] []}") {
		t.Errorf("manual with fenced: %v %s", res[0].Err, recString(recs))
	}
	_, res = decideCreateTopics(img, o, []TopicSpec{{Name: "m", NumPartitions: -1, ReplicationFactor: -1,
		Assignments: map[int32][]int32{0: {7}}}}, false, epoch)
	if !errors.Is(res[0].Err, ErrInvalidReplicaAssignment) {
		t.Errorf("manual all fenced: %v", res[0].Err)
	}
}

func TestRebalance(t *testing.T) {
	o := testOptions()
	o.LeaderImbalancePercentage = 10
	img := cluster(t,
		part(0, r(1, 2), r(1, 2), 2), // 1 preferred, not leading
		part(1, r(1, 2), r(1, 2), 1),
		part(2, r(2, 1), r(2, 1), 2),
		part(3, r(3, 1), r(1), 1), // 3 preferred but not in ISR
	)
	recs := decideRebalance(img, o)
	if got := state(fold(t, img, recs)); !strings.Contains(got, "p0 r=[1 2] isr=[1 2] l=1 ") || len(recs) != 1 {
		t.Fatalf("rebalance: %s (%d records)", got, len(recs))
	}
	o.LeaderImbalancePercentage = 50 // 1 of 2 is not above 50 %
	if recs := decideRebalance(img, o); len(recs) != 0 {
		t.Fatalf("rebalance under threshold: %v", recs)
	}
}

// fakeStore is an in-memory Store: Apply folds at the next index; the test
// moves leadership and term by hand.
type fakeStore struct {
	mu     sync.Mutex
	img    *metadata.Image
	term   uint64
	leader bool
}

func (s *fakeStore) Image() *metadata.Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.img
}

func (s *fakeStore) Apply(_ context.Context, recs ...metadata.Record) (*metadata.Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.leader {
		return nil, metadata.ErrNotLeader
	}
	next, err := s.img.Fold(s.img.AppliedIndex()+1, recs)
	if err != nil {
		return nil, err
	}
	s.img = next
	return next, nil
}

func (s *fakeStore) IsLeader() bool { _, l := s.LeaderTerm(); return l }

func (s *fakeStore) LeaderTerm() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term, s.leader
}

func (s *fakeStore) setLeader(term uint64, leader bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.term, s.leader = term, leader
}

// clock is an injected time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLivenessExpiry(t *testing.T) {
	ctx := ctxT(t)
	clk := &clock{now: epoch}
	st := &fakeStore{img: cluster(t, part(0, r(1, 2), r(1, 2), 1)), term: 1, leader: true}
	o := testOptions()
	o.Now, o.SessionTimeout = clk.Now, 9*time.Second
	c := New(st, o)

	beat := func(id int32) {
		t.Helper()
		if _, err := c.Heartbeat(ctx, Heartbeat{BrokerID: id, BrokerEpoch: ep, MetadataOffset: st.Image().AppliedIndex()}); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() {
		t.Helper()
		if err := c.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick() // starts term 1: every clock starts now
	clk.Advance(5 * time.Second)
	beat(1)
	beat(2)
	beat(3)
	clk.Advance(5 * time.Second)
	beat(1) // 2 goes quiet
	beat(3)
	tick()
	if got := state(st.Image()); got != "| p0 r=[1 2] isr=[1 2] l=1" {
		t.Fatalf("fenced too early: %s", got)
	}
	clk.Advance(5 * time.Second) // 10 s since 2's last heartbeat
	tick()
	if got := state(st.Image()); got != "b2:fenced | p0 r=[1 2] isr=[1] l=1" {
		t.Fatalf("after expiry: %s", got)
	}
	if lv := c.BrokerLiveness(); lv[1].LastHeartbeat != epoch.Add(10*time.Second) || lv[2].LastHeartbeat.IsZero() {
		t.Fatalf("liveness %+v", lv)
	}

	// A new term on this node: nobody is fenced before a full session even
	// though broker 1 has been silent for long.
	clk.Advance(time.Minute)
	st.setLeader(2, true)
	tick()
	if got := state(st.Image()); strings.Contains(got, "b1:fenced") {
		t.Fatalf("new controller fenced a live broker: %s", got)
	}
	if len(c.BrokerLiveness()) != 0 {
		t.Fatal("liveness of the previous term reported")
	}
	clk.Advance(10 * time.Second)
	tick()
	if got := state(st.Image()); got != "b1:fenced b2:fenced b3:fenced | p0 r=[1 2] isr=[1] l=-1" {
		t.Fatalf("after a full session in the new term: %s", got)
	}

	// Not the leader: Tick does nothing and decisions are refused.
	st.setLeader(3, false)
	if err := c.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, Heartbeat{BrokerID: 1, BrokerEpoch: ep}); !errors.Is(err, ErrNotController) {
		t.Fatalf("heartbeat on a follower: %v", err)
	}
}

func TestTickCompletesReassignmentAndRebalances(t *testing.T) {
	ctx := ctxT(t)
	clk := &clock{now: epoch}
	st := &fakeStore{img: cluster(t,
		part(0, r(2, 1), r(1, 2), 1), // adding 2, already in sync
		metadata.PartitionChangeRecord{TopicID: tID, Leader: metadata.NoLeaderChange, Replicas: r(2, 1, 3), AddingReplicas: r(2), RemovingReplicas: r(3)},
		part(1, r(2, 1), r(2, 1), 1),
	), term: 1, leader: true}
	o := testOptions()
	o.Now, o.AutoLeaderRebalance, o.LeaderImbalanceCheckInterval = clk.Now, true, time.Minute
	o.SessionTimeout = time.Hour
	c := New(st, o)
	if err := c.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := state(st.Image()); got != "| p0 r=[2 1] isr=[1 2] l=1 | p1 r=[2 1] isr=[2 1] l=1" {
		t.Fatalf("after first tick: %s", got)
	}
	clk.Advance(time.Minute)
	if err := c.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := state(st.Image()); got != "| p0 r=[2 1] isr=[1 2] l=2 | p1 r=[2 1] isr=[2 1] l=2" {
		t.Fatalf("after rebalance: %s", got)
	}
}

func TestControllerClusterAPIs(t *testing.T) {
	ctx := ctxT(t)
	st := &fakeStore{img: cluster(t, part(0, r(1, 2), r(1, 2), 2)), term: 1, leader: true}
	c := New(st, testOptions())
	epoch, err := c.RegisterBroker(ctx, metadata.RegisterBrokerRecord{BrokerID: 4, IncarnationID: id(40)})
	if err != nil || epoch != int64(st.Image().AppliedIndex()) || !st.Image().Broker(4).Fenced {
		t.Fatalf("register: %d %v", epoch, err)
	}
	if again, err := c.RegisterBroker(ctx, metadata.RegisterBrokerRecord{BrokerID: 4, IncarnationID: id(40)}); again != epoch || err != nil {
		t.Fatalf("idempotent register: %d %v", again, err)
	}
	res := c.ElectLeaders(ctx, false, []TopicPartition{{Topic: "t", Partition: 0}})
	if res[0].Err != nil || st.Image().Topic("t").Partitions[0].Leader != 1 {
		t.Fatalf("elect: %+v", res)
	}
	p := st.Image().Topic("t").Partitions[0]
	ires := c.AlterPartition(ctx, 1, ep, []ISRChange{{TopicID: tID, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: r(1)}})
	if ires[0].Err != nil || !reflect.DeepEqual(st.Image().Topic("t").Partitions[0].ISR, r(1)) {
		t.Fatalf("alter partition: %+v", ires)
	}
	rres := c.AlterReassignments(ctx, []Reassignment{{Topic: "t", Replicas: r(1, 3)}})
	if rres[0].Err != nil || len(c.ListReassignments(nil)) != 1 {
		t.Fatalf("reassign: %+v", rres)
	}
	st.setLeader(2, false)
	if r := c.AlterReassignments(ctx, []Reassignment{{Topic: "t"}}); !errors.Is(r[0].Err, ErrNotController) {
		t.Fatalf("on a follower: %+v", r)
	}
	if r := c.AlterPartition(ctx, 1, ep, []ISRChange{{TopicID: tID}}); !errors.Is(r[0].Err, ErrNotController) {
		t.Fatalf("on a follower: %+v", r)
	}
	// The image is readable anywhere.
	if len(c.ListReassignments([]TopicPartition{{Topic: "t"}, {Topic: "zz"}})) != 1 {
		t.Fatal("list on a follower")
	}
}

// TestLostConnectionFencesEarly: a broker whose heartbeat connection closed is fenced
// LostGrace later unless it heartbeats again; one that reconnects is not; the previous
// controller gets LostGrace after a new term to show it is alive.
func TestLostConnectionFencesEarly(t *testing.T) {
	ctx := ctxT(t)
	clk := &clock{now: epoch}
	st := &leaderStore{fakeStore: fakeStore{img: cluster(t, part(0, r(1, 2), r(1, 2), 1)), term: 1, leader: true}, other: -1}
	o := testOptions()
	o.Now, o.SessionTimeout, o.LostGrace = clk.Now, 9*time.Second, 500*time.Millisecond
	o.NodeID = 4 // this node hosts the controller only
	c := New(st, o)
	beat := func(id int32, conn uint64) {
		t.Helper()
		if _, err := c.Heartbeat(ctx, Heartbeat{BrokerID: id, BrokerEpoch: ep, MetadataOffset: st.Image().AppliedIndex(), Conn: conn}); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() {
		t.Helper()
		if err := c.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	beat(1, 10)
	beat(2, 20)
	beat(3, 30)
	c.ConnClosed(20) // broker 2's process died
	c.ConnClosed(30) // broker 3 reconnects at once
	beat(3, 31)
	clk.Advance(400 * time.Millisecond)
	tick()
	if got := state(st.Image()); got != "| p0 r=[1 2] isr=[1 2] l=1" {
		t.Fatalf("fenced before the grace: %s", got)
	}
	clk.Advance(200 * time.Millisecond)
	beat(1, 10)
	beat(3, 31)
	tick()
	if got := state(st.Image()); got != "b2:fenced | p0 r=[1 2] isr=[1] l=1" {
		t.Fatalf("after the grace: %s", got)
	}

	// This node takes over from node 3 (still alive) and node 1 (gone): the previous
	// controller is fenced after the grace unless it heartbeats.
	st.setLeader(2, false)
	st.other = 1
	tick() // a follower remembers who leads
	st.setLeader(3, true)
	tick()
	clk.Advance(300 * time.Millisecond)
	beat(3, 32)
	clk.Advance(300 * time.Millisecond)
	tick()
	if got := state(st.Image()); !strings.Contains(got, "b1:fenced") || strings.Contains(got, "b3:fenced") {
		t.Fatalf("after taking over from node 1: %s", got)
	}
}

// leaderStore is a fakeStore that also names the quorum leader.
type leaderStore struct {
	fakeStore
	other int32
}

func (s *leaderStore) LeaderID() (int32, bool) { return s.other, s.other >= 0 }
