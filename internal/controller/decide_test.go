package controller

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/poste-io/poste/internal/metadata"
)

func sp(s string) *string { return &s }

func id(n byte) [16]byte { return [16]byte{15: n} }

// counterIDs returns an id source yielding 100, 101, … in the last byte.
func counterIDs() func() [16]byte {
	n := byte(99)
	return func() [16]byte { n++; return id(n) }
}

func testOptions() Options {
	return Options{NodeID: 1, DefaultPartitions: 3, DefaultReplicationFactor: 1, NewID: counterIDs(),
		ValidateTopicConfigs: func(cfg map[string]*string) error {
			if v, ok := cfg["retention.ms"]; ok && strings.HasPrefix(*v, "-2") {
				return fmt.Errorf("Invalid value %s for configuration retention.ms", *v)
			}
			return nil
		}}.withDefaults()
}

var epoch = time.Unix(1_700_000_000, 0)

// image folds recs into a fresh image: a topic "orders" (id 1, 2 partitions)
// with a config, plus whatever the case adds.
func image(t *testing.T, extra ...metadata.Record) *metadata.Image {
	t.Helper()
	recs := []metadata.Record{
		metadata.TopicRecord{Name: "orders", ID: id(1)},
		metadata.PartitionRecord{TopicID: id(1), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		metadata.PartitionRecord{TopicID: id(1), Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		metadata.ConfigRecord{ResourceType: metadata.ResourceTopic, ResourceName: "orders", Name: "retention.ms", Value: sp("1000")},
		metadata.TopicRecord{Name: "a.b", ID: id(2)},
		metadata.PartitionRecord{TopicID: id(2), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
	}
	img, err := metadata.Empty().Fold(1, append(recs, extra...))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func threeBrokers() []metadata.Record {
	return []metadata.Record{
		metadata.RegisterBrokerRecord{BrokerID: 1}, metadata.RegisterBrokerRecord{BrokerID: 2}, metadata.RegisterBrokerRecord{BrokerID: 3},
	}
}

func TestValidateTopicName(t *testing.T) {
	for name, ok := range map[string]bool{
		"": false, ".": false, "..": false, "...": true, "a": true, "A-z_0.9": true, "__consumer_offsets": true,
		strings.Repeat("x", 249): true, strings.Repeat("x", 250): false, "a b": false, "a/b": false, "é": false, "a\x00": false,
	} {
		err := ValidateTopicName(name)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrInvalidTopic)) {
			t.Errorf("ValidateTopicName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestDecideCreateTopics(t *testing.T) {
	cases := []struct {
		name     string
		brokers  bool // register brokers 1..3
		specs    []TopicSpec
		validate bool
		want     []error // per spec: nil or the sentinel
		wantRecs string  // records as "%v" lines, checked when non-empty
		check    func(t *testing.T, res []TopicResult)
	}{
		{name: "defaults", specs: []TopicSpec{{Name: "new", NumPartitions: -1, ReplicationFactor: -1}}, want: []error{nil},
			wantRecs: "{new [0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100]}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 0 [1] [1] 1 0 0 [] [] [] []}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 1 [1] [1] 1 0 0 [] [] [] []}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 2 [1] [1] 1 0 0 [] [] [] []}",
			check: func(t *testing.T, res []TopicResult) {
				if res[0].NumPartitions != 3 || res[0].ReplicationFactor != 1 || res[0].ID != id(100) {
					t.Errorf("result %+v", res[0])
				}
			}},
		{name: "internal topic with configs", specs: []TopicSpec{{Name: "__consumer_offsets", NumPartitions: 1, ReplicationFactor: 1,
			Configs: map[string]*string{"cleanup.policy": sp("compact"), "segment.bytes": sp("100")}}}, want: []error{nil},
			wantRecs: "{__consumer_offsets [0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100]}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 0 [1] [1] 1 0 0 [] [] [] []}\n" +
				"{2 __consumer_offsets cleanup.policy 0x*}\n{2 __consumer_offsets segment.bytes 0x*}"},
		{name: "exists", specs: []TopicSpec{{Name: "orders", NumPartitions: 1, ReplicationFactor: 1}}, want: []error{ErrTopicExists}},
		{name: "exists wins over collision", specs: []TopicSpec{{Name: "a.b", NumPartitions: 1, ReplicationFactor: 1}}, want: []error{ErrTopicExists}},
		{name: "collides with existing", specs: []TopicSpec{{Name: "a_b", NumPartitions: 1, ReplicationFactor: 1}}, want: []error{ErrInvalidTopic}},
		{name: "collides within request", specs: []TopicSpec{{Name: "x.y", NumPartitions: 1, ReplicationFactor: 1}, {Name: "x_y", NumPartitions: 1, ReplicationFactor: 1}},
			want: []error{nil, ErrInvalidTopic}},
		{name: "duplicate in request", specs: []TopicSpec{{Name: "d", NumPartitions: 1, ReplicationFactor: 1}, {Name: "e", NumPartitions: 1, ReplicationFactor: 1}, {Name: "d", NumPartitions: 2, ReplicationFactor: 1}},
			want: []error{ErrInvalidRequest, nil, ErrInvalidRequest}},
		{name: "invalid names", specs: []TopicSpec{{Name: ""}, {Name: ".."}, {Name: "a b"}, {Name: strings.Repeat("n", 250)}},
			want: []error{ErrInvalidTopic, ErrInvalidTopic, ErrInvalidTopic, ErrInvalidTopic}},
		{name: "metadata topic reserved", specs: []TopicSpec{{Name: "__cluster_metadata", NumPartitions: 1, ReplicationFactor: 1}}, want: []error{ErrInvalidRequest}},
		{name: "bad partition counts", specs: []TopicSpec{{Name: "z0", NumPartitions: 0, ReplicationFactor: 1}, {Name: "z1", NumPartitions: -2, ReplicationFactor: 1}, {Name: "z2", NumPartitions: MaxPartitions + 1, ReplicationFactor: 1}},
			want: []error{ErrInvalidPartitions, ErrInvalidPartitions, ErrInvalidPartitions}},
		{name: "bad replication factors", specs: []TopicSpec{{Name: "r0", NumPartitions: 1, ReplicationFactor: 0}, {Name: "r2", NumPartitions: 1, ReplicationFactor: 2}, {Name: "r3", NumPartitions: 1, ReplicationFactor: -3}},
			want: []error{ErrInvalidReplicationFactor, ErrInvalidReplicationFactor, ErrInvalidReplicationFactor}},
		{name: "rf 3 on three brokers round-robin", brokers: true, specs: []TopicSpec{{Name: "rr", NumPartitions: 3, ReplicationFactor: 3}}, want: []error{nil},
			// Two topics exist, so placement starts at the third broker.
			wantRecs: "{rr [0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100]}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 0 [3 1 2] [3 1 2] 3 0 0 [] [] [] []}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 1 [1 2 3] [1 2 3] 1 0 0 [] [] [] []}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 2 [2 3 1] [2 3 1] 2 0 0 [] [] [] []}"},
		{name: "manual assignment", brokers: true, specs: []TopicSpec{{Name: "m", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {2, 1}, 1: {3, 2}}}},
			want: []error{nil},
			wantRecs: "{m [0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100]}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 0 [2 1] [2 1] 2 0 0 [] [] [] []}\n" +
				"{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 100] 1 [3 2] [3 2] 3 0 0 [] [] [] []}"},
		{name: "assignment with counts", specs: []TopicSpec{{Name: "m", NumPartitions: 2, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1}}}}, want: []error{ErrInvalidRequest}},
		{name: "bad assignments", specs: []TopicSpec{
			{Name: "m1", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1}, 2: {1}}},
			{Name: "m2", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {}}},
			{Name: "m3", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 1}}},
			{Name: "m4", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {7}}},
		}, want: []error{ErrInvalidReplicaAssignment, ErrInvalidReplicaAssignment, ErrInvalidReplicaAssignment, ErrInvalidReplicaAssignment}},
		{name: "uneven assignment", brokers: true, specs: []TopicSpec{{Name: "u", NumPartitions: -1, ReplicationFactor: -1, Assignments: map[int32][]int32{0: {1, 2}, 1: {1}}}},
			want: []error{ErrInvalidReplicaAssignment}},
		{name: "configs rejected", specs: []TopicSpec{
			{Name: "c1", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]*string{"retention.ms": sp("-2")}},
			{Name: "c2", NumPartitions: 1, ReplicationFactor: 1, Configs: map[string]*string{"retention.ms": nil}},
		}, want: []error{ErrInvalidConfig, ErrInvalidConfig},
			check: func(t *testing.T, res []TopicResult) {
				if res[0].Err.Error() != "Invalid value -2 for configuration retention.ms" {
					t.Errorf("validator message lost: %q", res[0].Err)
				}
			}},
		{name: "validate only writes nothing", validate: true, specs: []TopicSpec{{Name: "v", NumPartitions: 4, ReplicationFactor: 1}, {Name: "orders"}},
			want: []error{nil, ErrTopicExists}, wantRecs: "-",
			check: func(t *testing.T, res []TopicResult) {
				if res[0].NumPartitions != 4 || res[0].ID != ([16]byte{}) {
					t.Errorf("validate-only result %+v", res[0])
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []metadata.Record
			if tc.brokers {
				extra = threeBrokers()
			}
			img := image(t, extra...)
			recs, res := decideCreateTopics(img, testOptions(), tc.specs, tc.validate, epoch)
			if len(res) != len(tc.specs) {
				t.Fatalf("%d results for %d specs", len(res), len(tc.specs))
			}
			for i, r := range res {
				if r.Name != tc.specs[i].Name {
					t.Errorf("result %d named %q", i, r.Name)
				}
				if (tc.want[i] == nil) != (r.Err == nil) || (r.Err != nil && !errors.Is(r.Err, tc.want[i])) {
					t.Errorf("spec %d (%s): err %v, want %v", i, r.Name, r.Err, tc.want[i])
				}
				if r.Err != nil && (r.NumPartitions != -1 || r.ReplicationFactor != -1 || r.Err.Error() == "") {
					t.Errorf("spec %d: failed result %+v", i, r)
				}
			}
			switch {
			case tc.wantRecs == "-" && len(recs) != 0:
				t.Errorf("records written: %v", recs)
			case tc.wantRecs != "" && tc.wantRecs != "-":
				if got := recString(recs); got != tc.wantRecs {
					t.Errorf("records:\n%s\nwant:\n%s", got, tc.wantRecs)
				}
			}
			if tc.check != nil {
				tc.check(t, res)
			}
			// Whatever was decided must fold into the image.
			if len(recs) > 0 {
				if _, err := img.Fold(2, recs); err != nil {
					t.Fatalf("decided records do not fold: %v", err)
				}
			}
		})
	}
}

// recString prints records one per line, pointers as 0x*.
func recString(recs []metadata.Record) string {
	lines := make([]string, len(recs))
	for i, r := range recs {
		s := fmt.Sprintf("%v", r)
		if c, ok := r.(metadata.ConfigRecord); ok && c.Value != nil {
			s = fmt.Sprintf("{%d %s %s 0x*}", c.ResourceType, c.ResourceName, c.Name)
		}
		lines[i] = s
	}
	return strings.Join(lines, "\n")
}

func TestDecideDeleteTopics(t *testing.T) {
	img := image(t)
	cases := []struct {
		name    string
		names   []string
		ids     [][16]byte
		want    []error
		removed [][16]byte
	}{
		{name: "by name", names: []string{"orders"}, want: []error{nil}, removed: [][16]byte{id(1)}},
		{name: "by id", ids: [][16]byte{id(2)}, want: []error{nil}, removed: [][16]byte{id(2)}},
		{name: "both kinds", names: []string{"a.b"}, ids: [][16]byte{id(1)}, want: []error{nil, nil}, removed: [][16]byte{id(2), id(1)}},
		{name: "unknown", names: []string{"nope"}, ids: [][16]byte{id(9)}, want: []error{ErrUnknownTopic, ErrUnknownTopicID}},
		{name: "same topic by name and id", names: []string{"orders"}, ids: [][16]byte{id(1), id(2)}, want: []error{ErrInvalidRequest, ErrInvalidRequest, nil}, removed: [][16]byte{id(2)}},
		{name: "duplicate unknown names", names: []string{"x", "x"}, want: []error{ErrInvalidRequest, ErrInvalidRequest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			recs, res := decideDeleteTopics(img, tc.names, tc.ids, epoch)
			if len(res) != len(tc.want) {
				t.Fatalf("%d results, want %d", len(res), len(tc.want))
			}
			for i, r := range res {
				if (tc.want[i] == nil) != (r.Err == nil) || (r.Err != nil && !errors.Is(r.Err, tc.want[i])) {
					t.Errorf("entry %d: err %v, want %v", i, r.Err, tc.want[i])
				}
				if r.Err == nil && (r.Name == "" || img.TopicByID(r.ID) == nil) {
					t.Errorf("entry %d: result %+v lacks name or id", i, r)
				}
			}
			var removed [][16]byte
			for _, r := range recs {
				removed = append(removed, r.(metadata.RemoveTopicRecord).TopicID)
			}
			if !reflect.DeepEqual(removed, tc.removed) {
				t.Errorf("removed %v, want %v", removed, tc.removed)
			}
		})
	}
}

func TestDecideCreatePartitions(t *testing.T) {
	cases := []struct {
		name     string
		brokers  bool
		specs    []PartitionsSpec
		validate bool
		want     []error
		wantRecs string
	}{
		{name: "grow", specs: []PartitionsSpec{{Topic: "orders", Count: 4}}, want: []error{nil},
			wantRecs: "{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] 2 [1] [1] 1 0 0 [] [] [] []}\n{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] 3 [1] [1] 1 0 0 [] [] [] []}"},
		{name: "grow with assignment", brokers: true, specs: []PartitionsSpec{{Topic: "orders", Count: 3, Assignments: [][]int32{{3}}}}, want: []error{nil},
			wantRecs: "{[0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 1] 2 [3] [3] 3 0 0 [] [] [] []}"},
		{name: "same count", specs: []PartitionsSpec{{Topic: "orders", Count: 2}}, want: []error{ErrInvalidPartitions}, wantRecs: "-"},
		{name: "shrink", specs: []PartitionsSpec{{Topic: "orders", Count: 1}}, want: []error{ErrInvalidPartitions}, wantRecs: "-"},
		{name: "too many", specs: []PartitionsSpec{{Topic: "orders", Count: MaxPartitions + 1}}, want: []error{ErrInvalidPartitions}},
		{name: "unknown topic", specs: []PartitionsSpec{{Topic: "nope", Count: 3}}, want: []error{ErrUnknownTopic}},
		{name: "duplicate", specs: []PartitionsSpec{{Topic: "orders", Count: 3}, {Topic: "orders", Count: 4}}, want: []error{ErrInvalidRequest, ErrInvalidRequest}, wantRecs: "-"},
		{name: "assignment count mismatch", specs: []PartitionsSpec{{Topic: "orders", Count: 4, Assignments: [][]int32{{1}}}}, want: []error{ErrInvalidReplicaAssignment}},
		{name: "assignment rf mismatch", brokers: true, specs: []PartitionsSpec{{Topic: "orders", Count: 3, Assignments: [][]int32{{1, 2}}}}, want: []error{ErrInvalidReplicaAssignment}},
		{name: "assignment unknown broker", specs: []PartitionsSpec{{Topic: "orders", Count: 3, Assignments: [][]int32{{5}}}}, want: []error{ErrInvalidReplicaAssignment}},
		{name: "validate only", validate: true, specs: []PartitionsSpec{{Topic: "orders", Count: 10}}, want: []error{nil}, wantRecs: "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var extra []metadata.Record
			if tc.brokers {
				extra = threeBrokers()
			}
			img := image(t, extra...)
			recs, res := decideCreatePartitions(img, testOptions(), tc.specs, tc.validate, epoch)
			for i, r := range res {
				if r.Name != tc.specs[i].Topic || (tc.want[i] == nil) != (r.Err == nil) || (r.Err != nil && !errors.Is(r.Err, tc.want[i])) {
					t.Errorf("spec %d: %+v, want err %v", i, r, tc.want[i])
				}
			}
			switch {
			case tc.wantRecs == "-" && len(recs) != 0:
				t.Errorf("records written: %v", recs)
			case tc.wantRecs != "" && tc.wantRecs != "-" && recString(recs) != tc.wantRecs:
				t.Errorf("records:\n%s\nwant:\n%s", recString(recs), tc.wantRecs)
			}
			if len(recs) > 0 {
				if _, err := img.Fold(2, recs); err != nil {
					t.Fatalf("decided records do not fold: %v", err)
				}
			}
		})
	}
}

func TestDecideAlterConfigs(t *testing.T) {
	cases := []struct {
		name     string
		changes  []ConfigChange
		validate bool
		want     []error
		wantRecs string
	}{
		{name: "set and delete topic keys", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders",
			Configs: map[string]*string{"retention.ms": nil, "cleanup.policy": sp("compact")}}}, want: []error{nil},
			wantRecs: "{2 orders cleanup.policy 0x*}\n{2 orders retention.ms <nil>}"},
		{name: "unchanged value writes nothing", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders",
			Configs: map[string]*string{"retention.ms": sp("1000"), "absent": nil}}}, want: []error{nil}, wantRecs: "-"},
		{name: "replace drops unlisted keys", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders",
			Configs: map[string]*string{"segment.ms": sp("5")}, Replace: true}}, want: []error{nil},
			wantRecs: "{2 orders retention.ms <nil>}\n{2 orders segment.ms 0x*}"},
		{name: "broker default and per broker", changes: []ConfigChange{
			{ResourceType: metadata.ResourceBroker, ResourceName: "", Configs: map[string]*string{"log.retention.ms": sp("1")}},
			{ResourceType: metadata.ResourceBroker, ResourceName: "1", Configs: map[string]*string{"log.retention.ms": sp("2")}}},
			want: []error{nil, nil}, wantRecs: "{4  log.retention.ms 0x*}\n{4 1 log.retention.ms 0x*}"},
		{name: "validator sees the whole result", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders",
			Configs: map[string]*string{"retention.ms": sp("-20")}}}, want: []error{ErrInvalidConfig}, wantRecs: "-"},
		{name: "unknown topic", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "nope", Configs: map[string]*string{"a": sp("1")}}}, want: []error{ErrUnknownTopic}},
		{name: "bad broker name", changes: []ConfigChange{{ResourceType: metadata.ResourceBroker, ResourceName: "b1"}}, want: []error{ErrInvalidRequest}},
		{name: "bad resource type", changes: []ConfigChange{{ResourceType: 1, ResourceName: "x"}}, want: []error{ErrInvalidRequest}},
		{name: "empty key", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders", Configs: map[string]*string{"": sp("1")}}}, want: []error{ErrInvalidConfig}},
		{name: "duplicate resource", changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders"}, {ResourceType: metadata.ResourceTopic, ResourceName: "orders"}},
			want: []error{ErrInvalidRequest, ErrInvalidRequest}},
		{name: "validate only", validate: true, changes: []ConfigChange{{ResourceType: metadata.ResourceTopic, ResourceName: "orders", Configs: map[string]*string{"x": sp("1")}}},
			want: []error{nil}, wantRecs: "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := image(t)
			recs, res := decideAlterConfigs(img, testOptions(), tc.changes, tc.validate, epoch)
			for i, r := range res {
				if (tc.want[i] == nil) != (r.Err == nil) || (r.Err != nil && !errors.Is(r.Err, tc.want[i])) {
					t.Errorf("change %d: err %v, want %v", i, r.Err, tc.want[i])
				}
			}
			switch {
			case tc.wantRecs == "-" && len(recs) != 0:
				t.Errorf("records written: %v", recString(recs))
			case tc.wantRecs != "" && tc.wantRecs != "-" && recString(recs) != tc.wantRecs:
				t.Errorf("records:\n%s\nwant:\n%s", recString(recs), tc.wantRecs)
			}
			if len(recs) > 0 {
				if _, err := img.Fold(2, recs); err != nil {
					t.Fatalf("decided records do not fold: %v", err)
				}
			}
		})
	}
}

func TestDecideAllocateProducerIDs(t *testing.T) {
	img := image(t, metadata.ProducerIDsRecord{BrokerID: 1, NextProducerID: 5000})
	recs, first, err := decideAllocateProducerIDs(img, 1, 1000, epoch)
	if err != nil || first != 5000 || !reflect.DeepEqual(recs, []metadata.Record{metadata.ProducerIDsRecord{BrokerID: 1, NextProducerID: 6000}}) {
		t.Fatalf("%v %d %v", recs, first, err)
	}
	for _, n := range []int64{0, -1, 1<<63 - 1} {
		if _, _, err := decideAllocateProducerIDs(img, 1, n, epoch); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("count %d: err %v", n, err)
		}
	}
}
