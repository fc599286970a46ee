package config

import (
	"slices"
	"strings"
	"testing"
)

func findEntry(t *testing.T, entries []Entry, name string) Entry {
	t.Helper()
	for _, e := range entries {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no entry %s", name)
	return Entry{}
}

// synText renders synonyms compactly: "name=value/SOURCE ...".
func synText(syns []Synonym) string {
	var parts []string
	for _, s := range syns {
		parts = append(parts, s.Name+"="+s.Value+"/"+s.Source.String())
	}
	return strings.Join(parts, " ")
}

func value(e Entry) string {
	if e.Value == nil {
		return "<nil>"
	}
	return *e.Value
}

func TestDescribeTopic(t *testing.T) {
	tests := []struct {
		name      string
		broker    map[string]string
		overrides map[string]string
		key       string
		value     string
		source    Source
		synonyms  string
	}{
		{"default", nil, nil, "segment.bytes", "1073741824", SourceDefaultConfig,
			"log.segment.bytes=1073741824/DEFAULT_CONFIG"},
		{"static broker", map[string]string{"log.segment.bytes": "2097152"}, nil, "segment.bytes", "2097152", SourceStaticBrokerConfig,
			"log.segment.bytes=2097152/STATIC_BROKER_CONFIG log.segment.bytes=1073741824/DEFAULT_CONFIG"},
		{"topic override", map[string]string{"log.segment.bytes": "2097152"}, map[string]string{"segment.bytes": " 3145728 "}, "segment.bytes", "3145728", SourceDynamicTopicConfig,
			"segment.bytes=3145728/DYNAMIC_TOPIC_CONFIG log.segment.bytes=2097152/STATIC_BROKER_CONFIG log.segment.bytes=1073741824/DEFAULT_CONFIG"},
		{"differently named synonym", map[string]string{"message.max.bytes": "2000"}, nil, "max.message.bytes", "2000", SourceStaticBrokerConfig,
			"message.max.bytes=2000/STATIC_BROKER_CONFIG message.max.bytes=1048588/DEFAULT_CONFIG"},
		// As Kafka: the chain's first synonym (log.retention.ms) has no value,
		// so no broker synonym is listed although the value comes from hours.
		{"retention from default hours", nil, nil, "retention.ms", "604800000", SourceDefaultConfig, ""},
		{"retention from static hours", map[string]string{"log.retention.hours": "24"}, nil, "retention.ms", "86400000", SourceDefaultConfig, ""},
		{"retention from static ms", map[string]string{"log.retention.ms": "5000", "log.retention.hours": "24"}, nil, "retention.ms", "5000", SourceStaticBrokerConfig,
			"log.retention.ms=5000/STATIC_BROKER_CONFIG log.retention.hours=24/STATIC_BROKER_CONFIG log.retention.hours=168/DEFAULT_CONFIG"},
		{"retention override", nil, map[string]string{"retention.ms": "-1"}, "retention.ms", "-1", SourceDynamicTopicConfig,
			"retention.ms=-1/DYNAMIC_TOPIC_CONFIG"},
		{"list canonical", nil, map[string]string{"cleanup.policy": "compact , delete"}, "cleanup.policy", "compact,delete", SourceDynamicTopicConfig,
			"cleanup.policy=compact,delete/DYNAMIC_TOPIC_CONFIG log.cleanup.policy=delete/DEFAULT_CONFIG"},
		{"invalid override ignored", nil, map[string]string{"segment.bytes": "x"}, "segment.bytes", "1073741824", SourceDefaultConfig,
			"log.segment.bytes=1073741824/DEFAULT_CONFIG"},
		{"flush.ms from scheduler default", nil, nil, "flush.ms", maxLong, SourceDefaultConfig, ""},
		{"flush.ms from broker", map[string]string{"log.flush.interval.ms": "100"}, nil, "flush.ms", "100", SourceStaticBrokerConfig,
			"log.flush.interval.ms=100/STATIC_BROKER_CONFIG log.flush.scheduler.interval.ms=" + maxLong + "/DEFAULT_CONFIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustLoad(t, tt.broker)
			entries := b.DescribeTopic(tt.overrides)
			e := findEntry(t, entries, tt.key)
			if value(e) != tt.value || e.Source != tt.source || synText(e.Synonyms) != tt.synonyms {
				t.Fatalf("got %s / %v / %q\nwant %s / %v / %q", value(e), e.Source, synText(e.Synonyms), tt.value, tt.source, tt.synonyms)
			}
			if e.ReadOnly || e.Sensitive || e.Doc == "" || e.Type == "" {
				t.Fatalf("entry flags: %+v", e)
			}
		})
	}
}

func TestDescribeTopicListsEveryKeySorted(t *testing.T) {
	entries := mustLoad(t, nil).DescribeTopic(nil)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
	}
	var want []string
	for _, d := range TopicDefs() {
		want = append(want, d.Name)
	}
	if !slices.IsSorted(names) || !slices.Equal(names, want) {
		t.Fatalf("names = %v", names)
	}
}

func TestDescribeBroker(t *testing.T) {
	b := mustLoad(t, map[string]string{"log.retention.ms": "5000", "num.partitions": "3"})
	tests := []struct {
		key      string
		value    string
		source   Source
		readOnly bool
		synonyms string
	}{
		{"num.partitions", "3", SourceStaticBrokerConfig, true,
			"num.partitions=3/STATIC_BROKER_CONFIG num.partitions=1/DEFAULT_CONFIG"},
		{"log.segment.bytes", "1073741824", SourceDefaultConfig, false, "log.segment.bytes=1073741824/DEFAULT_CONFIG"},
		{"log.retention.ms", "5000", SourceStaticBrokerConfig, false,
			"log.retention.ms=5000/STATIC_BROKER_CONFIG log.retention.hours=168/DEFAULT_CONFIG"},
		// Lower-precedence chain members drop the entries before their own name.
		{"log.retention.hours", "168", SourceDefaultConfig, true, "log.retention.hours=168/DEFAULT_CONFIG"},
		{"log.retention.minutes", "<nil>", SourceDefaultConfig, true, ""},
		{"advertised.listeners", "<nil>", SourceDefaultConfig, false, ""},
		{"listeners", "PLAINTEXT://127.0.0.1:9092", SourceDefaultConfig, false, "listeners=PLAINTEXT://127.0.0.1:9092/DEFAULT_CONFIG"},
		{"log.dirs", "<nil>", SourceDefaultConfig, true, ""},
		{"log.flush.policy", "always", SourceDefaultConfig, true, "log.flush.policy=always/DEFAULT_CONFIG"},
	}
	entries := b.DescribeBroker()
	if len(entries) != len(BrokerDefs()) {
		t.Fatalf("%d entries for %d keys", len(entries), len(BrokerDefs()))
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			e := findEntry(t, entries, tt.key)
			if value(e) != tt.value || e.Source != tt.source || e.ReadOnly != tt.readOnly || synText(e.Synonyms) != tt.synonyms {
				t.Fatalf("got %s / %v / ro=%v / %q", value(e), e.Source, e.ReadOnly, synText(e.Synonyms))
			}
		})
	}
}
