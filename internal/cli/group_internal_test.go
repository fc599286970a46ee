package cli

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func TestParseTopicScopes(t *testing.T) {
	for _, tc := range []struct {
		in    []string
		want  map[string][]int32
		usage bool
	}{
		{in: nil, want: map[string][]int32{}},
		{in: []string{"a"}, want: map[string][]int32{"a": nil}},
		{in: []string{"a:2,0,1"}, want: map[string][]int32{"a": {0, 1, 2}}},
		{in: []string{"a:1", "a:0,1", "b"}, want: map[string][]int32{"a": {0, 1}, "b": nil}},
		{in: []string{"a:1", "a"}, want: map[string][]int32{"a": nil}},
		{in: []string{"a", "a:1"}, want: map[string][]int32{"a": nil}},
		{in: []string{"a: 3 , 4"}, want: map[string][]int32{"a": {3, 4}}},
		{in: []string{":1"}, usage: true},
		{in: []string{"a:"}, usage: true},
		{in: []string{"a:x"}, usage: true},
		{in: []string{"a:-1"}, usage: true},
		{in: []string{"a:1,,2"}, usage: true},
		{in: []string{"a:99999999999"}, usage: true},
	} {
		t.Run(fmt.Sprint(tc.in), func(t *testing.T) {
			got, err := parseTopicScopes(tc.in)
			if tc.usage {
				if !errors.Is(err, ErrUsage) {
					t.Fatalf("got %v, %v; want a usage error", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseStates(t *testing.T) {
	got, err := parseStates([]string{"stable", "EMPTY", "Stable", " preparingrebalance "})
	if want := []string{"Stable", "Empty", "PreparingRebalance"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
	if _, err := parseStates([]string{"Stable", "Asleep"}); !errors.Is(err, ErrUsage) {
		t.Fatalf("unknown state: %v, want a usage error", err)
	}
}

// listedOf builds ListedOffsets of one topic from partition → offset.
func listedOf(topic string, offsets map[int32]int64) kadm.ListedOffsets {
	l := kadm.ListedOffsets{topic: {}}
	for p, o := range offsets {
		l[topic][p] = kadm.ListedOffset{Topic: topic, Partition: p, Offset: o}
	}
	return l
}

// commitsOf builds OffsetResponses of one topic from partition → committed offset.
func commitsOf(topic string, offsets map[int32]int64) kadm.OffsetResponses {
	c := kadm.OffsetResponses{topic: {}}
	for p, o := range offsets {
		c[topic][p] = kadm.OffsetResponse{Offset: kadm.Offset{Topic: topic, Partition: p, At: o}}
	}
	return c
}

func TestPlanSeek(t *testing.T) {
	// Partition 0: log [10, 50), committed 30. Partition 1: log [0, 5), committed 5.
	// Partition 2: empty log [7, 7), nothing committed.
	starts := listedOf("t", map[int32]int64{0: 10, 1: 0, 2: 7})
	ends := listedOf("t", map[int32]int64{0: 50, 1: 5, 2: 7})
	commits := commitsOf("t", map[int32]int64{0: 30, 1: 5})
	atTime := listedOf("t", map[int32]int64{0: 42, 1: -1, 2: -1})
	all := map[string][]int32{"t": {2, 0, 1}}
	type want struct {
		current, target int64
		err             string
	}
	for _, tc := range []struct {
		name string
		to   seekTarget
		want []want // by partition
	}{
		{"earliest", seekTarget{mode: seekEarliest}, []want{{30, 10, ""}, {5, 0, ""}, {-1, 7, ""}}},
		{"latest", seekTarget{mode: seekLatest}, []want{{30, 50, ""}, {5, 5, ""}, {-1, 7, ""}}},
		{"timestamp", seekTarget{mode: seekTimestamp, n: 1}, []want{{30, 42, ""}, {5, 5, ""}, {-1, 7, ""}}},
		{"offset inside", seekTarget{mode: seekOffset, n: 12}, []want{{30, 12, ""}, {5, 5, ""}, {-1, 7, ""}}},
		{"offset below start", seekTarget{mode: seekOffset, n: 0}, []want{{30, 10, ""}, {5, 0, ""}, {-1, 7, ""}}},
		{"shift back", seekTarget{mode: seekShiftBy, n: -25}, []want{{30, 10, ""}, {5, 0, ""}, {-1, -1, "no committed offset to shift"}}},
		{"shift forward", seekTarget{mode: seekShiftBy, n: 15}, []want{{30, 45, ""}, {5, 5, ""}, {-1, -1, "no committed offset to shift"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := planSeek(tc.to, all, commits, starts, ends, atTime)
			if len(rows) != len(tc.want) {
				t.Fatalf("%d rows, want %d: %+v", len(rows), len(tc.want), rows)
			}
			for i, r := range rows {
				w := tc.want[i]
				if r.topic != "t" || r.partition != int32(i) || r.current != w.current || r.target != w.target || r.err != w.err {
					t.Errorf("row %d = %+v, want partition %d %+v", i, r, i, w)
				}
			}
		})
	}

	// A partition the listing failed for, and a topic the broker does not know.
	bad := listedOf("t", map[int32]int64{0: 0})
	bad["t"][1] = kadm.ListedOffset{Topic: "t", Partition: 1, Err: kerr.NotLeaderForPartition}
	bad["gone"] = map[int32]kadm.ListedOffset{-1: {Topic: "gone", Partition: -1, Err: kerr.UnknownTopicOrPartition}}
	rows := planSeek(seekTarget{mode: seekEarliest}, map[string][]int32{"t": {0, 1, 2}, "gone": {0}}, nil, bad, bad, nil)
	wantErr := []string{
		"log start offset: " + kerrMessage(kerr.UnknownTopicOrPartition),
		"",
		"log start offset: " + kerrMessage(kerr.NotLeaderForPartition),
		"log start offset: not listed by the broker",
	}
	if len(rows) != len(wantErr) {
		t.Fatalf("rows %+v", rows)
	}
	for i, r := range rows {
		if r.err != wantErr[i] {
			t.Errorf("row %d (%s[%d]) err %q, want %q", i, r.topic, r.partition, r.err, wantErr[i])
		}
	}
}

func TestOffsetRows(t *testing.T) {
	members := []memberView{
		{MemberID: "m1", Assignment: []topicPartsView{{Topic: "t", Partitions: []int32{0, 2}}}},
		{MemberID: "m2", Assignment: []topicPartsView{{Topic: "t", Partitions: []int32{1}}, {Topic: "u", Partitions: []int32{0}}}},
	}
	// t[0] behind by 4; t[1] committed beyond the end (lag 0); t[2] not committed; u[0]'s
	// end offset failed to list; old[0] committed but no longer assigned, its topic gone.
	commits := commitsOf("t", map[int32]int64{0: 6, 1: 12})
	commits["old"] = map[int32]kadm.OffsetResponse{0: {Offset: kadm.Offset{Topic: "old", At: 3}}}
	commits["u"] = map[int32]kadm.OffsetResponse{0: {Offset: kadm.Offset{Topic: "u", At: 1}}}
	ends := listedOf("t", map[int32]int64{0: 10, 1: 11, 2: 4})
	ends["old"] = map[int32]kadm.ListedOffset{-1: {Topic: "old", Partition: -1, Err: kerr.UnknownTopicOrPartition}}
	ends["u"] = map[int32]kadm.ListedOffset{0: {Topic: "u", Err: kerr.NotLeaderForPartition}}

	rows, total := offsetRowsOf(members, commits, ends)
	i64 := func(n int64) *int64 { return &n }
	str := func(s string) *string { return &s }
	want := []offsetView{
		{Topic: "old", Partition: 0, Committed: i64(3), Error: kerrMessage(kerr.UnknownTopicOrPartition)},
		{Topic: "t", Partition: 0, Committed: i64(6), LogEndOffset: i64(10), Lag: i64(4), MemberID: str("m1")},
		{Topic: "t", Partition: 1, Committed: i64(12), LogEndOffset: i64(11), Lag: i64(0), MemberID: str("m2")},
		{Topic: "t", Partition: 2, LogEndOffset: i64(4), MemberID: str("m1")},
		{Topic: "u", Partition: 0, Committed: i64(1), MemberID: str("m2"), Error: kerrMessage(kerr.NotLeaderForPartition)},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows:\n got %s\nwant %s", dumpOffsets(rows), dumpOffsets(want))
	}
	if total != 4 {
		t.Errorf("total lag %d, want 4", total)
	}
	if rows, total := offsetRowsOf(nil, nil, nil); len(rows) != 0 || rows == nil || total != 0 {
		t.Errorf("no members, no commits: %v %d (want an empty, non-nil list for JSON)", rows, total)
	}
	if got := assignmentString(members[1].Assignment); got != "t[1] u[0]" {
		t.Errorf("assignment %q", got)
	}
	if got := assignmentString(nil); got != "-" {
		t.Errorf("no assignment %q", got)
	}
}

func dumpOffsets(os []offsetView) string {
	s := ""
	for _, o := range os {
		s += fmt.Sprintf("{%s[%d] c=%s end=%s lag=%s m=%s err=%q} ", o.Topic, o.Partition, optInt(o.Committed), optInt(o.LogEndOffset), optInt(o.Lag), optStr(o.MemberID), o.Error)
	}
	return s
}
