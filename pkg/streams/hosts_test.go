package streams

import (
	"fmt"
	"reflect"
	"testing"
)

func TestAssignmentEncoding(t *testing.T) {
	owners := map[TaskID]string{{0, 0}: "a:1", {0, 1}: "b:2", {1, 0}: "a:1", {2, 7}: "", {1, 2}: "b:2"}
	standbys := map[TaskID][]string{{0, 0}: {"c:3", "b:2"}, {0, 1}: {"a:1", ""}}
	got, err := decodeAssignment(encodeAssignment(owners, standbys, []TaskID{{1, 2}, {0, 1}}))
	if err != nil {
		t.Fatal(err)
	}
	delete(owners, TaskID{2, 7}) // members without application.server are left out
	if fmt.Sprint(got.owners) != fmt.Sprint(owners) {
		t.Errorf("owners: got %v, want %v", got.owners, owners)
	}
	wantStandbys := map[TaskID][]string{{0, 0}: {"b:2", "c:3"}, {0, 1}: {"a:1"}}
	if fmt.Sprint(got.standbys) != fmt.Sprint(wantStandbys) {
		t.Errorf("standbys: got %v, want %v", got.standbys, wantStandbys)
	}
	if want := []TaskID{{0, 1}, {1, 2}}; !reflect.DeepEqual(got.mine, want) {
		t.Errorf("own standbys: got %v, want %v", got.mine, want)
	}

	// Version 1, as older instances write it: hosts with active tasks, nothing else.
	v1 := []byte{1, 1, 3, 'a', ':', '1', 2, 0, 0, 1, 4}
	got, err = decodeAssignment(v1)
	if err != nil || fmt.Sprint(got.owners) != "map[0_0:a:1 1_4:a:1]" || len(got.standbys) != 0 || got.mine != nil {
		t.Errorf("v1 assignment: %+v, %v", got, err)
	}

	for _, bad := range [][]byte{
		{3},                // unknown version
		{2, 5},             // more hosts than bytes
		{1, 1, 3, 'a'},     // short host
		{2, 1, 0, 0, 0, 0}, // empty host
		{2, 0},             // v2 without its own standby list
		append(encodeAssignment(owners, nil, nil), 0), // trailing byte
	} {
		if _, err := decodeAssignment(bad); err == nil {
			t.Errorf("decodeAssignment(%x) accepted", bad)
		}
	}
}

func TestMemberInfoEncoding(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want memberInfo
		bad  bool
	}{
		{"v2 with state", encodeMemberInfo(memberInfo{host: "h:9", state: []TaskID{{1, 0}, {0, 3}}}), memberInfo{host: "h:9", state: []TaskID{{0, 3}, {1, 0}}}, false},
		{"v2 without host or state", encodeMemberInfo(memberInfo{}), memberInfo{}, false},
		{"v1", []byte{1, 3, 'h', ':', '9'}, memberInfo{host: "h:9"}, false},
		{"no user data", nil, memberInfo{}, false},
		{"unknown version", []byte{9, 0}, memberInfo{}, true},
		{"v2 missing state", []byte{2, 0}, memberInfo{}, true},
		{"trailing byte", []byte{1, 0, 0}, memberInfo{}, true},
	}
	for _, c := range cases {
		got, err := decodeMemberInfo(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%s: err = %v", c.name, err)
			continue
		}
		if !c.bad && fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func FuzzDecodeAssignment(f *testing.F) {
	f.Add(encodeAssignment(map[TaskID]string{{0, 0}: "a:1", {1, 3}: "b:2"}, map[TaskID][]string{{0, 0}: {"b:2"}}, []TaskID{{1, 3}}))
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 0, 0})
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := decodeAssignment(b)
		if err != nil {
			return
		}
		again, err := decodeAssignment(encodeAssignment(info.owners, info.standbys, info.mine))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(info) {
			t.Fatalf("re-encoding %v gave %v, %v", info, again, err)
		}
	})
}

func TestParseTaskID(t *testing.T) {
	for s, want := range map[string]bool{"0_1": true, "12_7": true, "_1": false, "1_": false, "a_1": false, "1_2_3": false, "-1_2": false, ".checkpoint": false} {
		if _, ok := parseTaskID(s); ok != want {
			t.Errorf("parseTaskID(%q) ok = %v", s, ok)
		}
	}
	if id, _ := parseTaskID(TaskID{3, 14}.String()); id != (TaskID{3, 14}) {
		t.Errorf("round trip: %v", id)
	}
}
