// Package group is the consumer-group coordinator — the classic protocol (JoinGroup/
// SyncGroup/Heartbeat/LeaveGroup), the KIP-848 consumer protocol (ConsumerGroupHeartbeat,
// consumer*.go) and committed offsets — kept as records of the compacted internal topic
// __consumer_offsets and run as operations of the coordinator runtime (internal/coord).
//
// A group lives in the shard of partition partitionFor(group) of __consumer_offsets; the
// shard's goroutine owns every group of that partition, so the state machine below has no
// locks. See docs/groups.md for the states, timeouts and storage.
package group

import (
	"errors"
	"time"
)

// OffsetsTopic is the internal topic holding groups and committed offsets.
const OffsetsTopic = "__consumer_offsets"

// Errors of the group coordinator; internal/api maps them to Kafka codes.
var (
	ErrInvalidGroupID        = errors.New("invalid group id")                   // INVALID_GROUP_ID
	ErrUnknownMember         = errors.New("unknown member id")                  // UNKNOWN_MEMBER_ID
	ErrIllegalGeneration     = errors.New("illegal generation")                 // ILLEGAL_GENERATION
	ErrRebalanceInProgress   = errors.New("rebalance in progress")              // REBALANCE_IN_PROGRESS
	ErrFencedInstance        = errors.New("fenced instance id")                 // FENCED_INSTANCE_ID
	ErrMemberIDRequired      = errors.New("member id required")                 // MEMBER_ID_REQUIRED
	ErrInconsistentProtocol  = errors.New("inconsistent group protocol")        // INCONSISTENT_GROUP_PROTOCOL
	ErrInvalidSessionTimeout = errors.New("invalid session timeout")            // INVALID_SESSION_TIMEOUT
	ErrGroupMaxSize          = errors.New("group max size reached")             // GROUP_MAX_SIZE_REACHED
	ErrGroupNotFound         = errors.New("group id not found")                 // GROUP_ID_NOT_FOUND
	ErrNonEmptyGroup         = errors.New("group is not empty")                 // NON_EMPTY_GROUP
	ErrSubscribedToTopic     = errors.New("group is subscribed to the topic")   // GROUP_SUBSCRIBED_TO_TOPIC
	ErrMetadataTooLarge      = errors.New("offset metadata too large")          // OFFSET_METADATA_TOO_LARGE
	ErrCoordinatorNotAvail   = errors.New("group coordinator not available")    // COORDINATOR_NOT_AVAILABLE
	ErrUnknownTopicPartition = errors.New("unknown topic or partition")         // UNKNOWN_TOPIC_OR_PARTITION
	ErrLoading               = errors.New("group coordinator load in progress") // COORDINATOR_LOAD_IN_PROGRESS
)

// Config is the group coordinator's configuration (broker keys in parentheses).
type Config struct {
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms
	MaxSize               int           // group.max.size; <= 0: unbounded
	OffsetsRetention      time.Duration // offsets.retention.minutes
	RetentionCheck        time.Duration // offsets.retention.check.interval.ms; 0: 10 minutes
	MaxMetadataBytes      int           // offset.metadata.max.bytes; 0: 4096
	// NewMemberID returns a fresh member id for a client; nil: client id + "-" + a random UUID.
	NewMemberID func(clientID string) string
}

// State is a classic group's state.
type State int8

// The classic protocol's states, as Kafka names them.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	}
	return "Dead"
}

// PartitionFor returns the __consumer_offsets partition of a group: Kafka's
// Utils.abs(groupId.hashCode()) % partitions, with Java's String.hashCode over UTF-16 units.
func PartitionFor(group string, partitions int32) int32 {
	var h int32
	for _, r := range group {
		if r >= 0x10000 {
			r -= 0x10000
			h = 31*h + int32(0xD800+(r>>10))
			h = 31*h + int32(0xDC00+(r&0x3FF))
			continue
		}
		h = 31*h + int32(r)
	}
	if h == -2147483648 {
		h = 0
	} else if h < 0 {
		h = -h
	}
	return h % partitions
}

// Protocol is one assignment protocol a member supports, with its metadata.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Group                string
	MemberID             string
	InstanceID           *string
	ClientID, ClientHost string
	SessionTimeout       time.Duration
	RebalanceTimeout     time.Duration
	ProtocolType         string
	Protocols            []Protocol
	RequireKnownMemberID bool // JoinGroup v4+ (KIP-394)
	SupportsSkipAssign   bool // JoinGroup v9+ (KIP-814)
}

// JoinMember is one member as the leader sees it in its JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult is the answer to a JoinGroup request.
type JoinResult struct {
	Err            error
	Generation     int32
	ProtocolType   string
	Protocol       string
	LeaderID       string
	MemberID       string
	Members        []JoinMember // the leader's only
	SkipAssignment bool
}

// SyncRequest is a SyncGroup request.
type SyncRequest struct {
	Group        string
	Generation   int32
	MemberID     string
	InstanceID   *string
	ProtocolType *string // v5+
	Protocol     *string // v5+
	Assignments  map[string][]byte
}

// SyncResult is the answer to a SyncGroup request.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat request.
type HeartbeatRequest struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID *string
}

// LeaveMember names a member leaving; either id may be empty (v3+ batches them).
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// LeaveResult is the answer to a LeaveGroup request: a group error, or one error per member.
type LeaveResult struct {
	Err     error
	Members []error
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64 // ms
}

// CommitRequest is an OffsetCommit request.
type CommitRequest struct {
	Group      string
	Generation int32 // -1: a commit from outside any generation
	MemberID   string
	InstanceID *string
	Offsets    map[TopicPartition]Offset
	// Transactional marks the offsets of a committed transaction. Their member and
	// generation were checked when its TxnOffsetCommit arrived; the commit of the
	// transaction makes them the group's whatever its members have done since (left,
	// rebalanced), as Kafka's transaction marker does, so they are not checked again.
	Transactional bool
}

// CommitResult is the answer to an OffsetCommit: a group error applies to every partition.
type CommitResult struct {
	Err        error
	Partitions map[TopicPartition]error
}

// FetchResult is the answer to an OffsetFetch for one group.
type FetchResult struct {
	Err     error
	Offsets map[TopicPartition]Offset // requested partitions without a commit are absent
}

// MemberDescription is a member as DescribeGroups shows it.
type MemberDescription struct {
	MemberID, ClientID, ClientHost string
	InstanceID                     *string
	Metadata, Assignment           []byte
}

// Description is a group as DescribeGroups shows it.
type Description struct {
	Err          error
	Group        string
	State        State
	ProtocolType string
	Protocol     string
	Members      []MemberDescription
}

// Listing is a group as ListGroups shows it.
type Listing struct {
	Group        string
	ProtocolType string
	State        State  // of a classic group
	Type         string // "classic" or "consumer" (KIP-848)
	// ConsumerState is a consumer group's state: Empty, Assigning, Reconciling or Stable.
	ConsumerState string
}

// StateName is the group's state as ListGroups reports it.
func (l Listing) StateName() string {
	if l.Type == "consumer" {
		return l.ConsumerState
	}
	return l.State.String()
}
