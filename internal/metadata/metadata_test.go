package metadata

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// tid makes a readable test topic id: n in the last byte.
func tid(n byte) [16]byte { return [16]byte{15: n} }

func sp(s string) *string { return &s }

const testClusterID = "AAAAAAAAAAAAAAAAAAAAAA" // 22 chars, decodes to zero bytes

// dump renders an image deterministically for comparisons.
func dump(img *Image) string {
	var b strings.Builder
	fmt.Fprintf(&b, "index=%d cluster=%q nextpid=%d\n", img.AppliedIndex(), img.ClusterID(), img.NextProducerID())
	for _, br := range img.Brokers() {
		rack := "nil"
		if br.Rack != nil {
			rack = *br.Rack
		}
		fmt.Fprintf(&b, "broker %d inc=%d rack=%s endpoints=%v epoch=%d", br.ID, br.IncarnationID[15], rack, br.Endpoints, br.Epoch)
		if br.Fenced {
			b.WriteString(" fenced")
		}
		if br.InControlledShutdown {
			b.WriteString(" shutting-down")
		}
		b.WriteString("\n")
	}
	for _, t := range img.Topics() {
		fmt.Fprintf(&b, "topic %s id=%d configs=%v\n", t.Name, t.ID[15], img.TopicConfigs(t.Name))
		for _, p := range t.Partitions {
			fmt.Fprintf(&b, "  %s/%d replicas=%v isr=%v leader=%d le=%d pe=%d", t.Name, p.ID, p.Replicas, p.ISR, p.Leader, p.LeaderEpoch, p.PartitionEpoch)
			for _, f := range []struct {
				name string
				v    []int32
			}{{"elr", p.ELR}, {"lastelr", p.LastKnownELR}, {"adding", p.AddingReplicas}, {"removing", p.RemovingReplicas}} {
				if f.v != nil {
					fmt.Fprintf(&b, " %s=%v", f.name, f.v)
				}
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "brokercfg default=%v b1=%v\n", img.DefaultBrokerConfigs(), img.BrokerConfigs(1))
	return b.String()
}

func allRecords() []Record {
	return []Record{
		ClusterIDRecord{ClusterID: testClusterID},
		RegisterBrokerRecord{BrokerID: 1, IncarnationID: tid(9), Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 9092, SecurityProtocol: 0}, {Name: "SSL", Host: "h2", Port: 9093, SecurityProtocol: 1}}, Rack: sp("r1")},
		RegisterBrokerRecord{BrokerID: 2, Fenced: true},
		BrokerRegistrationChangeRecord{BrokerID: 2, BrokerEpoch: 1, Fenced: SetFalse, InControlledShutdown: SetTrue},
		TopicRecord{Name: "a", ID: tid(1)},
		PartitionRecord{TopicID: tid(1), Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 4},
		PartitionRecord{TopicID: tid(1), Partition: 1, Replicas: []int32{2}, ISR: []int32{}, Leader: NoLeader},
		PartitionChangeRecord{TopicID: tid(1), Partition: 0, Leader: 2, ISR: []int32{1, 2}},
		PartitionChangeRecord{TopicID: tid(1), Partition: 1, Leader: NoLeaderChange, Replicas: []int32{2, 1}},
		PartitionChangeRecord{TopicID: tid(1), Partition: 1, Leader: NoLeaderChange, ELR: []int32{}, LastKnownELR: []int32{2},
			AddingReplicas: []int32{1}, RemovingReplicas: []int32{}},
		PartitionRecord{TopicID: tid(1), Partition: 2, Replicas: []int32{1, 2, 3}, ISR: []int32{1}, Leader: 1,
			ELR: []int32{2}, LastKnownELR: []int32{3}, AddingReplicas: []int32{3}, RemovingReplicas: []int32{2}},
		ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "retention.ms", Value: sp("1000")},
		ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "gone", Value: nil},
		ConfigRecord{ResourceType: ResourceBroker, ResourceName: "", Name: "log.retention.hours", Value: sp("")},
		ProducerIDsRecord{BrokerID: 1, NextProducerID: 1000},
		RemoveTopicRecord{TopicID: tid(1)},
		UnregisterBrokerRecord{BrokerID: 2, BrokerEpoch: 1},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range allRecords() {
		t.Run(r.Type().String(), func(t *testing.T) {
			got, err := DecodeRecords(EncodeRecords([]Record{r}))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, []Record{r}) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got[0], r)
			}
		})
	}
	all := allRecords()
	got, err := DecodeRecords(EncodeRecords(all))
	if err != nil || !reflect.DeepEqual(got, all) {
		t.Fatalf("batch round trip: %v", err)
	}
	if got, err := DecodeRecords(EncodeRecords(nil)); err != nil || len(got) != 0 {
		t.Fatalf("empty batch: %v %v", got, err)
	}
}

func TestDecodeCorrupt(t *testing.T) {
	valid := EncodeRecords(allRecords())
	for n := range len(valid) {
		if _, err := DecodeRecords(valid[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d bytes: err %v, want ErrCorrupt", n, err)
		}
	}
	cases := map[string][]byte{
		"trailing bytes":  append(slices.Clone(valid), 0),
		"bad format":      append([]byte{2}, valid[1:]...),
		"unknown type":    {1, 1, 99, 0, 0},
		"unknown version": {1, 1, byte(TypeRemoveTopic), 1, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"payload slack":   {1, 1, byte(TypeRemoveTopic), 0, 17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"huge count":      {1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge array":      {1, 1, byte(TypePartition), 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7e},
	}
	for name, b := range cases {
		if _, err := DecodeRecords(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(EncodeRecords(allRecords()))
	for _, r := range allRecords() {
		f.Add(EncodeRecords([]Record{r}))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeRecords(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		again, err := DecodeRecords(EncodeRecords(recs))
		if err != nil || !reflect.DeepEqual(again, recs) {
			t.Fatalf("re-encode changed records: %v", err)
		}
		_, _ = Empty().Fold(1, recs) // must not panic
	})
}

func TestUUID(t *testing.T) {
	seen := map[[16]byte]bool{}
	for range 200 {
		id := NewUUID()
		s := UUIDString(id)
		if len(s) != 22 || s[0] == '-' || seen[id] || id == ([16]byte{}) {
			t.Fatalf("bad uuid %q", s)
		}
		seen[id] = true
		back, err := ParseUUID(s)
		if err != nil || back != id {
			t.Fatalf("parse %q: %v", s, err)
		}
	}
	for _, bad := range []string{"", "short", "!!!!!!!!!!!!!!!!!!!!!!", testClusterID + "A"} {
		if _, err := ParseUUID(bad); !errors.Is(err, ErrInvalidUUID) {
			t.Errorf("ParseUUID(%q) = %v", bad, err)
		}
	}
}

// base is the image most fold cases start from.
func base(t *testing.T) *Image {
	t.Helper()
	img, err := Empty().Fold(1, []Record{
		ClusterIDRecord{ClusterID: testClusterID},
		RegisterBrokerRecord{BrokerID: 1, IncarnationID: tid(1)},
		TopicRecord{Name: "a", ID: tid(1)},
		PartitionRecord{TopicID: tid(1), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		TopicRecord{Name: "b", ID: tid(2)},
		PartitionRecord{TopicID: tid(2), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "cleanup.policy", Value: sp("compact")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFold(t *testing.T) {
	baseDump := "index=1 cluster=\"AAAAAAAAAAAAAAAAAAAAAA\" nextpid=0\n" +
		"broker 1 inc=1 rack=nil endpoints=[] epoch=1\n" +
		"topic a id=1 configs=map[cleanup.policy:compact]\n" +
		"  a/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n" +
		"topic b id=2 configs=map[]\n" +
		"  b/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n" +
		"brokercfg default=map[] b1=map[]\n"
	if got := dump(base(t)); got != baseDump {
		t.Fatalf("base image:\n%s", got)
	}
	cases := []struct {
		name string
		recs []Record
		want string // lines that differ from baseDump: "-old" / "+new"
		err  bool
	}{
		{name: "same cluster id again", recs: []Record{ClusterIDRecord{ClusterID: testClusterID}}},
		{name: "other cluster id", recs: []Record{ClusterIDRecord{ClusterID: "BBBBBBBBBBBBBBBBBBBBBB"}}, err: true},
		{name: "malformed cluster id", recs: []Record{ClusterIDRecord{ClusterID: "x"}}, err: true},
		{name: "register broker", recs: []Record{RegisterBrokerRecord{BrokerID: 2, IncarnationID: tid(5), Rack: sp("r"),
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 1}}}},
			want: "+broker 2 inc=5 rack=r endpoints=[{PLAINTEXT h 1 0}] epoch=1"},
		{name: "re-register broker", recs: []Record{RegisterBrokerRecord{BrokerID: 1, IncarnationID: tid(7)}},
			want: "-broker 1 inc=1 rack=nil endpoints=[] epoch=1\n+broker 1 inc=7 rack=nil endpoints=[] epoch=1"},
		{name: "negative broker", recs: []Record{RegisterBrokerRecord{BrokerID: -1}}, err: true},
		{name: "topic with two partitions", recs: []Record{
			TopicRecord{Name: "c", ID: tid(3)},
			PartitionRecord{TopicID: tid(3), Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
			PartitionRecord{TopicID: tid(3), Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
			want: "+topic c id=3 configs=map[]\n+  c/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n+  c/1 replicas=[1] isr=[1] leader=1 le=0 pe=0"},
		{name: "duplicate topic name", recs: []Record{TopicRecord{Name: "a", ID: tid(3)}}, err: true},
		{name: "duplicate topic id", recs: []Record{TopicRecord{Name: "c", ID: tid(1)}}, err: true},
		{name: "zero topic id", recs: []Record{TopicRecord{Name: "c"}}, err: true},
		{name: "empty topic name", recs: []Record{TopicRecord{ID: tid(3)}}, err: true},
		{name: "partition gap", recs: []Record{PartitionRecord{TopicID: tid(1), Partition: 2, Replicas: []int32{1}, Leader: 1}}, err: true},
		{name: "partition unknown topic", recs: []Record{PartitionRecord{TopicID: tid(9), Replicas: []int32{1}, Leader: 1}}, err: true},
		{name: "partition no replicas", recs: []Record{PartitionRecord{TopicID: tid(1), Partition: 1, Leader: NoLeader}}, err: true},
		{name: "partition repeated replica", recs: []Record{PartitionRecord{TopicID: tid(1), Partition: 1, Replicas: []int32{1, 1}, Leader: 1}}, err: true},
		{name: "partition leader not replica", recs: []Record{PartitionRecord{TopicID: tid(1), Partition: 1, Replicas: []int32{1}, Leader: 2}}, err: true},
		{name: "partition isr not subset", recs: []Record{PartitionRecord{TopicID: tid(1), Partition: 1, Replicas: []int32{1}, ISR: []int32{2}, Leader: 1}}, err: true},
		{name: "partition replaced", recs: []Record{PartitionRecord{TopicID: tid(2), Partition: 0, Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 5, PartitionEpoch: 6}},
			want: "-  b/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n+  b/0 replicas=[1 2] isr=[2] leader=2 le=5 pe=6"},
		{name: "change isr only", recs: []Record{PartitionChangeRecord{TopicID: tid(2), Leader: NoLeaderChange, ISR: []int32{}}},
			want: "-  b/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n+  b/0 replicas=[1] isr=[] leader=1 le=0 pe=1"},
		{name: "change leader bumps epochs", recs: []Record{PartitionChangeRecord{TopicID: tid(2), Leader: NoLeader}},
			want: "-  b/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n+  b/0 replicas=[1] isr=[1] leader=-1 le=1 pe=1"},
		{name: "same leader keeps leader epoch", recs: []Record{PartitionChangeRecord{TopicID: tid(2), Leader: 1}},
			want: "-  b/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n+  b/0 replicas=[1] isr=[1] leader=1 le=0 pe=1"},
		{name: "change replicas leaving leader out", recs: []Record{PartitionChangeRecord{TopicID: tid(2), Leader: NoLeaderChange, Replicas: []int32{2}}}, err: true},
		{name: "change unknown partition", recs: []Record{PartitionChangeRecord{TopicID: tid(2), Partition: 1, Leader: NoLeaderChange}}, err: true},
		{name: "remove topic drops configs", recs: []Record{RemoveTopicRecord{TopicID: tid(1)}},
			want: "-topic a id=1 configs=map[cleanup.policy:compact]\n-  a/0 replicas=[1] isr=[1] leader=1 le=0 pe=0"},
		{name: "remove then recreate has no configs", recs: []Record{RemoveTopicRecord{TopicID: tid(1)}, TopicRecord{Name: "a", ID: tid(4)}},
			want: "-topic a id=1 configs=map[cleanup.policy:compact]\n-  a/0 replicas=[1] isr=[1] leader=1 le=0 pe=0\n+topic a id=4 configs=map[]"},
		{name: "remove unknown topic", recs: []Record{RemoveTopicRecord{TopicID: tid(9)}}, err: true},
		{name: "set topic config", recs: []Record{ConfigRecord{ResourceType: ResourceTopic, ResourceName: "b", Name: "retention.ms", Value: sp("5")}},
			want: "-topic b id=2 configs=map[]\n+topic b id=2 configs=map[retention.ms:5]"},
		{name: "delete topic config", recs: []Record{ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Name: "cleanup.policy"}},
			want: "-topic a id=1 configs=map[cleanup.policy:compact]\n+topic a id=1 configs=map[]"},
		{name: "config unknown topic", recs: []Record{ConfigRecord{ResourceType: ResourceTopic, ResourceName: "zz", Name: "x", Value: sp("1")}}, err: true},
		{name: "config empty name", recs: []Record{ConfigRecord{ResourceType: ResourceTopic, ResourceName: "a", Value: sp("1")}}, err: true},
		{name: "config bad resource type", recs: []Record{ConfigRecord{ResourceType: 3, ResourceName: "a", Name: "x", Value: sp("1")}}, err: true},
		{name: "broker configs", recs: []Record{
			ConfigRecord{ResourceType: ResourceBroker, ResourceName: "", Name: "num.io.threads", Value: sp("4")},
			ConfigRecord{ResourceType: ResourceBroker, ResourceName: "1", Name: "log.cleaner.threads", Value: sp("2")}},
			want: "-brokercfg default=map[] b1=map[]\n+brokercfg default=map[num.io.threads:4] b1=map[log.cleaner.threads:2]"},
		{name: "broker config bad name", recs: []Record{ConfigRecord{ResourceType: ResourceBroker, ResourceName: "x", Name: "a", Value: sp("1")}}, err: true},
		{name: "producer ids", recs: []Record{ProducerIDsRecord{BrokerID: 1, NextProducerID: 1000}, ProducerIDsRecord{BrokerID: 1, NextProducerID: 2000}},
			want: "-index=1 cluster=\"AAAAAAAAAAAAAAAAAAAAAA\" nextpid=0\n+index=1 cluster=\"AAAAAAAAAAAAAAAAAAAAAA\" nextpid=2000"},
		{name: "producer ids backwards", recs: []Record{ProducerIDsRecord{NextProducerID: 1000}, ProducerIDsRecord{NextProducerID: 1000}}, err: true},
		{name: "valid then invalid is atomic", recs: []Record{TopicRecord{Name: "c", ID: tid(3)}, RemoveTopicRecord{TopicID: tid(9)}}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prev := base(t)
			next, err := prev.Fold(1, tc.recs)
			if got := dump(prev); got != baseDump {
				t.Fatalf("fold modified the previous image:\n%s", got)
			}
			if tc.err {
				if !errors.Is(err, ErrInvalidRecord) || next != nil {
					t.Fatalf("err %v next %v, want ErrInvalidRecord and no image", err, next)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := diffLines(baseDump, dump(next)); got != tc.want {
				t.Fatalf("diff:\n%s\nwant:\n%s", got, tc.want)
			}
			// A round trip through a snapshot gives the same image.
			restored, err := DecodeSnapshot(EncodeSnapshot(next))
			if err != nil {
				t.Fatal(err)
			}
			if dump(restored) != dump(next) || !reflect.DeepEqual(restored.Records(), next.Records()) {
				t.Fatalf("snapshot round trip differs:\n%s\nvs\n%s", dump(restored), dump(next))
			}
		})
	}
}

// diffLines lists lines removed from a ("-") and added in b ("+"), in order.
func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for _, l := range al {
		if !slices.Contains(bl, l) {
			out = append(out, "-"+l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			out = append(out, "+"+l)
		}
	}
	return strings.Join(out, "\n")
}

func TestFoldSharesUnchanged(t *testing.T) {
	prev := base(t)
	next, err := prev.Fold(2, []Record{PartitionChangeRecord{TopicID: tid(1), Leader: NoLeaderChange, ISR: []int32{}}})
	if err != nil {
		t.Fatal(err)
	}
	if next.Topic("b") != prev.Topic("b") {
		t.Error("unchanged topic b was copied")
	}
	if next.Topic("a") == prev.Topic("a") || len(prev.Topic("a").Partitions[0].ISR) != 1 {
		t.Error("changed topic a is shared or the old one was modified")
	}
	if next.TopicByID(tid(1)) != next.Topic("a") || next.AppliedIndex() != 2 {
		t.Error("by-id index or applied index wrong")
	}
	// Callers cannot reach the image's maps through the config accessors.
	prev.TopicConfigs("a")["cleanup.policy"] = "delete"
	if prev.TopicConfigs("a")["cleanup.policy"] != "compact" {
		t.Error("TopicConfigs returned the image's own map")
	}
	// A nil image reads as empty.
	var nilImg *Image
	if nilImg.Topic("a") != nil || nilImg.NumTopics() != 0 || nilImg.Topics() != nil || nilImg.ClusterID() != "" {
		t.Error("nil image is not empty")
	}
}

func TestSnapshotCorrupt(t *testing.T) {
	good := EncodeSnapshot(base(t))
	for _, b := range [][]byte{nil, []byte("PMS2"), good[:10], append(slices.Clone(good), 1)} {
		if _, err := DecodeSnapshot(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeSnapshot(%q...) = %v", b[:min(len(b), 8)], err)
		}
	}
	img, err := DecodeSnapshot(good)
	if err != nil || img.AppliedIndex() != 1 {
		t.Fatalf("%v %d", err, img.AppliedIndex())
	}
}

func TestLeaderAddr(t *testing.T) {
	id := NewUUID()
	img, err := Empty().Fold(1, []Record{
		RegisterBrokerRecord{BrokerID: 1, Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h1", Port: 9092}}},
		TopicRecord{Name: "t", ID: id},
		PartitionRecord{TopicID: id, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1},
		PartitionRecord{TopicID: id, Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: NoLeader},
	})
	if err != nil {
		t.Fatal(err)
	}
	if l, addr, err := img.LeaderAddr("t", 0, "PLAINTEXT"); l != 1 || addr != "h1:9092" || err != nil {
		t.Fatalf("partition 0: %d %q %v", l, addr, err)
	}
	if _, _, err := img.LeaderAddr("t", 0, "INTERNAL"); !errors.Is(err, ErrNoLeaderAddr) {
		t.Fatalf("no such listener: %v", err)
	}
	if _, _, err := img.LeaderAddr("t", 1, "PLAINTEXT"); !errors.Is(err, ErrNoLeaderAddr) {
		t.Fatalf("no leader: %v", err)
	}
	if _, _, err := img.LeaderAddr("t", 2, "PLAINTEXT"); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v", err)
	}
	var nb *Broker
	if nb.Addr("PLAINTEXT") != "" {
		t.Fatal("a nil broker has an address")
	}
}
