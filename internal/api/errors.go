package api

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/poste-io/poste/internal/config"
	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/coord"
	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/replica"
	"github.com/poste-io/poste/internal/txn"
)

// errorTable maps each package's sentinel errors to the Kafka error a client receives. This
// is the one place where internal errors become Kafka codes.
var errorTable = []struct {
	err  error
	kerr *kerr.Error
}{
	{record.ErrCorrupt, kerr.CorruptMessage},
	{record.ErrInvalidRecord, kerr.InvalidRecord},
	{record.ErrInvalidTimestamp, kerr.InvalidTimestamp},
	{record.ErrTooLarge, kerr.MessageTooLarge},
	{record.ErrUnsupportedMagic, kerr.UnsupportedForMessageFormat},
	{record.ErrUnsupportedCompression, kerr.UnsupportedCompressionType},

	{partition.ErrStorage, kerr.KafkaStorageError},
	{partition.ErrClosed, kerr.NotLeaderForPartition},
	{partition.ErrTooManyBatches, kerr.InvalidRecord},
	{partition.ErrOutOfOrderSeq, kerr.OutOfOrderSequenceNumber},
	{partition.ErrInvalidEpoch, kerr.InvalidProducerEpoch},
	{partition.ErrTimeout, kerr.RequestTimedOut},
	{partition.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
	{partition.ErrInvalidTxnState, kerr.InvalidTxnState},
	{partition.ErrNotLeader, kerr.NotLeaderForPartition},
	{partition.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{partition.ErrUnknownLeaderEpoch, kerr.UnknownLeaderEpoch},
	{partition.ErrNotEnoughReplicas, kerr.NotEnoughReplicas},

	{txn.ErrInvalidTimeout, kerr.InvalidTransactionTimeout},
	{txn.ErrConcurrentTransactions, kerr.ConcurrentTransactions},
	{txn.ErrProducerFenced, kerr.ProducerFenced},
	{txn.ErrInvalidProducerIDMapping, kerr.InvalidProducerIDMapping},
	{txn.ErrInvalidTxnState, kerr.InvalidTxnState},
	{txn.ErrTransactionalIDNotFound, kerr.TransactionalIDNotFound},
	{txn.ErrCoordinatorNotAvailable, kerr.CoordinatorNotAvailable},

	{replica.ErrNotReplica, kerr.NotLeaderForPartition},
	{replica.ErrNotHosted, kerr.UnknownTopicOrPartition},
	{replica.ErrLogDirNotFound, kerr.LogDirNotFound},
	{replica.ErrMoving, kerr.NotLeaderForPartition},

	{controller.ErrTopicExists, kerr.TopicAlreadyExists},
	{controller.ErrInvalidTopic, kerr.InvalidTopicException},
	{controller.ErrInvalidPartitions, kerr.InvalidPartitions},
	{controller.ErrInvalidReplicationFactor, kerr.InvalidReplicationFactor},
	{controller.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{controller.ErrUnknownTopic, kerr.UnknownTopicOrPartition},
	{controller.ErrInvalidConfig, kerr.InvalidConfig},
	{controller.ErrNotController, kerr.NotController},
	{controller.ErrInvalidRequest, kerr.InvalidRequest},
	{controller.ErrStaleBrokerEpoch, kerr.StaleBrokerEpoch},
	{controller.ErrBrokerNotRegistered, kerr.BrokerIDNotRegistered},
	{controller.ErrNotLeaderOrFollower, kerr.NotLeaderForPartition},
	{controller.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{controller.ErrInvalidUpdateVersion, kerr.InvalidUpdateVersion},
	{controller.ErrIneligibleReplica, kerr.IneligibleReplica},
	{controller.ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
	{controller.ErrElectionNotNeeded, kerr.ElectionNotNeeded},
	{controller.ErrEligibleLeadersNotAvailable, kerr.EligibleLeadersNotAvailable},
	{controller.ErrNoReassignmentInProgress, kerr.NoReassignmentInProgress},
	{config.ErrInvalidConfig, kerr.InvalidConfig},

	{coord.ErrNotCoordinator, kerr.NotCoordinator},
	{coord.ErrLoading, kerr.CoordinatorLoadInProgress},
	{coord.ErrUnavailable, kerr.CoordinatorNotAvailable},

	{group.ErrInvalidGroupID, kerr.InvalidGroupID},
	{group.ErrUnknownMember, kerr.UnknownMemberID},
	{group.ErrIllegalGeneration, kerr.IllegalGeneration},
	{group.ErrRebalanceInProgress, kerr.RebalanceInProgress},
	{group.ErrFencedInstance, kerr.FencedInstanceID},
	{group.ErrMemberIDRequired, kerr.MemberIDRequired},
	{group.ErrInconsistentProtocol, kerr.InconsistentGroupProtocol},
	{group.ErrInvalidSessionTimeout, kerr.InvalidSessionTimeout},
	{group.ErrGroupMaxSize, kerr.GroupMaxSizeReached},
	{group.ErrGroupNotFound, kerr.GroupIDNotFound},
	{group.ErrNonEmptyGroup, kerr.NonEmptyGroup},
	{group.ErrSubscribedToTopic, kerr.GroupSubscribedToTopic},
	{group.ErrMetadataTooLarge, kerr.OffsetMetadataTooLarge},
	{group.ErrCoordinatorNotAvail, kerr.CoordinatorNotAvailable},
	{group.ErrUnknownTopicPartition, kerr.UnknownTopicOrPartition},
	{group.ErrLoading, kerr.CoordinatorLoadInProgress},
	{group.ErrInvalidRequest, kerr.InvalidRequest},
	{group.ErrFencedMemberEpoch, kerr.FencedMemberEpoch},
	{group.ErrStaleMemberEpoch, kerr.StaleMemberEpoch},
	{group.ErrUnreleasedInstanceID, kerr.UnreleasedInstanceID},
	{group.ErrUnsupportedAssignor, kerr.UnsupportedAssignor},
	{group.ErrInvalidRegex, kerr.InvalidRegularExpression},
}

// errCode returns the Kafka error code for err (0 for nil); errors the table does not know are
// UNKNOWN_SERVER_ERROR.
func errCode(err error) int16 {
	if err == nil {
		return 0
	}
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e.kerr.Code
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage returns the message to send beside an error code, or nil.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}
