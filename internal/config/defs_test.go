package config

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The codes must match Kafka's DescribeConfigs definitions, which kmsg is
// generated from.
func TestCodesMatchProtocol(t *testing.T) {
	sources := map[Source]kmsg.ConfigSource{
		SourceUnknown:                    kmsg.ConfigSourceUnknown,
		SourceDynamicTopicConfig:         kmsg.ConfigSourceDynamicTopicConfig,
		SourceDynamicBrokerConfig:        kmsg.ConfigSourceDynamicBrokerConfig,
		SourceDynamicDefaultBrokerConfig: kmsg.ConfigSourceDynamicDefaultBrokerConfig,
		SourceStaticBrokerConfig:         kmsg.ConfigSourceStaticBrokerConfig,
		SourceDefaultConfig:              kmsg.ConfigSourceDefaultConfig,
		SourceDynamicBrokerLoggerConfig:  kmsg.ConfigSourceDynamicBrokerLoggerConfig,
		SourceClientMetricsConfig:        kmsg.ConfigSourceClientMetricsConfig,
		SourceGroupConfig:                kmsg.ConfigSourceGroupConfig,
	}
	for ours, theirs := range sources {
		if int8(ours) != int8(theirs) {
			t.Errorf("%v = %d, protocol says %d", ours, ours, theirs)
		}
		if ours.String() != theirs.String() {
			t.Errorf("%v named %q, protocol %q", ours, ours.String(), theirs.String())
		}
	}
	types := map[Type]kmsg.ConfigType{
		TypeBoolean: kmsg.ConfigTypeBoolean, TypeString: kmsg.ConfigTypeString, TypeInt: kmsg.ConfigTypeInt,
		TypeShort: kmsg.ConfigTypeShort, TypeLong: kmsg.ConfigTypeLong, TypeDouble: kmsg.ConfigTypeDouble,
		TypeList: kmsg.ConfigTypeList, TypeClass: kmsg.ConfigTypeClass, TypePassword: kmsg.ConfigTypePassword,
		Type("nope"): kmsg.ConfigTypeUnknown,
	}
	for ours, theirs := range types {
		if ours.ID() != int8(theirs) {
			t.Errorf("%s.ID() = %d, protocol says %d", ours, ours.ID(), theirs)
		}
	}
}

func TestDefs(t *testing.T) {
	for _, defs := range [][]Def{TopicDefs(), BrokerDefs()} {
		if !slices.IsSortedFunc(defs, func(a, b Def) int {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}) {
			t.Error("defs not sorted by name")
		}
		for _, d := range defs {
			if d.Doc == "" || d.Type.ID() == 0 || d.Validate == nil {
				t.Errorf("%s: incomplete def %+v", d.Name, d)
			}
			if !d.NullDefault {
				if err := d.Validate(d.Default); err != nil {
					t.Errorf("%s: default invalid: %v", d.Name, err)
				}
			} else if d.Default != "" {
				t.Errorf("%s: null default with text %q", d.Name, d.Default)
			}
		}
	}
	for _, d := range TopicDefs() {
		if d.BrokerSynonym == "" || d.BrokerSynonym != d.BrokerSynonyms[0] {
			t.Errorf("%s: broker synonym %q / %v", d.Name, d.BrokerSynonym, d.BrokerSynonyms)
		}
		if d.ReadOnly || d.DynamicBroker {
			t.Errorf("%s: topic keys are writable and not broker keys", d.Name)
		}
	}
}

func TestLookupAndDynamicFlags(t *testing.T) {
	tests := []struct {
		name    string
		dynamic bool
	}{
		{"log.retention.ms", true}, // first synonym of retention.ms
		{"log.retention.hours", false},
		{"log.roll.ms", true},
		{"log.roll.hours", false},
		{"message.max.bytes", true},
		{"log.cleanup.policy", true},
		{"listeners", true},
		{"advertised.listeners", true},
		{"producer.id.expiration.ms", true},
		{"num.partitions", false},
		{"log.dirs", false},
		{"node.id", false},
		{"log.flush.policy", false},
		{"auto.create.topics.enable", false},
	}
	for _, tt := range tests {
		d, ok := LookupBroker(tt.name)
		if !ok {
			t.Fatalf("%s not found", tt.name)
		}
		if d.DynamicBroker != tt.dynamic || d.ReadOnly == tt.dynamic {
			t.Errorf("%s: dynamic=%v readOnly=%v", tt.name, d.DynamicBroker, d.ReadOnly)
		}
	}
	if _, ok := LookupBroker("retention.ms"); ok {
		t.Error("topic key found as broker key")
	}
	if _, ok := LookupTopic("log.retention.ms"); ok {
		t.Error("broker key found as topic key")
	}
	d, ok := LookupTopic("retention.ms")
	if !ok || !slices.Equal(d.BrokerSynonyms, []string{"log.retention.ms", "log.retention.minutes", "log.retention.hours"}) {
		t.Fatalf("retention.ms synonyms %v", d.BrokerSynonyms)
	}
	// Lookups return copies: changing one does not change the table.
	d.BrokerSynonyms[0] = "changed"
	if again, _ := LookupTopic("retention.ms"); again.BrokerSynonyms[0] != "log.retention.ms" {
		t.Fatal("lookup exposed the shared table")
	}
}

// Every key must be documented in docs/configuration.md.
func TestDocsListEveryKey(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, defs := range [][]Def{BrokerDefs(), TopicDefs()} {
		for _, d := range defs {
			if !strings.Contains(string(doc), "| `"+d.Name+"` |") {
				t.Errorf("docs/configuration.md has no row for %s", d.Name)
			}
		}
	}
}
