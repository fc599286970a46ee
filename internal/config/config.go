// Package config holds Poste's broker and topic configuration: the keys, their
// types, defaults and validation, how a broker configuration is loaded from a
// properties file, POSTE_ environment variables and flag overrides, how a
// topic's effective configuration is resolved from broker defaults and topic
// overrides, and how both are described for DescribeConfigs.
//
// Names, types, defaults and semantics follow Kafka's "Broker Configs" and
// "Topic Configs" wherever Poste supports a key; the few Poste-only keys
// (log.flush.policy, cluster.id) are documented in docs/configuration.md.
//
// The package imports nothing internal. Everything it returns is immutable
// once built and safe to read from any goroutine.
package config

import (
	"errors"
	"strconv"
)

// ErrInvalidConfig is wrapped by every error that rejects a configuration key
// or value: unknown topic config names, unparsable numbers, out-of-range values,
// unknown enum values and malformed listeners. The error text is Kafka-like and
// meant to be returned to clients as the error message.
var ErrInvalidConfig = errors.New("invalid configuration")

// ErrMalformedProperties is returned by ParseProperties when the input is not
// a valid properties file (a broken \uXXXX escape).
var ErrMalformedProperties = errors.New("malformed properties")

// Error is a configuration error naming the key. Its text is what Kafka would
// say ("Invalid value abc for configuration segment.bytes: Not a number of type
// INT", "Unknown topic config name: x"); it unwraps to ErrInvalidConfig.
type Error struct {
	// Name is the configuration key the error is about.
	Name string
	msg  string
}

func (e *Error) Error() string { return e.msg }

// Unwrap makes errors.Is(err, ErrInvalidConfig) hold.
func (e *Error) Unwrap() error { return ErrInvalidConfig }

func invalidValue(name, value, reason string) *Error {
	return &Error{Name: name, msg: "Invalid value " + value + " for configuration " + name + ": " + reason}
}

// Type is a configuration value type, named as Kafka's ConfigDef types are.
type Type string

// The configuration types. Their DescribeConfigs codes are given by ID.
const (
	TypeBoolean  Type = "BOOLEAN"
	TypeString   Type = "STRING"
	TypeInt      Type = "INT"
	TypeShort    Type = "SHORT"
	TypeLong     Type = "LONG"
	TypeDouble   Type = "DOUBLE"
	TypeList     Type = "LIST"
	TypeClass    Type = "CLASS"
	TypePassword Type = "PASSWORD"
)

// ID returns the type's config_type code in DescribeConfigs responses (v3+):
// 0 unknown, 1 BOOLEAN, 2 STRING, 3 INT, 4 SHORT, 5 LONG, 6 DOUBLE, 7 LIST,
// 8 CLASS, 9 PASSWORD.
func (t Type) ID() int8 {
	switch t {
	case TypeBoolean:
		return 1
	case TypeString:
		return 2
	case TypeInt:
		return 3
	case TypeShort:
		return 4
	case TypeLong:
		return 5
	case TypeDouble:
		return 6
	case TypeList:
		return 7
	case TypeClass:
		return 8
	case TypePassword:
		return 9
	}
	return 0
}

// Source says where a configuration value came from, with the numbering of
// Kafka's DescribeConfigs config_source field.
type Source int8

// The configuration sources. Poste sets only DynamicTopicConfig (a topic
// override), StaticBrokerConfig (file, environment or flag) and DefaultConfig
// so far; the others are listed so codes stay aligned with Kafka.
const (
	SourceUnknown                    Source = 0
	SourceDynamicTopicConfig         Source = 1
	SourceDynamicBrokerConfig        Source = 2
	SourceDynamicDefaultBrokerConfig Source = 3
	SourceStaticBrokerConfig         Source = 4
	SourceDefaultConfig              Source = 5
	SourceDynamicBrokerLoggerConfig  Source = 6
	SourceClientMetricsConfig        Source = 7
	SourceGroupConfig                Source = 8
)

func (s Source) String() string {
	switch s {
	case SourceDynamicTopicConfig:
		return "DYNAMIC_TOPIC_CONFIG"
	case SourceDynamicBrokerConfig:
		return "DYNAMIC_BROKER_CONFIG"
	case SourceDynamicDefaultBrokerConfig:
		return "DYNAMIC_DEFAULT_BROKER_CONFIG"
	case SourceStaticBrokerConfig:
		return "STATIC_BROKER_CONFIG"
	case SourceDefaultConfig:
		return "DEFAULT_CONFIG"
	case SourceDynamicBrokerLoggerConfig:
		return "DYNAMIC_BROKER_LOGGER_CONFIG"
	case SourceClientMetricsConfig:
		return "CLIENT_METRICS_CONFIG"
	case SourceGroupConfig:
		return "GROUP_CONFIG"
	case SourceUnknown:
		return "UNKNOWN"
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// Values of log.flush.policy.
const (
	// FlushAlways fsyncs every acknowledged batch before its ack (group commit).
	FlushAlways = "always"
	// FlushInterval fsyncs every flush interval; acks do not wait for it.
	FlushInterval = "interval"
	// FlushNever leaves writing back to the operating system.
	FlushNever = "never"
)

// Values of message.timestamp.type.
const (
	TimestampCreateTime    = "CreateTime"
	TimestampLogAppendTime = "LogAppendTime"
)

// DefaultFlushIntervalMs is the fsync period used by log.flush.policy=interval
// when neither log.flush.interval.ms nor the topic's flush.ms is set (Kafka's
// own fallback, log.flush.scheduler.interval.ms, defaults to "never").
const DefaultFlushIntervalMs = 1000
