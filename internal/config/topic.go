package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Topic is one topic's effective configuration: the broker's defaults (its
// topic keys' broker synonyms, resolved to topic units) overlaid with the
// topic's own overrides. It is a plain value, safe to copy and share.
type Topic struct {
	SegmentBytes       int64
	SegmentMs          int64
	SegmentJitterMs    int64
	SegmentIndexBytes  int
	IndexIntervalBytes int
	Preallocate        bool
	FileDeleteDelayMs  int64

	MessageMaxBytes      int32
	TimestampType        string // TimestampCreateTime or TimestampLogAppendTime
	TimestampBeforeMaxMs int64
	TimestampAfterMaxMs  int64
	CompressionType      string // "producer", "uncompressed", "gzip", "snappy", "lz4" or "zstd"
	GzipLevel            int
	LZ4Level             int
	ZstdLevel            int

	// CleanupPolicy is the canonical list ("delete", "compact", "compact,delete");
	// Delete and Compact say which policies it holds.
	CleanupPolicy          string
	Delete, Compact        bool
	RetentionMs            int64 // -1: unlimited
	RetentionBytes         int64 // -1: unlimited
	DeleteRetentionMs      int64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
	MinCleanableDirtyRatio float64

	MinInsyncReplicas     int32
	UncleanLeaderElection bool

	// FlushPolicy is the broker's log.flush.policy. FlushMs and FlushMessages
	// are the topic's flush.ms and flush.messages as Kafka reports them
	// (math.MaxInt64 when unset); FlushIntervalMs is the fsync period the
	// interval policy uses: FlushMs, or DefaultFlushIntervalMs when unset.
	FlushPolicy     string
	FlushMs         int64
	FlushMessages   int64
	FlushIntervalMs int64
}

// TopicConfig resolves a topic's effective configuration from its overrides
// (topic key → value, as stored). Overrides are expected to have passed
// ValidateTopicConfigs; an unknown key is ignored and an invalid value falls
// back to the broker's default.
func (b *Broker) TopicConfig(overrides map[string]string) Topic {
	v, _ := b.topicValues(overrides)
	i64 := func(k string) int64 {
		n, _ := strconv.ParseInt(v[k], 10, 64)
		return n
	}
	policy := v["cleanup.policy"]
	ratio, _ := strconv.ParseFloat(v["min.cleanable.dirty.ratio"], 64)
	t := Topic{
		SegmentBytes:       i64("segment.bytes"),
		SegmentMs:          i64("segment.ms"),
		SegmentJitterMs:    i64("segment.jitter.ms"),
		SegmentIndexBytes:  int(i64("segment.index.bytes")),
		IndexIntervalBytes: int(i64("index.interval.bytes")),
		Preallocate:        v["preallocate"] == "true",
		FileDeleteDelayMs:  i64("file.delete.delay.ms"),

		MessageMaxBytes:      int32(i64("max.message.bytes")),
		TimestampType:        v["message.timestamp.type"],
		TimestampBeforeMaxMs: i64("message.timestamp.before.max.ms"),
		TimestampAfterMaxMs:  i64("message.timestamp.after.max.ms"),
		CompressionType:      v["compression.type"],
		GzipLevel:            int(i64("compression.gzip.level")),
		LZ4Level:             int(i64("compression.lz4.level")),
		ZstdLevel:            int(i64("compression.zstd.level")),

		CleanupPolicy:          policy,
		Delete:                 slices.Contains(strings.Split(policy, ","), "delete"),
		Compact:                slices.Contains(strings.Split(policy, ","), "compact"),
		RetentionMs:            i64("retention.ms"),
		RetentionBytes:         i64("retention.bytes"),
		DeleteRetentionMs:      i64("delete.retention.ms"),
		MinCompactionLagMs:     i64("min.compaction.lag.ms"),
		MaxCompactionLagMs:     i64("max.compaction.lag.ms"),
		MinCleanableDirtyRatio: ratio,

		MinInsyncReplicas:     int32(i64("min.insync.replicas")),
		UncleanLeaderElection: v["unclean.leader.election.enable"] == "true",

		FlushPolicy:   b.Values["log.flush.policy"],
		FlushMs:       i64("flush.ms"),
		FlushMessages: i64("flush.messages"),
	}
	t.FlushIntervalMs = t.FlushMs
	if t.FlushMs == math.MaxInt64 {
		t.FlushIntervalMs = DefaultFlushIntervalMs
	}
	return t
}

// topicValues returns the canonical effective value of every topic key and
// the set of keys whose value came from a (valid) override.
func (b *Broker) topicValues(overrides map[string]string) (map[string]string, map[string]bool) {
	vals := make(map[string]string, len(topicDefs))
	overridden := map[string]bool{}
	for i := range topicDefs {
		d := &topicDefs[i]
		if raw, ok := overrides[d.Name]; ok {
			if v, err := d.parse(raw); err == nil {
				vals[d.Name] = v
				overridden[d.Name] = true
				continue
			}
		}
		vals[d.Name], _ = b.brokerDefault(d)
	}
	return vals, overridden
}

// ValidateTopicConfigs checks topic overrides as given to CreateTopics or
// AlterConfigs: every key must be a topic key and every value valid. Keys are
// checked in name order and the first problem is returned, wrapping
// ErrInvalidConfig with Kafka's wording ("Unknown topic config name: x",
// "Invalid value abc for configuration segment.bytes: Not a number of type
// INT"). A nil value is rejected; callers deleting a key must not pass it.
func ValidateTopicConfigs(cfgs map[string]*string) error {
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if _, ok := topicIndex[k]; !ok {
			return &Error{Name: k, msg: "Unknown topic config name: " + k}
		}
	}
	parsed := map[string]string{}
	for _, k := range names {
		if cfgs[k] == nil {
			return &Error{Name: k, msg: "Null value not supported for topic configs: " + k}
		}
		v, err := topicDefs[topicIndex[k]].parse(*cfgs[k])
		if err != nil {
			return err
		}
		parsed[k] = v
	}
	// Kafka checks the compaction lags against each other, using topic-level
	// defaults for the one not given.
	lag := func(k string) int64 {
		v, ok := parsed[k]
		if !ok {
			v = topicDefs[topicIndex[k]].Default
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	if minLag, maxLag := lag("min.compaction.lag.ms"), lag("max.compaction.lag.ms"); minLag > maxLag {
		return &Error{Name: "min.compaction.lag.ms", msg: fmt.Sprintf(
			"conflict topic config setting min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", minLag, maxLag)}
	}
	return nil
}
