package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/poste-io/poste/internal/coord"
)

// KIP-848 consumer groups: the broker assigns partitions and members converge on the target
// assignment through their heartbeats (ConsumerGroupHeartbeat). See docs/groups.md.
//
// Epochs: the group epoch advances whenever membership, a subscription or the metadata of a
// subscribed topic changes; the target assignment is recomputed (by the group's server-side
// assignor) when it lags the group epoch and takes its epoch. A member's epoch reaches the
// target assignment epoch once the member has revoked what it must give up; it then gets the
// partitions of its target that no other member still owns (revoke first, then assign).

// Errors of the consumer protocol; internal/api maps them to Kafka codes.
var (
	ErrInvalidRequest       = errors.New("invalid request")            // INVALID_REQUEST
	ErrFencedMemberEpoch    = errors.New("fenced member epoch")        // FENCED_MEMBER_EPOCH
	ErrStaleMemberEpoch     = errors.New("stale member epoch")         // STALE_MEMBER_EPOCH
	ErrUnreleasedInstanceID = errors.New("unreleased instance id")     // UNRELEASED_INSTANCE_ID
	ErrUnsupportedAssignor  = errors.New("unsupported assignor")       // UNSUPPORTED_ASSIGNOR
	ErrInvalidRegex         = errors.New("invalid regular expression") // INVALID_REGULAR_EXPRESSION
)

// Kafka's defaults for group.consumer.session.timeout.ms and group.consumer.heartbeat.interval.ms.
const (
	DefaultConsumerSessionTimeout    = 45 * time.Second
	DefaultConsumerHeartbeatInterval = 5 * time.Second
)

// TopicInfo is a topic as the consumer protocol needs it.
type TopicInfo struct {
	Name       string
	ID         TopicID
	Partitions int32
}

// TopicsView is the cluster's topics at the time of a heartbeat. Implementations must be
// immutable snapshots: the shard goroutine reads them.
type TopicsView interface {
	Topic(name string) (TopicInfo, bool)
	// Each calls fn for every topic; used to resolve regex subscriptions.
	Each(fn func(TopicInfo))
}

// ConsumerHeartbeatRequest is a ConsumerGroupHeartbeat request with the broker settings it
// runs under. Nil fields (and RebalanceTimeoutMs -1) mean "unchanged since the last one".
type ConsumerHeartbeatRequest struct {
	Group              string
	MemberID           string // empty only for v0 joins: the coordinator picks one
	MemberEpoch        int32  // 0 join, -1 leave, -2 static leave, else the member's epoch
	InstanceID         *string
	RackID             *string
	RebalanceTimeoutMs int32
	SubscribedTopics   []string
	SubscribedRegex    *string
	ServerAssignor     *string
	Owned              []TopicPartitions // nil: unchanged (a keepalive)
	ClientID           string
	ClientHost         string

	SessionTimeout    time.Duration // group.consumer.session.timeout.ms; 0: Kafka's default
	HeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms; 0: Kafka's default
	MaxSize           int           // group.consumer.max.size; <= 0: unbounded
	Topics            TopicsView
}

// ConsumerHeartbeatResult is the answer to a ConsumerGroupHeartbeat.
type ConsumerHeartbeatResult struct {
	Err               error
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is the member's whole assignment when it changed or the request asked for
	// it (a join, a full request); nil otherwise.
	Assignment []TopicPartitions
}

// ConsumerMemberDescription is a member as ConsumerGroupDescribe shows it.
type ConsumerMemberDescription struct {
	MemberID, ClientID, ClientHost string
	InstanceID, RackID             *string
	Epoch                          int32
	SubscribedTopics               []string
	SubscribedRegex                *string
	Assignment, Target             []TopicPartitions
}

// ConsumerDescription is a consumer group as ConsumerGroupDescribe shows it.
type ConsumerDescription struct {
	Err             error
	Group           string
	State           string // Empty, Assigning, Reconciling, Stable or Dead
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerMemberDescription
	// TopicNames names the topic ids of the assignments, as the group last saw them.
	TopicNames map[TopicID]string
}

// memberState is where a member stands in its reconciliation.
type memberState int8

const (
	memberStable     memberState = iota // it has its share of the target at the target's epoch
	memberUnrevoked                     // it must give up revoking before its epoch advances
	memberUnreleased                    // at the target's epoch, waiting for partitions others still own
)

// cmember is a consumer-group member. assigned and revoking are disjoint; both are owned
// by the member as far as other members are concerned.
type cmember struct {
	id               string
	instanceID, rack *string
	clientID, host   string
	topicNames       []string // sorted
	regex            *string
	re               *regexp.Regexp
	assignor         string // "" : the group's choice
	rebalanceTimeout time.Duration
	sessionTimeout   time.Duration

	epoch, prevEpoch int32
	state            memberState
	left             bool // a static member that left with epoch -2: kept until its session ends
	assigned         assignment
	revoking         assignment
}

func newConsumerMember(id string) *cmember {
	return &cmember{id: id, prevEpoch: -1, assigned: assignment{}, revoking: assignment{},
		sessionTimeout: DefaultConsumerSessionTimeout}
}

func (m *cmember) setRegex(re *string) {
	m.regex, m.re = re, nil
	if re != nil && *re != "" {
		m.re, _ = regexp.Compile("^(?:" + *re + ")$")
	}
}

// subscribes reports whether m subscribes to topic name.
func (m *cmember) subscribes(name string) bool {
	if _, ok := slices.BinarySearch(m.topicNames, name); ok {
		return true
	}
	return m.re != nil && !internalTopic(name) && m.re.MatchString(name)
}

func internalTopic(name string) bool { return name == OffsetsTopic || name == "__transaction_state" }

// consumerGroup is the KIP-848 state of a group (group.cg); its offsets stay in the group.
//
// Invariants: owner maps every partition in some member's assigned or revoking set to that
// member and nothing else; static maps the instance id of every static member to its id;
// assignEpoch <= epoch.
type consumerGroup struct {
	epoch       int32
	assignEpoch int32
	stateTime   time.Time // when the epoch last changed
	members     map[string]*cmember
	static      map[string]string
	target      map[string]assignment
	owner       map[idPart]string
	// topics is the subscription metadata: every subscribed topic that exists, by name; nil
	// after a load, until the first heartbeat computes it.
	topics map[string]TopicInfo
	// topicsHash digests topics as of the stored epoch, so that a load can tell whether
	// the subscribed topics changed meanwhile.
	topicsHash uint64

	seq    uint64         // advanced by every operation that writes records
	failed *consumerGroup // the state before the earliest failed write not yet reverted
}

func newConsumerGroup(now time.Time) *consumerGroup {
	return &consumerGroup{stateTime: now, members: map[string]*cmember{}, static: map[string]string{},
		target: map[string]assignment{}, owner: map[idPart]string{}}
}

// clone copies the state deeply enough to restore it (assignments are immutable).
func (cg *consumerGroup) clone() *consumerGroup {
	c := *cg
	c.members = make(map[string]*cmember, len(cg.members))
	for id, m := range cg.members {
		mc := *m
		c.members[id] = &mc
	}
	c.static, c.target, c.owner, c.topics = maps.Clone(cg.static), maps.Clone(cg.target), maps.Clone(cg.owner), maps.Clone(cg.topics)
	c.failed = nil
	return &c
}

// rebuild recomputes owner and static from the members (after a load or a revert).
func (cg *consumerGroup) rebuild() {
	cg.owner, cg.static = map[idPart]string{}, map[string]string{}
	for _, m := range cg.members {
		if m.instanceID != nil {
			cg.static[*m.instanceID] = m.id
		}
		for _, a := range []assignment{m.assigned, m.revoking} {
			a.each(func(id TopicID, p int32) { cg.owner[idPart{id, p}] = m.id })
		}
	}
}

func (cg *consumerGroup) state() string {
	switch {
	case len(cg.members) == 0:
		return "Empty"
	case cg.epoch > cg.assignEpoch:
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch != cg.assignEpoch || m.state != memberStable {
			return "Reconciling"
		}
	}
	return "Stable"
}

// assignor is the group's server-side assignor: the one most members ask for, ties to the
// earlier in the list of assignors; the default when none asks.
func (cg *consumerGroup) assignor() string {
	votes := map[string]int{}
	for _, m := range cg.members {
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	best := assignors[0]
	for _, a := range assignors {
		if votes[a] > votes[best] {
			best = a
		}
	}
	return best
}

// topicsHash digests subscription metadata independently of map order.
func topicsHash(topics map[string]TopicInfo) uint64 {
	h := fnv.New64a()
	var b [4]byte
	for _, name := range slices.Sorted(maps.Keys(topics)) {
		t := topics[name]
		h.Write([]byte(name))
		h.Write(t.ID[:])
		binary.BigEndian.PutUint32(b[:], uint32(t.Partitions))
		h.Write(b[:])
	}
	return h.Sum64()
}

// Timer keys of consumer groups.
func cSessionKey(g, m string) string   { return "csession/" + g + "/" + m }
func cRebalanceKey(g, m string) string { return "crebalance/" + g + "/" + m }

// validateHeartbeat applies Kafka's checks of the request's fields.
func validateHeartbeat(req *ConsumerHeartbeatRequest) error {
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidRequest, msg) }
	switch {
	case req.Group == "":
		return bad("GroupId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return bad("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return bad("RackId can't be empty.")
	case req.MemberID == "" && req.MemberEpoch != 0:
		return bad("MemberId can't be empty.")
	}
	switch {
	case req.MemberEpoch == 0:
		if req.RebalanceTimeoutMs < 0 {
			return bad("RebalanceTimeoutMs must be provided in first request.")
		}
		if req.Owned == nil || len(req.Owned) > 0 {
			return bad("TopicPartitions must be empty when (re-)joining.")
		}
		if req.SubscribedTopics == nil && req.SubscribedRegex == nil {
			return bad("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
		}
	case req.MemberEpoch == -2:
		if req.InstanceID == nil {
			return bad("InstanceId can't be null.")
		}
	case req.MemberEpoch < -2:
		return bad("MemberEpoch is invalid.")
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != "" && !slices.Contains(assignors, *req.ServerAssignor) {
		return fmt.Errorf("%w: %s", ErrUnsupportedAssignor, *req.ServerAssignor)
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != "" {
		if _, err := regexp.Compile(*req.SubscribedRegex); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidRegex, err)
		}
	}
	return nil
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat; cb is called once the records of the
// change are committed (at once when nothing is written).
func (s *Shard) ConsumerHeartbeat(now time.Time, req ConsumerHeartbeatRequest, cb func(ConsumerHeartbeatResult)) coord.Result {
	if req.SessionTimeout <= 0 {
		req.SessionTimeout = DefaultConsumerSessionTimeout
	}
	if req.HeartbeatInterval <= 0 {
		req.HeartbeatInterval = DefaultConsumerHeartbeatInterval
	}
	fail := func(err error) coord.Result {
		cb(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
		return coord.Result{}
	}
	if err := validateHeartbeat(&req); err != nil {
		return fail(err)
	}
	if req.MemberID == "" {
		req.MemberID = s.cfg.NewMemberID(req.ClientID) // v0: the coordinator names the member
	}
	g := s.groups[req.Group]
	var pre []coord.Record
	created := false
	if g == nil || g.cg == nil {
		if req.MemberEpoch != 0 {
			if g == nil {
				// UNKNOWN_MEMBER_ID rather than GROUP_ID_NOT_FOUND: the client rejoins.
				return fail(fmt.Errorf("%w: group %s not found", ErrUnknownMember, req.Group))
			}
			return fail(fmt.Errorf("%w: group %s is not a consumer group", ErrGroupNotFound, req.Group))
		}
		if g == nil {
			g = newGroup(req.Group, now)
			s.groups[req.Group] = g
			created = true
		} else {
			// A classic group with no members becomes a consumer group (keeping its
			// offsets), as Kafka 4 converts it; one with members is refused.
			if len(g.members) > 0 || len(g.pending) > 0 || g.state == Dead {
				return fail(fmt.Errorf("%w: group %s is not a consumer group", ErrGroupNotFound, req.Group))
			}
			if g.stored {
				pre = append(pre, groupTombstone(g.id))
				g.stored = false
			}
			s.timers.Cancel(joinKey(g.id))
			g.protocolType, g.protocol, g.leader, g.generation = "", "", "", 0
		}
		g.cg = newConsumerGroup(now)
	}
	cg := g.cg
	snap := cg.clone()
	recs, res, err := s.consumerHeartbeat(now, g, &req)
	if err != nil {
		if created && len(cg.members) == 0 {
			delete(s.groups, g.id)
		}
		return fail(err)
	}
	recs = append(pre, recs...)
	if len(recs) == 0 {
		return coord.Result{Done: func(werr error) {
			if errors.Is(werr, coord.ErrNotCoordinator) {
				res = ConsumerHeartbeatResult{Err: werr, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch}
			}
			cb(res)
		}}
	}
	cg.seq++
	after := cg.seq
	return coord.Result{Records: recs, Done: func(werr error) {
		if werr != nil {
			s.revertConsumer(g, cg, snap, after, now)
			if created && g.cg == cg && len(cg.members) == 0 && len(g.offsets) == 0 && s.groups[g.id] == g {
				delete(s.groups, g.id) // nothing of it was written
			}
			cb(ConsumerHeartbeatResult{Err: werr, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
			return
		}
		cb(res)
	}}
}

// revertConsumer undoes the changes of a failed write: the group returns to its state before
// the earliest failed write once no later operation builds on it.
func (s *Shard) revertConsumer(g *group, cg *consumerGroup, snap *consumerGroup, after uint64, now time.Time) {
	if g.cg != cg {
		return
	}
	if cg.failed == nil {
		cg.failed = snap
	}
	if cg.seq != after {
		return // a later operation changed the group; its own Done decides
	}
	restored := cg.failed
	seq := cg.seq
	*cg = *restored
	cg.seq, cg.failed = seq, nil
	cg.rebuild()
	for _, m := range cg.members {
		s.scheduleConsumerSession(g.id, m, now)
	}
}

// consumerHeartbeat runs a valid heartbeat against g's consumer group.
func (s *Shard) consumerHeartbeat(now time.Time, g *group, req *ConsumerHeartbeatRequest) ([]coord.Record, ConsumerHeartbeatResult, error) {
	cg := g.cg
	res := ConsumerHeartbeatResult{MemberID: req.MemberID, MemberEpoch: req.MemberEpoch, HeartbeatInterval: req.HeartbeatInterval}
	if req.MemberEpoch < 0 {
		recs, err := s.leaveConsumer(now, g, req)
		return recs, res, err
	}
	var recs []coord.Record
	var m *cmember
	bump := false
	if req.MemberEpoch == 0 {
		var err error
		m, recs, bump, err = s.joinConsumer(now, g, req)
		if err != nil {
			return nil, res, err
		}
	} else {
		m = cg.members[req.MemberID]
		if m == nil {
			return nil, res, fmt.Errorf("%w: member %s is not in group %s", ErrUnknownMember, req.MemberID, g.id)
		}
		if req.InstanceID != nil && (m.instanceID == nil || *m.instanceID != *req.InstanceID) {
			return nil, res, fmt.Errorf("%w: member %s does not have instance id %s", ErrFencedInstance, m.id, *req.InstanceID)
		}
		if err := checkMemberEpoch(m, req); err != nil {
			return nil, res, err
		}
	}
	if changed, subChanged := updateMember(m, req); changed || bump {
		bump = bump || subChanged
		recs = append(recs, cgMemberRecord(g.id, m))
	}
	if req.Topics != nil {
		topics := cg.subscriptionMetadata(req.Topics)
		switch {
		case cg.topics == nil && topicsHash(topics) == cg.topicsHash:
			cg.topics = topics // after a load: the topics the stored epoch was computed for
		case cg.topics == nil || !maps.Equal(topics, cg.topics):
			cg.topics = topics
			bump = true
		}
	}
	if bump {
		cg.topicsHash = topicsHash(cg.topics)
	}
	if bump {
		cg.epoch++
		cg.stateTime = now
		recs = append(recs, cgRecord(g.id, cg))
	}
	if cg.epoch > cg.assignEpoch && cg.topics != nil {
		recs = append(recs, s.computeTarget(g.id, cg)...)
	}
	var owned assignment
	if req.Owned != nil {
		owned = fromList(req.Owned)
	}
	prev := *m
	m.left = false // a static member rejoining under its own id
	cg.reconcile(m, owned)
	assignChanged := !prev.assigned.equal(m.assigned) || !prev.revoking.equal(m.revoking)
	if assignChanged || prev.epoch != m.epoch || prev.state != m.state || prev.left {
		recs = append(recs, cgCurrentRecord(g.id, m))
	}
	s.scheduleConsumerSession(g.id, m, now)
	if m.state == memberUnrevoked {
		if prev.state != memberUnrevoked {
			s.scheduleConsumerRebalance(g.id, m, now)
		}
	} else {
		s.timers.Cancel(cRebalanceKey(g.id, m.id))
	}
	res.MemberID, res.MemberEpoch = m.id, m.epoch
	full := req.RebalanceTimeoutMs >= 0 && (req.SubscribedTopics != nil || req.SubscribedRegex != nil) && req.Owned != nil
	if req.MemberEpoch == 0 || full || assignChanged {
		res.Assignment = m.assigned.list()
	}
	return recs, res, nil
}

// checkMemberEpoch fences a member whose epoch is not the coordinator's, except a member
// that missed the answer bumping its epoch: it comes back with its previous epoch, owning
// no more than it is assigned.
func checkMemberEpoch(m *cmember, req *ConsumerHeartbeatRequest) error {
	if m.left || req.MemberEpoch > m.epoch {
		return fmt.Errorf("%w: the member has epoch %d, the coordinator knows %d; it must abandon its partitions and rejoin", ErrFencedMemberEpoch, req.MemberEpoch, m.epoch)
	}
	if req.MemberEpoch < m.epoch {
		if req.MemberEpoch != m.prevEpoch || req.Owned == nil || len(fromList(req.Owned).minus(m.assigned)) > 0 {
			return fmt.Errorf("%w: the member has epoch %d, the coordinator knows %d; it must abandon its partitions and rejoin", ErrFencedMemberEpoch, req.MemberEpoch, m.epoch)
		}
	}
	return nil
}

// joinConsumer admits the member of an epoch-0 heartbeat: a new member, a member rejoining
// under its id, or a static member replacing its departed instance. bump reports a new member.
func (s *Shard) joinConsumer(now time.Time, g *group, req *ConsumerHeartbeatRequest) (m *cmember, recs []coord.Record, bump bool, err error) {
	cg := g.cg
	if req.InstanceID != nil {
		if oldID, ok := cg.static[*req.InstanceID]; ok && oldID != req.MemberID {
			old := cg.members[oldID]
			if !old.left {
				return nil, nil, false, fmt.Errorf("%w: static member %s with instance id %s is not released yet, member %s can't join",
					ErrUnreleasedInstanceID, oldID, *req.InstanceID, req.MemberID)
			}
			// The new incarnation takes over the departed one's place and assignment.
			nm := *old
			nm.id, nm.left = req.MemberID, false
			s.timers.Cancel(cSessionKey(g.id, oldID))
			s.timers.Cancel(cRebalanceKey(g.id, oldID))
			delete(cg.members, oldID)
			cg.members[nm.id] = &nm
			cg.static[*req.InstanceID] = nm.id
			if t, ok := cg.target[oldID]; ok {
				cg.target[nm.id] = t
				delete(cg.target, oldID)
			}
			for _, a := range []assignment{nm.assigned, nm.revoking} {
				a.each(func(id TopicID, p int32) { cg.owner[idPart{id, p}] = nm.id })
			}
			recs = append(recs, cgMemberTombstones(g.id, oldID)...)
			recs = append(recs, cgMemberRecord(g.id, &nm), cgTargetRecord(g.id, nm.id, cg.target[nm.id]), cgCurrentRecord(g.id, &nm))
			return &nm, recs, false, nil
		}
	}
	if m = cg.members[req.MemberID]; m != nil {
		return m, nil, false, nil
	}
	if req.MaxSize > 0 && len(cg.members) >= req.MaxSize {
		return nil, nil, false, fmt.Errorf("%w: the consumer group has reached its maximum size of %d", ErrGroupMaxSize, req.MaxSize)
	}
	m = newConsumerMember(req.MemberID)
	m.instanceID = req.InstanceID
	cg.members[m.id] = m
	if m.instanceID != nil {
		cg.static[*m.instanceID] = m.id
	}
	return m, nil, true, nil
}

// updateMember applies the request's fields to m: changed reports a change to store,
// subChanged one that needs a new assignment.
func updateMember(m *cmember, req *ConsumerHeartbeatRequest) (changed, subChanged bool) {
	set := func(dst *string, v string, sub bool) {
		if *dst != v {
			*dst, changed = v, true
			subChanged = subChanged || sub
		}
	}
	set(&m.clientID, req.ClientID, false)
	set(&m.host, req.ClientHost, false)
	if req.RackID != nil && (m.rack == nil || *m.rack != *req.RackID) {
		r := *req.RackID
		m.rack, changed = &r, true
	}
	if req.RebalanceTimeoutMs >= 0 {
		if d := time.Duration(req.RebalanceTimeoutMs) * time.Millisecond; d != m.rebalanceTimeout {
			m.rebalanceTimeout, changed = d, true
		}
	}
	if req.SessionTimeout != m.sessionTimeout {
		m.sessionTimeout, changed = req.SessionTimeout, true
	}
	if req.ServerAssignor != nil {
		set(&m.assignor, *req.ServerAssignor, true)
	}
	if req.SubscribedTopics != nil {
		names := slices.Clone(req.SubscribedTopics)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topicNames) {
			m.topicNames, changed, subChanged = names, true, true
		}
	}
	if req.SubscribedRegex != nil {
		re := req.SubscribedRegex
		if *re == "" {
			re = nil
		}
		if (re == nil) != (m.regex == nil) || (re != nil && *re != *m.regex) {
			m.setRegex(re)
			changed, subChanged = true, true
		}
	}
	return changed, subChanged
}

// subscriptionMetadata returns every topic some member subscribes to that exists.
func (cg *consumerGroup) subscriptionMetadata(view TopicsView) map[string]TopicInfo {
	out := map[string]TopicInfo{}
	regex := false
	for _, m := range cg.members {
		for _, n := range m.topicNames {
			if _, ok := out[n]; ok {
				continue
			}
			if t, ok := view.Topic(n); ok {
				out[n] = t
			}
		}
		regex = regex || m.re != nil
	}
	if regex {
		view.Each(func(t TopicInfo) {
			if _, ok := out[t.Name]; ok || internalTopic(t.Name) {
				return
			}
			for _, m := range cg.members {
				if m.re != nil && m.re.MatchString(t.Name) {
					out[t.Name] = t
					return
				}
			}
		})
	}
	return out
}

// computeTarget recomputes the target assignment with the group's assignor and returns the
// records of what changed.
func (s *Shard) computeTarget(gid string, cg *consumerGroup) []coord.Record {
	ids := make([]string, 0, len(cg.members))
	for id := range cg.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	partitions := map[TopicID]int32{}
	for _, t := range cg.topics {
		partitions[t.ID] = t.Partitions
	}
	members := make([]assignMember, 0, len(ids))
	for _, id := range ids {
		m := cg.members[id]
		am := assignMember{id: id, prev: cg.target[id]}
		for name, t := range cg.topics {
			if m.subscribes(name) {
				am.topics = append(am.topics, t.ID)
			}
		}
		members = append(members, am)
	}
	next := assign(cg.assignor(), members, partitions)
	var recs []coord.Record
	for _, id := range ids {
		if a, ok := cg.target[id]; !ok || !a.equal(next[id]) {
			recs = append(recs, cgTargetRecord(gid, id, next[id]))
		}
	}
	cg.target = next
	cg.assignEpoch = cg.epoch
	return append(recs, cgTargetMetaRecord(gid, cg))
}

// reconcile moves m toward its target. owned is what the member reports it owns (nil:
// unknown). A member first gives up what its target no longer holds (its epoch stays until
// it reports them released), then takes, at the target's epoch, the partitions of its target
// that no other member still owns; the rest it takes on later heartbeats.
func (cg *consumerGroup) reconcile(m *cmember, owned assignment) {
	if m.state == memberUnrevoked {
		if owned == nil || owned.overlaps(m.revoking) {
			return
		}
		cg.release(m, m.revoking)
		m.revoking = assignment{}
		m.state = memberStable
	}
	if m.epoch == cg.assignEpoch && m.state == memberStable {
		return
	}
	target := cg.target[m.id]
	if revoke := m.assigned.minus(target); len(revoke) > 0 {
		m.assigned = m.assigned.intersect(target)
		if owned != nil && !owned.overlaps(revoke) {
			// It already reports them released: no round trip needed.
			cg.release(m, revoke)
		} else {
			m.revoking = revoke
			m.state = memberUnrevoked
			return
		}
	}
	free := target.filter(func(id TopicID, p int32) bool {
		o := cg.owner[idPart{id, p}]
		return o == "" || o == m.id
	})
	free.each(func(id TopicID, p int32) { cg.owner[idPart{id, p}] = m.id })
	m.assigned = free
	if m.epoch != cg.assignEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignEpoch
	}
	m.state = memberStable
	if len(target.minus(free)) > 0 {
		m.state = memberUnreleased
	}
}

// release drops m's ownership of a.
func (cg *consumerGroup) release(m *cmember, a assignment) {
	a.each(func(id TopicID, p int32) {
		if cg.owner[idPart{id, p}] == m.id {
			delete(cg.owner, idPart{id, p})
		}
	})
}

// leaveConsumer handles heartbeats with epoch -1 (leave) and -2 (a static member leaving
// for now: it keeps its assignment until its session times out or its instance returns).
func (s *Shard) leaveConsumer(now time.Time, g *group, req *ConsumerHeartbeatRequest) ([]coord.Record, error) {
	cg := g.cg
	m := cg.members[req.MemberID]
	if req.MemberEpoch == -2 {
		id, ok := cg.static[*req.InstanceID]
		if !ok {
			return nil, fmt.Errorf("%w: no member with instance id %s", ErrUnknownMember, *req.InstanceID)
		}
		if id != req.MemberID {
			return nil, fmt.Errorf("%w: instance id %s belongs to another member", ErrFencedInstance, *req.InstanceID)
		}
		m.left = true
		s.scheduleConsumerSession(g.id, m, now)
		return []coord.Record{cgCurrentRecord(g.id, m)}, nil
	}
	if m == nil {
		return nil, fmt.Errorf("%w: member %s is not in group %s", ErrUnknownMember, req.MemberID, g.id)
	}
	return s.removeConsumerMember(now, g, m), nil
}

// removeConsumerMember takes m out of the group; the others get a new target assignment on
// their next heartbeat.
func (s *Shard) removeConsumerMember(now time.Time, g *group, m *cmember) []coord.Record {
	cg := g.cg
	s.timers.Cancel(cSessionKey(g.id, m.id))
	s.timers.Cancel(cRebalanceKey(g.id, m.id))
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.release(m, m.assigned)
	cg.release(m, m.revoking)
	cg.epoch++
	cg.stateTime = now
	return append(cgMemberTombstones(g.id, m.id), cgRecord(g.id, cg))
}

func (s *Shard) scheduleConsumerSession(gid string, m *cmember, now time.Time) {
	mid := m.id
	s.timers.Schedule(cSessionKey(gid, mid), now.Add(m.sessionTimeout), func(now time.Time) coord.Result {
		return s.fenceConsumer(now, gid, mid)
	})
}

// scheduleConsumerRebalance gives a member that must revoke partitions its rebalance
// timeout to do so.
func (s *Shard) scheduleConsumerRebalance(gid string, m *cmember, now time.Time) {
	mid := m.id
	s.timers.Schedule(cRebalanceKey(gid, mid), now.Add(m.rebalanceTimeout), func(now time.Time) coord.Result {
		return s.fenceConsumer(now, gid, mid)
	})
}

// fenceConsumer removes a member whose session or rebalance timeout expired.
func (s *Shard) fenceConsumer(now time.Time, gid, mid string) coord.Result {
	g := s.groups[gid]
	if g == nil || g.cg == nil || g.cg.members[mid] == nil {
		return coord.Result{}
	}
	cg := g.cg
	snap := cg.clone()
	recs := s.removeConsumerMember(now, g, cg.members[mid])
	cg.seq++
	after := cg.seq
	return coord.Result{Records: recs, Done: func(err error) {
		if err != nil {
			s.revertConsumer(g, cg, snap, after, now)
		}
	}}
}

// loadedConsumers prepares the replayed consumer groups: derived maps, session timers.
func (s *Shard) loadedConsumers(now time.Time) {
	for _, g := range s.groups {
		if g.cg == nil {
			continue
		}
		g.cg.rebuild()
		for _, m := range g.cg.members {
			s.scheduleConsumerSession(g.id, m, now)
			if m.state == memberUnrevoked {
				s.scheduleConsumerRebalance(g.id, m, now)
			}
		}
	}
}

// dropConsumerGroup turns an empty consumer group back into a plain group (for a classic
// join or a deletion) and returns the tombstones of its records.
func (s *Shard) dropConsumerGroup(g *group) []coord.Record {
	g.cg = nil
	return cgTombstones(g.id)
}

// ConsumerDescribe returns a consumer group as ConsumerGroupDescribe shows it.
func (s *Shard) ConsumerDescribe(groupID string) ConsumerDescription {
	g := s.groups[groupID]
	if g == nil || g.state == Dead {
		return ConsumerDescription{Group: groupID, State: "Dead", Err: fmt.Errorf("%w: group %s not found", ErrGroupNotFound, groupID)}
	}
	if g.cg == nil {
		return ConsumerDescription{Group: groupID, State: "Dead", Err: fmt.Errorf("%w: group %s is not a consumer group", ErrGroupNotFound, groupID)}
	}
	cg := g.cg
	d := ConsumerDescription{Group: groupID, State: cg.state(), Epoch: cg.epoch, AssignmentEpoch: cg.assignEpoch,
		Assignor: cg.assignor(), TopicNames: map[TopicID]string{}}
	for name, t := range cg.topics {
		d.TopicNames[t.ID] = name
	}
	ids := slices.Sorted(maps.Keys(cg.members))
	for _, id := range ids {
		m := cg.members[id]
		d.Members = append(d.Members, ConsumerMemberDescription{MemberID: m.id, ClientID: m.clientID, ClientHost: m.host,
			InstanceID: m.instanceID, RackID: m.rack, Epoch: m.epoch, SubscribedTopics: slices.Clone(m.topicNames),
			SubscribedRegex: m.regex, Assignment: m.assigned.list(), Target: cg.target[id].list()})
	}
	return d
}

// commitCheckConsumer validates an OffsetCommit against a consumer group: a commit from
// outside the group (epoch -1, no member) only while it has no members; a member's commit at
// its epoch, or at an older one for partitions it still owns (the answer bumping its epoch
// may still be in flight).
func commitCheckConsumer(g *group, req CommitRequest, offsets []CommitOffset) error {
	cg := g.cg
	if req.Generation < 0 && req.MemberID == "" {
		if len(cg.members) > 0 {
			return fmt.Errorf("%w: group %s has members", ErrUnknownMember, g.id)
		}
		return nil
	}
	m := cg.members[req.MemberID]
	if m == nil {
		return fmt.Errorf("%w: member %s is not in group %s", ErrUnknownMember, req.MemberID, g.id)
	}
	if req.Generation == m.epoch {
		return nil
	}
	if req.Generation < m.epoch && req.Generation >= 0 {
		owns := true
		for _, o := range offsets {
			t, ok := cg.topics[o.Topic]
			if !ok || !(m.assigned.has(t.ID, o.Partition) || m.revoking.has(t.ID, o.Partition)) {
				owns = false
				break
			}
		}
		if owns {
			return nil
		}
	}
	return fmt.Errorf("%w: member epoch %d, the coordinator knows %d", ErrStaleMemberEpoch, req.Generation, m.epoch)
}

// consumerSubscribed returns the topics the members of a consumer group subscribe to.
func consumerSubscribed(cg *consumerGroup) map[string]bool {
	out := map[string]bool{}
	for name := range cg.topics {
		out[name] = true
	}
	for _, m := range cg.members {
		for _, n := range m.topicNames {
			out[n] = true
		}
	}
	return out
}

// ConsumerHeartbeat serves ConsumerGroupHeartbeat.
func (c *Coordinator) ConsumerHeartbeat(req ConsumerHeartbeatRequest, cb func(ConsumerHeartbeatResult)) {
	c.submit(req.Group, func(m *Shard, now time.Time) coord.Result { return m.ConsumerHeartbeat(now, req, cb) },
		func(err error) {
			cb(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
		})
}

// ConsumerDescribe serves ConsumerGroupDescribe for one group.
func (c *Coordinator) ConsumerDescribe(group string, cb func(ConsumerDescription)) {
	c.submit(group, func(m *Shard, now time.Time) coord.Result {
		cb(m.ConsumerDescribe(group))
		return coord.Result{}
	}, func(err error) { cb(ConsumerDescription{Err: err, Group: group, State: "Dead"}) })
}
