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
