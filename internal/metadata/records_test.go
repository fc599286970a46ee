package metadata

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// v0Entry encodes one record payload at version 0, the way logs written
// before fencing, ELR and reassignments hold them.
func v0Entry(t RecordType, payload func(e *encoder)) []byte {
	var p encoder
	payload(&p)
	e := &encoder{b: []byte{entryFormat}}
	e.uvarint(1)
	e.b = append(e.b, byte(t), 0)
	e.uvarint(uint64(len(p.b)))
	e.b = append(e.b, p.b...)
	return e.b
}

func TestDecodeVersion0(t *testing.T) {
	rack := "r1"
	cases := []struct {
		name string
		b    []byte
		want Record
	}{
		{name: "register broker decodes unfenced", b: v0Entry(TypeRegisterBroker, func(e *encoder) {
			e.int32(3)
			e.uuid(tid(7))
			e.uvarint(1)
			e.string("PLAINTEXT")
			e.string("h")
			e.int32(9092)
			e.int16(0)
			e.nullableString(&rack)
		}), want: RegisterBrokerRecord{BrokerID: 3, IncarnationID: tid(7), Rack: &rack,
			Endpoints: []Endpoint{{Name: "PLAINTEXT", Host: "h", Port: 9092}}}},
		{name: "partition has no elr or reassignment", b: v0Entry(TypePartition, func(e *encoder) {
			e.uuid(tid(1))
			e.int32(0)
			e.int32s([]int32{1, 2})
			e.int32s([]int32{1})
			e.int32(1)
			e.int32(4)
			e.int32(5)
		}), want: PartitionRecord{TopicID: tid(1), Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 4, PartitionEpoch: 5}},
		{name: "partition change leaves new fields unchanged", b: v0Entry(TypePartitionChange, func(e *encoder) {
			e.uuid(tid(1))
			e.int32(0)
			e.int32(NoLeaderChange)
			e.int32s([]int32{})
			e.int32s(nil)
		}), want: PartitionChangeRecord{TopicID: tid(1), Leader: NoLeaderChange, ISR: []int32{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRecords(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, []Record{tc.want}) {
				t.Fatalf("got %#v\nwant %#v", got[0], tc.want)
			}
		})
	}
	// A whole version-0 log folds: the broker is unfenced with the entry's
	// index as its epoch.
	img := Empty()
	for i, c := range cases {
		recs, _ := DecodeRecords(c.b)
		if i == 0 {
			recs = append(recs, TopicRecord{Name: "a", ID: tid(1)})
		}
		var err error
		if img, err = img.Fold(uint64(i+1), recs); err != nil {
			t.Fatal(err)
		}
	}
	b := img.Broker(3)
	if b == nil || b.Fenced || b.Epoch != 1 || !b.Usable() {
		t.Fatalf("broker from a v0 record: %+v", b)
	}
	if p := img.Topic("a").Partitions[0]; p.ELR != nil || p.AddingReplicas != nil || len(p.ISR) != 0 || p.PartitionEpoch != 6 {
		t.Fatalf("partition from v0 records: %+v", p)
	}
}

func TestDecodeNewFieldsCorrupt(t *testing.T) {
	good := EncodeRecords([]Record{RegisterBrokerRecord{BrokerID: 1, Fenced: true}})
	bad := append([]byte(nil), good...)
	// The fenced flag sits before the 8-byte epoch at the end; 2 is not a bool.
	bad[len(bad)-9] = 2
	if _, err := DecodeRecords(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bool 2 decoded: %v", err)
	}
	if _, err := DecodeRecords([]byte{1, 1, byte(TypePartition), 2, 0}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("partition v2 decoded: %v", err)
	}
}

// clusterBase has three brokers (1 unfenced, 2 fenced, 3 in controlled
// shutdown, all at epoch 1) and topic t (id 5) with partition 0 on all three.
func clusterBase(t *testing.T) *Image {
	t.Helper()
	img, err := Empty().Fold(1, []Record{
		RegisterBrokerRecord{BrokerID: 1, IncarnationID: tid(1)},
		RegisterBrokerRecord{BrokerID: 2, IncarnationID: tid(2), Fenced: true},
		RegisterBrokerRecord{BrokerID: 3, IncarnationID: tid(3)},
		BrokerRegistrationChangeRecord{BrokerID: 3, BrokerEpoch: 1, Fenced: Unchanged, InControlledShutdown: SetTrue},
		TopicRecord{Name: "t", ID: tid(5)},
		PartitionRecord{TopicID: tid(5), Replicas: []int32{1, 2, 3}, ISR: []int32{1}, Leader: 1, ELR: []int32{2}},
		ConfigRecord{ResourceType: ResourceTopic, ResourceName: "t", Name: "min.insync.replicas", Value: sp("2")},
		ConfigRecord{ResourceType: ResourceBroker, Name: "unclean.leader.election.enable", Value: sp("true")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestFoldClusterRecords(t *testing.T) {
	// The first dump line holds the applied index, which every case moves.
	body := func(img *Image) string { s := dump(img); return s[strings.IndexByte(s, '\n')+1:] }
	baseDump := body(clusterBase(t))
	cases := []struct {
		name string
		recs []Record
		want string
		err  bool
	}{
		{name: "unfence", recs: []Record{BrokerRegistrationChangeRecord{BrokerID: 2, BrokerEpoch: 1, Fenced: SetFalse, InControlledShutdown: Unchanged}},
			want: "-broker 2 inc=2 rack=nil endpoints=[] epoch=1 fenced\n+broker 2 inc=2 rack=nil endpoints=[] epoch=1"},
		{name: "leave controlled shutdown and fence", recs: []Record{BrokerRegistrationChangeRecord{BrokerID: 3, BrokerEpoch: 1, Fenced: SetTrue, InControlledShutdown: SetFalse}},
			want: "-broker 3 inc=3 rack=nil endpoints=[] epoch=1 shutting-down\n+broker 3 inc=3 rack=nil endpoints=[] epoch=1 fenced"},
		{name: "change with stale epoch", recs: []Record{BrokerRegistrationChangeRecord{BrokerID: 2, BrokerEpoch: 0, Fenced: SetFalse, InControlledShutdown: Unchanged}}, err: true},
		{name: "change of unknown broker", recs: []Record{BrokerRegistrationChangeRecord{BrokerID: 9, BrokerEpoch: 1, Fenced: SetFalse, InControlledShutdown: Unchanged}}, err: true},
		{name: "change with bad tri-state", recs: []Record{BrokerRegistrationChangeRecord{BrokerID: 2, BrokerEpoch: 1, Fenced: 2, InControlledShutdown: Unchanged}}, err: true},
		{name: "re-registration takes the entry index and clears shutdown", recs: []Record{RegisterBrokerRecord{BrokerID: 3, IncarnationID: tid(4), Fenced: true}},
			want: "-broker 3 inc=3 rack=nil endpoints=[] epoch=1 shutting-down\n+broker 3 inc=4 rack=nil endpoints=[] epoch=7 fenced"},
		{name: "old epoch then change in one batch", recs: []Record{
			RegisterBrokerRecord{BrokerID: 2, IncarnationID: tid(8), Fenced: true},
			BrokerRegistrationChangeRecord{BrokerID: 2, BrokerEpoch: 7, Fenced: SetFalse, InControlledShutdown: Unchanged}},
			want: "-broker 2 inc=2 rack=nil endpoints=[] epoch=1 fenced\n+broker 2 inc=8 rack=nil endpoints=[] epoch=7"},
		{name: "explicit epoch from the future", recs: []Record{RegisterBrokerRecord{BrokerID: 4, Epoch: 8}}, err: true},
		{name: "unregister", recs: []Record{UnregisterBrokerRecord{BrokerID: 2, BrokerEpoch: 1}},
			want: "-broker 2 inc=2 rack=nil endpoints=[] epoch=1 fenced"},
		{name: "unregister stale epoch", recs: []Record{UnregisterBrokerRecord{BrokerID: 2, BrokerEpoch: 3}}, err: true},
		{name: "start reassignment", recs: []Record{PartitionChangeRecord{TopicID: tid(5), Leader: NoLeaderChange,
			Replicas: []int32{1, 2, 3, 4}, AddingReplicas: []int32{4}, RemovingReplicas: []int32{3}}},
			err: false, want: "-  t/0 replicas=[1 2 3] isr=[1] leader=1 le=0 pe=0 elr=[2]\n+  t/0 replicas=[1 2 3 4] isr=[1] leader=1 le=0 pe=1 elr=[2] adding=[4] removing=[3]"},
		{name: "nil leaves elr, empty clears it", recs: []Record{
			PartitionChangeRecord{TopicID: tid(5), Leader: NoLeaderChange, LastKnownELR: []int32{2}},
			PartitionChangeRecord{TopicID: tid(5), Leader: NoLeader, ELR: []int32{}}},
			want: "-  t/0 replicas=[1 2 3] isr=[1] leader=1 le=0 pe=0 elr=[2]\n+  t/0 replicas=[1 2 3] isr=[1] leader=-1 le=1 pe=2 lastelr=[2]"},
		{name: "elr overlapping isr", recs: []Record{PartitionChangeRecord{TopicID: tid(5), Leader: NoLeaderChange, ISR: []int32{1, 2}}}, err: true},
		{name: "elr not a replica", recs: []Record{PartitionChangeRecord{TopicID: tid(5), Leader: NoLeaderChange, ELR: []int32{7}}}, err: true},
		{name: "adding overlaps removing", recs: []Record{PartitionChangeRecord{TopicID: tid(5), Leader: NoLeaderChange,
			AddingReplicas: []int32{3}, RemovingReplicas: []int32{3}}}, err: true},
		{name: "repeated elr member", recs: []Record{PartitionRecord{TopicID: tid(5), Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, ELR: []int32{2, 2}}}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			prev := clusterBase(t)
			next, err := prev.Fold(7, tc.recs)
			if body(prev) != baseDump {
				t.Fatal("fold modified the previous image")
			}
			if tc.err {
				if !errors.Is(err, ErrInvalidRecord) {
					t.Fatalf("err %v, want ErrInvalidRecord", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := diffLines(baseDump, body(next)); got != tc.want {
				t.Fatalf("diff:\n%s\nwant:\n%s", got, tc.want)
			}
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

func TestSnapshotKeepsClusterState(t *testing.T) {
	img, err := clusterBase(t).Fold(9, []Record{RegisterBrokerRecord{BrokerID: 4, Rack: sp("r2")}})
	if err != nil {
		t.Fatal(err)
	}
	restored, err := DecodeSnapshot(EncodeSnapshot(img))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{1, 2, 3, 4} {
		if !reflect.DeepEqual(restored.Broker(id), img.Broker(id)) {
			t.Errorf("broker %d: %+v, want %+v", id, restored.Broker(id), img.Broker(id))
		}
	}
	if restored.Broker(4).Epoch != 9 || !restored.Broker(3).InControlledShutdown {
		t.Fatalf("epoch or shutdown state lost: %+v %+v", restored.Broker(4), restored.Broker(3))
	}
	if !reflect.DeepEqual(restored.Topic("t").Partitions, img.Topic("t").Partitions) {
		t.Fatal("partitions differ")
	}
}

func TestImageHelpers(t *testing.T) {
	img := clusterBase(t)
	if got := img.UnfencedBrokers(); !reflect.DeepEqual(got, []int32{1, 3}) {
		t.Errorf("UnfencedBrokers = %v", got)
	}
	if img.Broker(3).Usable() || img.Broker(2).Usable() || !img.Broker(1).Usable() || img.Broker(9).Usable() {
		t.Error("Usable wrong")
	}
	if got := img.PartitionsOn(2); !reflect.DeepEqual(got, []TopicPartition{{TopicID: tid(5)}}) {
		t.Errorf("PartitionsOn(2) = %v", got)
	}
	if got := img.PartitionsOn(4); got != nil {
		t.Errorf("PartitionsOn(4) = %v", got)
	}
	if p := img.Partition(tid(5), 0); p == nil || p.Leader != 1 || img.Partition(tid(5), 1) != nil || img.Partition(tid(6), 0) != nil {
		t.Error("Partition lookup wrong")
	}
	if v, ok := img.TopicConfig("t", "min.insync.replicas"); !ok || v != "2" {
		t.Error("TopicConfig")
	}
	if v, ok := img.DefaultBrokerConfig("unclean.leader.election.enable"); !ok || v != "true" {
		t.Error("DefaultBrokerConfig")
	}
	var nilImg *Image
	if nilImg.NumBrokers() != 0 || nilImg.UnfencedBrokers() != nil || nilImg.PartitionsOn(1) != nil {
		t.Error("nil image helpers")
	}
	p := Partition{Replicas: []int32{1, 2, 3}, AddingReplicas: []int32{3}, RemovingReplicas: []int32{1}}
	if !p.Reassigning() || !reflect.DeepEqual(p.TargetReplicas(), []int32{2, 3}) {
		t.Error("reassignment helpers")
	}
}
