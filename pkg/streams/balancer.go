package streams

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// taskBalancer is the group balancer of a streams application: it assigns whole tasks (all
// partitions numbered p of one sub-topology's topics) to members, so co-partitioned inputs
// always meet in one instance. It is eager (everything is revoked before a rebalance) and
// sticky: a task stays with the member that last owned it while loads stay within one of
// each other, so state moves only when work must; a task that must move prefers a member
// that holds its state (a standby copy or a checkpointed directory). With
// num.standby.replicas = N it also gives every task with a changelog up to N standby copies
// on members other than its owner (see assignStandbys). Its methods are called by the kgo
// client's group goroutine; what they read of the app goes through the app's locks.
type taskBalancer struct {
	app *App
}

func (b *taskBalancer) ProtocolName() string { return "poste-streams" }
func (b *taskBalancer) IsCooperative() bool  { return false }

// JoinGroupMetadata advertises the topics, as owned partitions what this instance ran before
// the rebalance (the client's own view is empty under eager revocation), and in the user
// data its application.server and the tasks whose state it holds.
func (b *taskBalancer) JoinGroupMetadata(interests []string, _ map[string][]int32, generation int32) []byte {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Version = 1
	meta.Topics = interests
	meta.Generation = generation
	meta.UserData = encodeMemberInfo(memberInfo{host: b.app.cfg.ApplicationServer, state: b.app.localState()})
	for topic, parts := range b.app.previousAssignment() {
		op := kmsg.NewConsumerMemberMetadataOwnedPartition()
		op.Topic = topic
		op.Partitions = parts
		meta.OwnedPartitions = append(meta.OwnedPartitions, op)
	}
	sort.Slice(meta.OwnedPartitions, func(i, j int) bool { return meta.OwnedPartitions[i].Topic < meta.OwnedPartitions[j].Topic })
	return meta.AppendTo(nil)
}

// ParseSyncAssignment reads this member's partitions and, from the user data, which
// instance runs every task and its standbys (for MetadataForKey) and which standby tasks
// this instance keeps (taken up when the assignment is applied, in onAssigned).
func (b *taskBalancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(assignment); err != nil {
		return nil, fmt.Errorf("%w: sync assignment: %w", ErrConfig, err)
	}
	info, err := decodeAssignment(a.UserData)
	if err != nil {
		b.app.log.Warn("streams: ignoring the assignment's user data", "err", err)
		info = assignmentInfo{owners: map[TaskID]string{}}
	}
	b.app.setOwners(info.owners, info.standbys)
	b.app.standby.setAssigned(info.mine)
	m := make(map[string][]int32, len(a.Topics))
	for _, t := range a.Topics {
		m[t.Topic] = t.Partitions
	}
	return m, nil
}

func (b *taskBalancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	cb, err := kgo.NewConsumerBalancer(b, members)
	if err != nil {
		return nil, nil, err
	}
	return cb, cb.MemberTopics(), nil
}

// Balance implements kgo.ConsumerBalancerBalance.
func (b *taskBalancer) Balance(cb *kgo.ConsumerBalancer, topics map[string]int32) kgo.IntoSyncAssignment {
	members := cb.Members()
	tasks := planTasks(b.app.subTopics, topics)
	prev := map[TaskID]int{}
	warm := map[TaskID][]int{}
	index := map[string]int{}
	hosts := make([]string, len(members))
	for i := range members {
		index[members[i].MemberID] = i
	}
	cb.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		idx := index[m.MemberID]
		info, err := decodeMemberInfo(meta.UserData)
		if err != nil {
			b.app.log.Warn("streams: member sent unreadable user data", "member", m.MemberID, "err", err)
		}
		hosts[idx] = info.host
		for _, id := range info.state {
			warm[id] = append(warm[id], idx)
		}
		for _, op := range meta.OwnedPartitions {
			sub, ok := b.app.topicSub[op.Topic]
			if !ok {
				continue
			}
			for _, p := range op.Partitions {
				prev[TaskID{sub, p}] = idx
			}
		}
	})
	for id, ms := range warm {
		warm[id] = slices.Compact(slices.Sorted(slices.Values(ms)))
	}
	owner := assignTasks(tasks, len(members), prev, warm)
	stateful := make([]bool, len(tasks))
	for i, id := range tasks {
		stateful[i] = b.app.logged(id.Subtopology)
	}
	standby := assignStandbys(tasks, stateful, owner, len(members), b.app.cfg.NumStandbyReplicas, warm)
	plan := &taskPlan{parts: map[string]map[string][]int32{}, userData: map[string][]byte{}}
	owners := map[TaskID]string{}
	standbyHosts := map[TaskID][]string{}
	mine := make([][]TaskID, len(members))
	for i := range members {
		plan.parts[members[i].MemberID] = map[string][]int32{}
	}
	for i, id := range tasks {
		m := members[owner[i]].MemberID
		owners[id] = hosts[owner[i]]
		for _, topic := range b.app.subTopics[id.Subtopology] {
			if id.Partition < topics[topic] {
				plan.parts[m][topic] = append(plan.parts[m][topic], id.Partition)
			}
		}
		for _, s := range standby[i] {
			mine[s] = append(mine[s], id)
			standbyHosts[id] = append(standbyHosts[id], hosts[s])
		}
	}
	for i := range members {
		plan.userData[members[i].MemberID] = encodeAssignment(owners, standbyHosts, mine[i])
	}
	return plan
}

// taskPlan is the balancer's result: each member's partitions and assignment user data.
type taskPlan struct {
	parts    map[string]map[string][]int32 // member → topic → partitions
	userData map[string][]byte             // member → encoded assignmentInfo
}

func (p *taskPlan) IntoSyncAssignment() []kmsg.SyncGroupRequestGroupAssignment {
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(p.parts))
	for _, member := range sortedKeys(p.parts) {
		a := kmsg.NewConsumerMemberAssignment()
		for _, topic := range sortedKeys(p.parts[member]) {
			t := kmsg.NewConsumerMemberAssignmentTopic()
			t.Topic = topic
			t.Partitions = slices.Sorted(slices.Values(p.parts[member][topic]))
			a.Topics = append(a.Topics, t)
		}
		a.UserData = p.userData[member]
		sa := kmsg.NewSyncGroupRequestGroupAssignment()
		sa.MemberID = member
		sa.MemberAssignment = a.AppendTo(nil)
		out = append(out, sa)
	}
	return out
}

// planTasks lists every task, in order: for each sub-topology (by id) one per partition of
// its widest topic.
func planTasks(subTopics [][]string, counts map[string]int32) []TaskID {
	var tasks []TaskID
	for sub, ts := range subTopics {
		var n int32
		for _, t := range ts {
			n = max(n, counts[t])
		}
		for p := int32(0); p < n; p++ {
			tasks = append(tasks, TaskID{sub, p})
		}
	}
	return tasks
}

// assignTasks gives each task a member index, in three passes: to its previous owner while
// that owner holds fewer than max(1, tasks/members); then to the first member holding its
// state (warm, ascending indexes) under the same cap; then to the least-loaded member
// (lowest index on ties). Loads end within one of each other. Pure and deterministic, for
// tests.
func assignTasks(tasks []TaskID, members int, prev map[TaskID]int, warm map[TaskID][]int) []int {
	owner := make([]int, len(tasks))
	if members == 0 {
		return owner
	}
	load := make([]int, members)
	stickyCap := max(1, len(tasks)/members)
	for i, id := range tasks {
		owner[i] = -1
		if m, ok := prev[id]; ok && m < members && load[m] < stickyCap {
			owner[i] = m
			load[m]++
		}
	}
	for i, id := range tasks {
		if owner[i] >= 0 {
			continue
		}
		for _, m := range warm[id] {
			if m >= 0 && m < members && load[m] < stickyCap {
				owner[i] = m
				load[m]++
				break
			}
		}
	}
	for i := range tasks {
		if owner[i] >= 0 {
			continue
		}
		best := 0
		for m := 1; m < members; m++ {
			if load[m] < load[best] {
				best = m
			}
		}
		owner[i] = best
		load[best]++
	}
	return owner
}

// assignStandbys gives each stateful task (stateful[i]: it has a changelog to follow) up to
// n standby members, never its owner and never one member twice, so a task has at most
// min(n, members-1) standbys. Candidates holding the task's state (warm) come first, then
// the least loaded (active plus standby tasks so far), then the lowest index. Tasks are
// served in order, so the result is a pure, deterministic function of its inputs. The
// result lists each task's standby members in ascending order.
func assignStandbys(tasks []TaskID, stateful []bool, owner []int, members, n int, warm map[TaskID][]int) [][]int {
	out := make([][]int, len(owner))
	k := min(n, members-1)
	if k <= 0 {
		return out
	}
	load := make([]int, members)
	for _, m := range owner {
		load[m]++
	}
	has := func(id TaskID, m int) bool { return slices.Contains(warm[id], m) }
	for i, id := range tasks {
		if !stateful[i] {
			continue
		}
		chosen := make([]int, 0, k)
		for range k {
			best := -1
			for m := range members {
				if m == owner[i] || slices.Contains(chosen, m) {
					continue
				}
				if best < 0 || (has(id, m) && !has(id, best)) ||
					(has(id, m) == has(id, best) && load[m] < load[best]) {
					best = m
				}
			}
			chosen = append(chosen, best)
			load[best]++
		}
		slices.Sort(chosen)
		out[i] = chosen
	}
	return out
}

// manualKey marks records whose Partition was chosen by Poste (changelogs, user
// partitioners); the rest use Kafka's murmur2 key hashing.
type manualKey struct{}

var manualCtx = context.WithValue(context.Background(), manualKey{}, true)

type partitioner struct{ def kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return &topicPartitioner{def: p.def.ForTopic(topic)}
}

type topicPartitioner struct{ def kgo.TopicPartitioner }

func isManual(r *kgo.Record) bool { return r.Context != nil && r.Context.Value(manualKey{}) != nil }

func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return isManual(r) || p.def.RequiresConsistency(r)
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if isManual(r) {
		return int(r.Partition)
	}
	return p.def.Partition(r, n)
}

func (p *topicPartitioner) OnNewBatch() {
	if nb, ok := p.def.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
