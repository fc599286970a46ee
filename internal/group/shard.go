package group

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/poste-io/poste/internal/coord"
)

// Shard is the state of every group of one __consumer_offsets partition: a coord.Machine.
//
// Invariants:
//   - All methods run on the shard goroutine of the coordinator runtime (or a test's single
//     goroutine); nothing here is locked.
//   - groups holds every group with members, a stored generation or committed offsets; a
//     group is removed when it is deleted or expires empty with no offsets.
//   - A group's committed offsets change only when their records are committed (in the Done
//     of the operation); membership changes at once and is reverted where a write fails.
type Shard struct {
	cfg    Config
	timers coord.Timers
	groups map[string]*group
}

// NewShard returns an empty shard.
func NewShard(cfg Config) *Shard {
	if cfg.RetentionCheck <= 0 {
		cfg.RetentionCheck = 10 * time.Minute
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = 4096
	}
	if cfg.NewMemberID == nil {
		cfg.NewMemberID = randomMemberID
	}
	return &Shard{cfg: cfg, groups: make(map[string]*group)}
}

func randomMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return clientID + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type member struct {
	id               string
	instanceID       *string
	clientID, host   string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocolType     string
	protocols        []Protocol
	assignment       []byte
	joinCb           func(JoinResult) // set while the member waits for the join to complete
	syncCb           func(SyncResult) // set while the member waits for the leader's assignment
	supportsSkip     bool
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

type group struct {
	id           string
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	order        []string          // member ids in join order: deterministic answers
	pending      map[string]bool   // member ids handed out with MEMBER_ID_REQUIRED
	static       map[string]string // instance id → member id
	offsets      map[TopicPartition]Offset
	stateTime    time.Time // when the group entered its state
	stored       bool      // a group metadata record of it exists
	// cg is set for a KIP-848 consumer group (consumer.go); its classic fields then stay
	// empty (no members, state Empty) and only offsets are shared.
	cg *consumerGroup

	// Initial delayed join (group.initial.rebalance.delay.ms) of a group leaving Empty.
	initialDelay   bool
	newMemberAdded bool
	delayRemaining time.Duration
}

func newGroup(id string, now time.Time) *group {
	return &group{id: id, state: Empty, members: map[string]*member{}, pending: map[string]bool{},
		static: map[string]string{}, offsets: map[TopicPartition]Offset{}, stateTime: now}
}

func (g *group) transition(s State, now time.Time) {
	g.state = s
	g.stateTime = now
}

func (g *group) add(m *member) {
	g.members[m.id] = m
	g.order = append(g.order, m.id)
	if m.instanceID != nil {
		g.static[*m.instanceID] = m.id
	}
	if g.leader == "" {
		g.leader = m.id
	}
}

func (g *group) remove(id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	for i, o := range g.order {
		if o == id {
			g.order = append(g.order[:i:i], g.order[i+1:]...)
			break
		}
	}
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == id {
		g.leader = ""
		if len(g.order) > 0 {
			g.leader = g.order[0]
		}
	}
}

func (g *group) awaitingJoin() int {
	n := 0
	for _, m := range g.members {
		if m.joinCb != nil {
			n++
		}
	}
	return n
}

// Timer keys.
func hbKey(g, m string) string      { return "hb/" + g + "/" + m }
func pendingKey(g, m string) string { return "pending/" + g + "/" + m }
func joinKey(g string) string       { return "join/" + g }

const retentionKey = "retention"

// Loaded implements coord.Machine: groups replayed with members get a session timeout to
// come back; the retention check starts.
func (s *Shard) Loaded(t coord.Timers, now time.Time) {
	s.timers = t
	for _, g := range s.groups {
		for _, id := range g.order {
			s.scheduleHeartbeat(g, g.members[id], now)
		}
	}
	s.loadedConsumers(now)
	s.timers.Schedule(retentionKey, now.Add(s.cfg.RetentionCheck), s.retentionCheck)
}

// Unloaded implements coord.Machine: parked joins and syncs learn the coordinator moved.
func (s *Shard) Unloaded() {
	for _, g := range s.groups {
		for _, m := range g.members {
			if m.joinCb != nil {
				m.joinCb(JoinResult{Err: coord.ErrNotCoordinator, Generation: -1, MemberID: m.id})
				m.joinCb = nil
			}
			if m.syncCb != nil {
				m.syncCb(SyncResult{Err: coord.ErrNotCoordinator})
				m.syncCb = nil
			}
		}
	}
}

// Replay implements coord.Machine.
func (s *Shard) Replay(_ int64, key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("short key")
	}
	switch version := int16(key[0])<<8 | int16(key[1]); version {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return err
		}
		tp := TopicPartition{k.Topic, k.Partition}
		if value == nil {
			if g := s.groups[k.Group]; g != nil {
				delete(g.offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return err
		}
		g := s.groups[k.Group]
		if g == nil {
			g = newGroup(k.Group, time.UnixMilli(v.CommitTimestamp))
			s.groups[k.Group] = g
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		g.offsets[tp] = Offset{Offset: v.Offset, LeaderEpoch: epoch, Metadata: v.Metadata, CommitTime: v.CommitTimestamp}
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return err
		}
		if value == nil {
			delete(s.groups, k.Group)
			return nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return err
		}
		old := s.groups[k.Group]
		g := newGroup(k.Group, time.UnixMilli(v.CurrentStateTimestamp))
		if old != nil {
			g.offsets = old.offsets
		}
		g.stored = true
		g.protocolType, g.generation = v.ProtocolType, v.Generation
		if v.Protocol != nil {
			g.protocol = *v.Protocol
		}
		for _, vm := range v.Members {
			m := &member{id: vm.MemberID, instanceID: vm.InstanceID, clientID: vm.ClientID, host: vm.ClientHost,
				sessionTimeout:   time.Duration(vm.SessionTimeoutMillis) * time.Millisecond,
				rebalanceTimeout: time.Duration(vm.RebalanceTimeoutMillis) * time.Millisecond,
				protocolType:     v.ProtocolType, assignment: vm.Assignment,
				protocols: []Protocol{{Name: g.protocol, Metadata: vm.Subscription}}}
			if m.rebalanceTimeout <= 0 {
				m.rebalanceTimeout = m.sessionTimeout
			}
			g.add(m)
		}
		if v.Leader != nil {
			g.leader = *v.Leader
		}
		if len(g.members) > 0 {
			g.state = Stable
		}
		s.groups[k.Group] = g
	default:
		if isConsumerKey(version) {
			return s.replayConsumer(version, key, value)
		}
		// Records of other types are skipped, as Kafka skips record versions it does not serve.
	}
	return nil
}

// groupRecord encodes the group metadata record of g as it stands (v3 value).
func groupRecord(g *group) coord.Record {
	k := kmsg.NewGroupMetadataKey()
	k.Version = 2
	k.Group = g.id
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	for _, id := range g.order {
		m := g.members[id]
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = m.id, m.instanceID, m.clientID, m.host
		vm.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		vm.Assignment = m.assignment
		v.Members = append(v.Members, vm)
	}
	return coord.Record{Key: k.AppendTo(nil), Value: v.AppendTo(nil)}
}

func groupTombstone(id string) coord.Record {
	k := kmsg.NewGroupMetadataKey()
	k.Version = 2
	k.Group = id
	return coord.Record{Key: k.AppendTo(nil)}
}

func offsetKey(group string, tp TopicPartition) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = 1
	k.Group, k.Topic, k.Partition = group, tp.Topic, tp.Partition
	return k.AppendTo(nil)
}

func offsetRecord(group string, tp TopicPartition, o Offset) coord.Record {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset, v.LeaderEpoch, v.Metadata, v.CommitTimestamp = o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTime
	return coord.Record{Key: offsetKey(group, tp), Value: v.AppendTo(nil)}
}
