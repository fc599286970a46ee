package controller

import "strings"

// MaxTopicNameLength is Kafka's limit: 255 minus room for a partition suffix
// and the ".deleted" marker in directory names.
const MaxTopicNameLength = 249

// MetadataTopic is the name Kafka reserves for its metadata log; Poste keeps
// it reserved so that tools never see it as an ordinary topic.
const MetadataTopic = "__cluster_metadata"

// ValidateTopicName applies Kafka's topic name rules: non-empty, not "." or
// "..", at most 249 characters of [a-zA-Z0-9._-]. The error matches
// ErrInvalidTopic.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return errorf(ErrInvalidTopic, "Topic name is invalid: it is empty.")
	case name == "." || name == "..":
		return errorf(ErrInvalidTopic, "Topic name %q is invalid: it cannot be '.' or '..'.", name)
	case len(name) > MaxTopicNameLength:
		return errorf(ErrInvalidTopic, "Topic name is invalid: it is %d characters long, the maximum is %d.", len(name), MaxTopicNameLength)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return errorf(ErrInvalidTopic, "Topic name %q is invalid: only ASCII letters, digits, '.', '_' and '-' are allowed.", name)
		}
	}
	return nil
}

// collisionKey maps names that metrics systems cannot tell apart ('.' and
// '_' are interchangeable there) to one key, as Kafka does.
func collisionKey(name string) string { return strings.ReplaceAll(name, ".", "_") }

func collisionError(name, existing string) error {
	return errorf(ErrInvalidTopic, "Topic '%s' collides with existing topic '%s': '.' and '_' are interchangeable in metric names.", name, existing)
}

func existsError(name string) error {
	return errorf(ErrTopicExists, "Topic '%s' already exists.", name)
}

func duplicateError(what, name string) error {
	return errorf(ErrInvalidRequest, "%s %s appears more than once in the request.", what, name)
}
