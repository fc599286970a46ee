package metadata

import "errors"

var (
	// ErrCorrupt: an encoded entry or snapshot cannot be decoded.
	ErrCorrupt = errors.New("metadata: corrupt encoding")
	// ErrInvalidRecord: a batch does not fold into the image it applies to
	// (unknown topic, duplicate id, producer ids going backwards …); the whole
	// batch is rejected.
	ErrInvalidRecord = errors.New("metadata: invalid record")
	// ErrNotLeader: this node is not the metadata quorum leader.
	ErrNotLeader = errors.New("metadata: not the quorum leader")
	// ErrClosed: the store is closed or shutting down.
	ErrClosed = errors.New("metadata: store closed")
	// ErrClusterIDMismatch: the directory belongs to another cluster than the
	// one configured.
	ErrClusterIDMismatch = errors.New("metadata: cluster id mismatch")
	// ErrUnknownPartition: the image has no such topic partition.
	ErrUnknownPartition = errors.New("metadata: unknown partition")
	// ErrNoLeaderAddr: a partition has no leader, or its leader no endpoint on the listener.
	ErrNoLeaderAddr = errors.New("metadata: no reachable leader")
	// ErrInvalidUUID: a string is not a Kafka-style base64 UUID.
	ErrInvalidUUID = errors.New("metadata: invalid uuid")
)
