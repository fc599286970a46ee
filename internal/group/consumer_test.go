package group

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"
)

// checkPartition fails unless every partition of the subscribed topics is assigned to
// exactly one member subscribed to it.
func checkPartition(t *testing.T, members []assignMember, partitions map[TopicID]int32, got map[string]assignment) {
	t.Helper()
	seen := map[idPart]string{}
	for _, m := range members {
		got[m.id].each(func(id TopicID, p int32) {
			if !slices.Contains(m.topics, id) {
				t.Errorf("%s got %s/%d without subscribing", m.id, topicName(id), p)
			}
			if o, dup := seen[idPart{id, p}]; dup {
				t.Errorf("%s/%d assigned to %s and %s", topicName(id), p, o, m.id)
			}
			seen[idPart{id, p}] = m.id
		})
	}
	for id, n := range partitions {
		subscribed := false
		for _, m := range members {
			subscribed = subscribed || slices.Contains(m.topics, id)
		}
		for p := range n {
			if _, ok := seen[idPart{id, p}]; subscribed && !ok {
				t.Errorf("%s/%d unassigned", topicName(id), p)
			}
		}
	}
}

func TestAssignUniform(t *testing.T) {
	a, b := topicID("a"), topicID("b")
	for _, tc := range []struct {
		name       string
		members    []assignMember
		partitions map[TopicID]int32
		// counts is each member's expected partition count; moved bounds how many
		// partitions may leave their previous member (-1: unchecked).
		counts []int
		moved  int
	}{
		{"one member", []assignMember{{id: "m0", topics: []TopicID{a}}}, map[TopicID]int32{a: 4}, []int{4}, -1},
		{"even split", []assignMember{{id: "m0", topics: []TopicID{a}}, {id: "m1", topics: []TopicID{a}}, {id: "m2", topics: []TopicID{a}}},
			map[TopicID]int32{a: 6}, []int{2, 2, 2}, -1},
		{"join is sticky", []assignMember{
			{id: "m0", topics: []TopicID{a}, prev: assignment{a: {0, 1, 2}}},
			{id: "m1", topics: []TopicID{a}, prev: assignment{a: {3, 4, 5}}},
			{id: "m2", topics: []TopicID{a}}},
			map[TopicID]int32{a: 6}, []int{2, 2, 2}, 2},
		{"leave is sticky", []assignMember{
			{id: "m0", topics: []TopicID{a}, prev: assignment{a: {0, 1}}},
			{id: "m2", topics: []TopicID{a}, prev: assignment{a: {4, 5}}}},
			map[TopicID]int32{a: 6}, []int{3, 3}, 0},
		{"more members than partitions", []assignMember{{id: "m0", topics: []TopicID{a}}, {id: "m1", topics: []TopicID{a}}, {id: "m2", topics: []TopicID{a}}},
			map[TopicID]int32{a: 2}, []int{1, 1, 0}, -1},
		{"heterogeneous", []assignMember{{id: "m0", topics: []TopicID{a}}, {id: "m1", topics: []TopicID{a, b}}, {id: "m2", topics: []TopicID{b}}},
			map[TopicID]int32{a: 3, b: 3}, []int{2, 2, 2}, -1},
		{"unsubscribed partitions are dropped", []assignMember{
			{id: "m0", topics: []TopicID{a}, prev: assignment{a: {0}, b: {0, 1}}},
			{id: "m1", topics: []TopicID{a}, prev: assignment{a: {5}}}},
			map[TopicID]int32{a: 2, b: 2}, []int{1, 1}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := assignUniform(tc.members, tc.partitions)
			checkPartition(t, tc.members, tc.partitions, got)
			var counts []int
			moved := 0
			for _, m := range tc.members {
				counts = append(counts, got[m.id].count())
				moved += m.prev.minus(got[m.id]).count()
			}
			slices.Sort(counts)
			want := slices.Clone(tc.counts)
			slices.Sort(want)
			if !slices.Equal(counts, want) {
				t.Errorf("counts %v, want %v", counts, want)
			}
			if tc.moved >= 0 && moved > tc.moved {
				t.Errorf("%d partitions moved, want at most %d", moved, tc.moved)
			}
		})
	}
}

func TestAssignRange(t *testing.T) {
	a, b := topicID("a"), topicID("b")
	members := []assignMember{{id: "m0", topics: []TopicID{a, b}}, {id: "m1", topics: []TopicID{a, b}}, {id: "m2", topics: []TopicID{a}}}
	got := assignRange(members, map[TopicID]int32{a: 7, b: 3})
	want := map[string]assignment{
		"m0": {a: {0, 1, 2}, b: {0, 1}},
		"m1": {a: {3, 4}, b: {2}},
		"m2": {a: {5, 6}},
	}
	for id, w := range want {
		if !got[id].equal(w) {
			t.Errorf("%s: got %s, want %s", id, fmtAssign(got[id].list()), fmtAssign(w.list()))
		}
	}
}

// TestConsumerRecordsRoundTrip replays the records of a group and finds the same state.
func TestConsumerRecordsRoundTrip(t *testing.T) {
	inst, rack, re := "i1", "r1", "or.*"
	m := &cmember{id: "m1", instanceID: &inst, rack: &rack, clientID: "c", host: "/h", topicNames: []string{"a", "b"},
		assignor: "range", rebalanceTimeout: 30 * time.Second, sessionTimeout: 45 * time.Second,
		epoch: 7, prevEpoch: 5, state: memberUnrevoked, assigned: assignment{topicID("a"): {0, 2}},
		revoking: assignment{topicID("b"): {1}}}
	m.setRegex(&re)
	cg := newConsumerGroup(time.UnixMilli(12345))
	cg.epoch, cg.assignEpoch, cg.topicsHash = 9, 8, 42
	cg.members[m.id] = m
	cg.target[m.id] = assignment{topicID("a"): {0, 1, 2}}

	s := NewShard(Config{})
	for i, r := range []struct{ k, v []byte }{
		{cgRecord("g", cg).Key, cgRecord("g", cg).Value},
		{cgMemberRecord("g", m).Key, cgMemberRecord("g", m).Value},
		{cgTargetMetaRecord("g", cg).Key, cgTargetMetaRecord("g", cg).Value},
		{cgTargetRecord("g", "m1", cg.target["m1"]).Key, cgTargetRecord("g", "m1", cg.target["m1"]).Value},
		{cgCurrentRecord("g", m).Key, cgCurrentRecord("g", m).Value},
	} {
		if err := s.Replay(int64(i), r.k, r.v); err != nil {
			t.Fatal(err)
		}
	}
	got := s.groups["g"].cg
	if got == nil || got.epoch != 9 || got.assignEpoch != 8 || got.topicsHash != 42 || !got.stateTime.Equal(cg.stateTime) {
		t.Fatalf("group: %+v", got)
	}
	gm := got.members["m1"]
	if gm == nil || *gm.instanceID != inst || *gm.rack != rack || gm.clientID != "c" || gm.host != "/h" ||
		!slices.Equal(gm.topicNames, m.topicNames) || *gm.regex != re || gm.re == nil || gm.assignor != "range" ||
		gm.rebalanceTimeout != m.rebalanceTimeout || gm.sessionTimeout != m.sessionTimeout || gm.epoch != 7 ||
		gm.prevEpoch != 5 || gm.state != memberUnrevoked || !gm.assigned.equal(m.assigned) || !gm.revoking.equal(m.revoking) {
		t.Fatalf("member: %+v", gm)
	}
	if !got.target["m1"].equal(cg.target["m1"]) {
		t.Fatalf("target: %v", got.target)
	}
	// Tombstones remove the member, then the group.
	for _, r := range append(cgMemberTombstones("g", "m1"), cgTombstones("g")...) {
		if err := s.Replay(0, r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := s.groups["g"]; ok {
		t.Fatalf("group survived its tombstones: %v", slices.Collect(maps.Keys(s.groups)))
	}
	// A truncated value is an error, not a panic.
	rec := cgCurrentRecord("g", m)
	if err := s.Replay(0, rec.Key, rec.Value[:len(rec.Value)-3]); err == nil {
		t.Fatal("a truncated record replayed")
	}
}

func TestValidateHeartbeat(t *testing.T) {
	empty := []TopicPartitions{}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		req  ConsumerHeartbeatRequest
		want error
	}{
		{"join", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1, SubscribedTopics: []string{"a"}, Owned: empty}, nil},
		{"join by regex", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1, SubscribedRegex: str("a.*"), Owned: empty}, nil},
		{"no group", ConsumerHeartbeatRequest{MemberID: "m", RebalanceTimeoutMs: 1, SubscribedTopics: []string{"a"}, Owned: empty}, ErrInvalidRequest},
		{"join without subscription", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1, Owned: empty}, ErrInvalidRequest},
		{"join owning", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1, SubscribedTopics: []string{"a"}, Owned: []TopicPartitions{{Partitions: []int32{0}}}}, ErrInvalidRequest},
		{"join keepalive", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", RebalanceTimeoutMs: 1, SubscribedTopics: []string{"a"}}, ErrInvalidRequest},
		{"empty instance", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: 3, InstanceID: str("")}, ErrInvalidRequest},
		{"static leave without instance", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: -2}, ErrInvalidRequest},
		{"bad epoch", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: -5}, ErrInvalidRequest},
		{"keepalive", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: 3, RebalanceTimeoutMs: -1}, nil},
		{"unknown assignor", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: 3, ServerAssignor: str("sticky")}, ErrUnsupportedAssignor},
		{"bad regex", ConsumerHeartbeatRequest{Group: "g", MemberID: "m", MemberEpoch: 3, SubscribedRegex: str("(")}, ErrInvalidRegex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateHeartbeat(&tc.req)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
