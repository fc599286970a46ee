package controller

import (
	"errors"
	"fmt"
)

// Sentinel errors of the controller. Results carry errors that match one of
// them with errors.Is and whose Error() is the human-readable text the api
// layer returns as the Kafka error_message.
var (
	ErrTopicExists              = errors.New("topic already exists")
	ErrInvalidTopic             = errors.New("invalid topic")
	ErrInvalidPartitions        = errors.New("invalid partitions")
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")
	ErrUnknownTopic             = errors.New("unknown topic or partition")
	ErrUnknownTopicID           = errors.New("unknown topic id")
	ErrInvalidConfig            = errors.New("invalid config")
	ErrInvalidRequest           = errors.New("invalid request")
	// ErrNotController: this node does not lead the metadata quorum.
	ErrNotController = errors.New("not the controller")

	// Broker lifecycle (BrokerRegistration, BrokerHeartbeat, AlterPartition).
	ErrStaleBrokerEpoch    = errors.New("stale broker epoch")
	ErrBrokerNotRegistered = errors.New("broker not registered")

	// AlterPartition.
	ErrNotLeaderOrFollower  = errors.New("not leader or follower")
	ErrFencedLeaderEpoch    = errors.New("fenced leader epoch")
	ErrInvalidUpdateVersion = errors.New("invalid update version")
	ErrIneligibleReplica    = errors.New("ineligible replica")

	// ElectLeaders.
	ErrPreferredLeaderNotAvailable = errors.New("preferred leader not available")
	ErrElectionNotNeeded           = errors.New("election not needed")
	ErrEligibleLeadersNotAvailable = errors.New("eligible leaders not available")

	// ListPartitionReassignments / AlterPartitionReassignments.
	ErrNoReassignmentInProgress = errors.New("no reassignment in progress")
)

// decisionError is a sentinel with a specific message.
type decisionError struct {
	kind error
	msg  string
}

func (e *decisionError) Error() string { return e.msg }
func (e *decisionError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &decisionError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
