package streams

import "errors"

// Sentinel errors of package streams; wrapped errors carry the detail, compare with errors.Is.
var (
	// ErrSerde: a key or value could not be serialized or deserialized.
	ErrSerde = errors.New("streams: serde error")
	// ErrTopology: the topology is malformed (unknown parent, duplicate name, missing serde …).
	ErrTopology = errors.New("streams: invalid topology")
	// ErrNotCopartitioned: source topics read by one sub-topology differ in partition count.
	ErrNotCopartitioned = errors.New("streams: topics are not co-partitioned")
	// ErrUnknownStore: a processor asked for a state store that is not connected to it.
	ErrUnknownStore = errors.New("streams: unknown state store")
	// ErrReadOnlyStore: a processor tried to write to a global table's store.
	ErrReadOnlyStore = errors.New("streams: store is read-only")
	// ErrConfig: a configuration value is missing or invalid.
	ErrConfig = errors.New("streams: invalid configuration")
	// ErrProcessing: user code failed on a record and the error handler chose to stop.
	ErrProcessing = errors.New("streams: processing failed")
	// ErrStateStore: a persistent store or its state directory failed (I/O, a locked
	// directory); the application stops rather than commit past it.
	ErrStateStore = errors.New("streams: state store failure")
	// ErrStoreNotAvailable: an interactive query found no running instance of the store
	// here (the application is not running, is rebalancing or restoring, or hosts none of
	// the store's tasks), or the key's owner is not known yet. Retry, or ask another instance.
	ErrStoreNotAvailable = errors.New("streams: state store not available")
)
