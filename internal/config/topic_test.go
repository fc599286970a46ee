package config

import (
	"errors"
	"math"
	"testing"
)

func mustLoad(t *testing.T, set map[string]string) *Broker {
	t.Helper()
	b, _, err := Load("", nil, set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTopicConfigResolution(t *testing.T) {
	const hour, minute = 3_600_000, 60_000
	tests := []struct {
		name      string
		broker    map[string]string
		overrides map[string]string
		check     func(Topic) bool
	}{
		{"retention from default hours", nil, nil,
			func(c Topic) bool { return c.RetentionMs == 168*hour }},
		{"retention from hours when only hours set", map[string]string{"log.retention.hours": "24"}, nil,
			func(c Topic) bool { return c.RetentionMs == 24*hour }},
		{"minutes beat hours", map[string]string{"log.retention.hours": "24", "log.retention.minutes": "30"}, nil,
			func(c Topic) bool { return c.RetentionMs == 30*minute }},
		{"ms beats minutes and hours", map[string]string{"log.retention.ms": "1234", "log.retention.minutes": "30", "log.retention.hours": "1"}, nil,
			func(c Topic) bool { return c.RetentionMs == 1234 }},
		{"set minutes beat default hours", map[string]string{"log.retention.minutes": "5"}, nil,
			func(c Topic) bool { return c.RetentionMs == 5*minute }},
		{"negative broker retention is unlimited", map[string]string{"log.retention.hours": "-1"}, nil,
			func(c Topic) bool { return c.RetentionMs == -1 }},
		{"topic override beats broker", map[string]string{"log.retention.ms": "1234"}, map[string]string{"retention.ms": "99"},
			func(c Topic) bool { return c.RetentionMs == 99 }},
		{"segment.ms from roll hours", map[string]string{"log.roll.hours": "2"}, nil,
			func(c Topic) bool { return c.SegmentMs == 2*hour }},
		{"segment.ms from roll ms", map[string]string{"log.roll.hours": "2", "log.roll.ms": "500"}, nil,
			func(c Topic) bool { return c.SegmentMs == 500 }},
		{"jitter from hours", map[string]string{"log.roll.jitter.hours": "1"}, nil,
			func(c Topic) bool { return c.SegmentJitterMs == hour }},
		{"max.message.bytes from message.max.bytes", map[string]string{"message.max.bytes": "5000"}, nil,
			func(c Topic) bool { return c.MessageMaxBytes == 5000 }},
		{"max.message.bytes override", nil, map[string]string{"max.message.bytes": "100"},
			func(c Topic) bool { return c.MessageMaxBytes == 100 }},
		{"cleanup policy from broker", map[string]string{"log.cleanup.policy": "compact"}, nil,
			func(c Topic) bool { return c.CleanupPolicy == "compact" && c.Compact && !c.Delete }},
		{"cleanup policy both", nil, map[string]string{"cleanup.policy": "delete, compact"},
			func(c Topic) bool { return c.CleanupPolicy == "delete,compact" && c.Compact && c.Delete }},
		{"timestamp type", map[string]string{"log.message.timestamp.type": "LogAppendTime"}, nil,
			func(c Topic) bool { return c.TimestampType == TimestampLogAppendTime }},
		{"timestamp bounds", map[string]string{"log.message.timestamp.before.max.ms": "10"}, map[string]string{"message.timestamp.after.max.ms": "20"},
			func(c Topic) bool { return c.TimestampBeforeMaxMs == 10 && c.TimestampAfterMaxMs == 20 }},
		{"segment and index", map[string]string{"log.segment.bytes": "2097152", "log.index.size.max.bytes": "4096", "log.index.interval.bytes": "100"}, nil,
			func(c Topic) bool {
				return c.SegmentBytes == 2097152 && c.SegmentIndexBytes == 4096 && c.IndexIntervalBytes == 100
			}},
		{"preallocate", map[string]string{"log.preallocate": "true"}, nil,
			func(c Topic) bool { return c.Preallocate }},
		{"min isr override", map[string]string{"min.insync.replicas": "2"}, map[string]string{"min.insync.replicas": "3"},
			func(c Topic) bool { return c.MinInsyncReplicas == 3 }},
		{"compression", map[string]string{"compression.type": "zstd", "compression.zstd.level": "7"}, nil,
			func(c Topic) bool {
				return c.CompressionType == "zstd" && c.ZstdLevel == 7 && c.LZ4Level == 9 && c.GzipLevel == -1
			}},
		{"compaction knobs", map[string]string{"log.cleaner.min.cleanable.ratio": "0.25"}, map[string]string{"delete.retention.ms": "5", "min.compaction.lag.ms": "6"},
			func(c Topic) bool {
				return c.MinCleanableDirtyRatio == 0.25 && c.DeleteRetentionMs == 5 && c.MinCompactionLagMs == 6 && c.MaxCompactionLagMs == math.MaxInt64
			}},
		{"flush defaults", nil, nil,
			func(c Topic) bool {
				return c.FlushPolicy == FlushAlways && c.FlushMs == math.MaxInt64 && c.FlushIntervalMs == DefaultFlushIntervalMs && c.FlushMessages == math.MaxInt64
			}},
		{"flush interval from broker", map[string]string{"log.flush.policy": "interval", "log.flush.interval.ms": "250"}, nil,
			func(c Topic) bool {
				return c.FlushPolicy == FlushInterval && c.FlushMs == 250 && c.FlushIntervalMs == 250
			}},
		{"flush interval from scheduler fallback", map[string]string{"log.flush.scheduler.interval.ms": "700"}, nil,
			func(c Topic) bool { return c.FlushIntervalMs == 700 }},
		{"flush.ms override", map[string]string{"log.flush.policy": "interval", "log.flush.interval.ms": "250"}, map[string]string{"flush.ms": "50", "flush.messages": "10"},
			func(c Topic) bool { return c.FlushIntervalMs == 50 && c.FlushMessages == 10 }},
		{"invalid override falls back", map[string]string{"log.segment.bytes": "2097152"}, map[string]string{"segment.bytes": "tiny", "no.such.key": "1"},
			func(c Topic) bool { return c.SegmentBytes == 2097152 }},
		{"unclean election", map[string]string{"unclean.leader.election.enable": "true"}, nil,
			func(c Topic) bool { return c.UncleanLeaderElection }},
		{"retention bytes and file delete delay", map[string]string{"log.retention.bytes": "1000", "log.segment.delete.delay.ms": "0"}, nil,
			func(c Topic) bool { return c.RetentionBytes == 1000 && c.FileDeleteDelayMs == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustLoad(t, tt.broker)
			c := b.TopicConfig(tt.overrides)
			if !tt.check(c) {
				t.Fatalf("unexpected topic config %+v", c)
			}
		})
	}
}

func TestBrokerTopicDefaultsMatchTopicConfig(t *testing.T) {
	b := mustLoad(t, map[string]string{"log.retention.minutes": "10", "log.flush.policy": "never", "log.cleanup.policy": "compact"})
	c := b.TopicConfig(nil)
	if b.RetentionMs != c.RetentionMs || b.RetentionMs != 600000 || b.FlushPolicy != FlushNever ||
		b.CleanupPolicy != "compact" || b.SegmentMs != c.SegmentMs || b.MessageMaxBytes != c.MessageMaxBytes {
		t.Fatalf("broker fields disagree with TopicConfig(nil): %+v vs %+v", b, c)
	}
}

func ptr(s string) *string { return &s }

func TestValidateTopicConfigs(t *testing.T) {
	tests := []struct {
		name string
		cfgs map[string]*string
		want string // "" for valid
	}{
		{"empty", nil, ""},
		{"valid", map[string]*string{"retention.ms": ptr("-1"), "cleanup.policy": ptr("compact,delete"), "segment.bytes": ptr("1048576")}, ""},
		{"unknown", map[string]*string{"retention.ms": ptr("x"), "bogus": ptr("1")}, "Unknown topic config name: bogus"},
		{"broker key is not a topic key", map[string]*string{"log.retention.hours": ptr("1")}, "Unknown topic config name: log.retention.hours"},
		{"null", map[string]*string{"retention.ms": nil}, "Null value not supported for topic configs: retention.ms"},
		{"not a number", map[string]*string{"segment.bytes": ptr("abc")}, "Invalid value abc for configuration segment.bytes: Not a number of type INT"},
		{"too small", map[string]*string{"segment.bytes": ptr("1024")}, "Invalid value 1024 for configuration segment.bytes: Value must be at least 1048576"},
		{"retention below -1", map[string]*string{"retention.ms": ptr("-2")}, "Invalid value -2 for configuration retention.ms: Value must be at least -1"},
		{"enum", map[string]*string{"message.timestamp.type": ptr("Now")}, "Invalid value Now for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"},
		{"list element", map[string]*string{"cleanup.policy": ptr("compact,tidy")}, "Invalid value tidy for configuration cleanup.policy: String must be one of: compact, delete"},
		{"boolean", map[string]*string{"preallocate": ptr("1")}, "Invalid value 1 for configuration preallocate: Expected value to be either true or false"},
		{"double", map[string]*string{"min.cleanable.dirty.ratio": ptr("2")}, "Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1.0"},
		{"first in name order", map[string]*string{"segment.ms": ptr("0"), "flush.ms": ptr("-1")}, "Invalid value -1 for configuration flush.ms: Value must be at least 0"},
		{"lags conflict", map[string]*string{"min.compaction.lag.ms": ptr("10"), "max.compaction.lag.ms": ptr("5")},
			"conflict topic config setting min.compaction.lag.ms (10) > max.compaction.lag.ms (5)"},
		{"lag against default", map[string]*string{"max.compaction.lag.ms": ptr("1")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateTopicConfigs(tt.cfgs)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("err  = %v\nwant %s", err, tt.want)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error does not wrap ErrInvalidConfig")
			}
		})
	}
}
