package config

import (
	"errors"
	"testing"
)

func TestValidateDynamicBrokerConfigs(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		name string
		cfgs map[string]*string
		ok   bool
	}{
		{"dynamic key", map[string]*string{"log.retention.ms": s("1000")}, true},
		{"several", map[string]*string{"log.retention.bytes": s("10"), "log.segment.bytes": s("1048576")}, true},
		{"static key", map[string]*string{"node.id": s("3")}, false},
		{"unknown key", map[string]*string{"no.such": s("1")}, false},
		{"bad value", map[string]*string{"log.retention.bytes": s("x")}, false},
		{"null value", map[string]*string{"log.retention.bytes": nil}, false},
	}
	for _, tc := range tests {
		err := ValidateDynamicBrokerConfigs(tc.cfgs)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestWithDynamic(t *testing.T) {
	b, _, err := Load("", nil, map[string]string{"log.retention.hours": "5"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name            string
		defaults, node  map[string]string
		wantRetentionMs int64
		wantSource      Source // of log.retention.ms in DescribeBroker
	}{
		{"static only", nil, nil, 5 * 3600000, SourceDefaultConfig},
		{"cluster default", map[string]string{"log.retention.ms": "1000"}, nil, 1000, SourceDynamicDefaultBrokerConfig},
		{"node over cluster", map[string]string{"log.retention.ms": "1000"}, map[string]string{"log.retention.ms": "2000"}, 2000, SourceDynamicBrokerConfig},
		{"static key ignored", nil, map[string]string{"node.id": "9"}, 5 * 3600000, SourceDefaultConfig},
	}
	for _, tc := range tests {
		d := b.WithDynamic(tc.defaults, tc.node)
		if got := d.TopicConfig(nil).RetentionMs; got != tc.wantRetentionMs {
			t.Errorf("%s: retention.ms %d, want %d", tc.name, got, tc.wantRetentionMs)
		}
		if d.NodeID != b.NodeID {
			t.Errorf("%s: node id changed", tc.name)
		}
		for _, e := range d.DescribeBroker() {
			if e.Name == "log.retention.ms" && e.Source != tc.wantSource {
				t.Errorf("%s: source %v, want %v (synonyms %+v)", tc.name, e.Source, tc.wantSource, e.Synonyms)
			}
		}
	}
	if b.TopicConfig(nil).RetentionMs != 5*3600000 {
		t.Fatal("WithDynamic changed its receiver")
	}
}
