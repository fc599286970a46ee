package streams

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func TestAssignTasks(t *testing.T) {
	tasks := planTasks([][]string{{"a", "b"}, {"r"}}, map[string]int32{"a": 2, "b": 2, "r": 2})
	if want := []TaskID{{0, 0}, {0, 1}, {1, 0}, {1, 1}}; !reflect.DeepEqual(tasks, want) {
		t.Fatalf("planTasks = %v", tasks)
	}
	cases := []struct {
		name    string
		members int
		prev    map[TaskID]int
		warm    map[TaskID][]int
		want    []int
	}{
		{"one member takes all", 1, nil, nil, []int{0, 0, 0, 0}},
		{"fresh spread", 3, nil, nil, []int{0, 1, 2, 0}},
		{"sticky within fair share", 2, map[TaskID]int{{0, 0}: 1, {1, 1}: 0}, nil, []int{1, 0, 1, 0}},
		{"previous owner over its share gives work away", 2, map[TaskID]int{{0, 0}: 0, {0, 1}: 0, {1, 0}: 0, {1, 1}: 0}, nil, []int{0, 0, 1, 1}},
		{"departed owner ignored", 2, map[TaskID]int{{0, 0}: 5}, nil, []int{0, 1, 0, 1}},
		{"orphan goes to the member with its state", 3, map[TaskID]int{{0, 0}: 0, {0, 1}: 1}, map[TaskID][]int{{1, 0}: {2}, {1, 1}: {2}}, []int{0, 1, 2, 0}},
		{"previous owner beats a standby", 2, map[TaskID]int{{0, 0}: 1}, map[TaskID][]int{{0, 0}: {0}}, []int{1, 0, 0, 1}},
		{"state holder over its share gives work away", 2, nil, map[TaskID][]int{{0, 0}: {1}, {0, 1}: {1}, {1, 0}: {1}}, []int{1, 1, 0, 0}},
		{"departed state holder ignored", 2, nil, map[TaskID][]int{{0, 0}: {7}}, []int{0, 1, 0, 1}},
	}
	for _, c := range cases {
		if got := assignTasks(tasks, c.members, c.prev, c.warm); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAssignStandbys(t *testing.T) {
	tasks := []TaskID{{0, 0}, {0, 1}, {1, 0}, {1, 1}}
	all := []bool{true, true, true, true}
	cases := []struct {
		name     string
		stateful []bool
		owner    []int
		members  int
		n        int
		warm     map[TaskID][]int
		want     [][]int
	}{
		{"none configured", all, []int{0, 1, 0, 1}, 2, 0, nil, [][]int{nil, nil, nil, nil}},
		{"one member: nowhere to put them", all, []int{0, 0, 0, 0}, 1, 1, nil, [][]int{nil, nil, nil, nil}},
		{"two members, one replica: the other member", all, []int{0, 1, 0, 1}, 2, 1, nil, [][]int{{1}, {0}, {1}, {0}}},
		{"capped at members-1", all, []int{0, 1, 2, 0}, 3, 5, nil, [][]int{{1, 2}, {0, 2}, {0, 1}, {1, 2}}},
		{"least loaded first", all, []int{0, 1, 2, 0}, 3, 1, nil, [][]int{{1}, {2}, {0}, {1}}},
		{"state holder first", all, []int{0, 1, 2, 0}, 3, 1, map[TaskID][]int{{0, 0}: {2}, {1, 1}: {0, 2}}, [][]int{{2}, {0}, {1}, {2}}},
		{"owner's own state does not count", all, []int{0, 1, 0, 1}, 3, 1, map[TaskID][]int{{0, 0}: {0}}, [][]int{{2}, {2}, {1}, {0}}},
		{"stateless tasks get none", []bool{true, false, false, true}, []int{0, 1, 0, 1}, 2, 1, nil, [][]int{{1}, nil, nil, {0}}},
	}
	for _, c := range cases {
		got := assignStandbys(tasks, c.stateful, c.owner, c.members, c.n, c.warm)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// TestAssignStandbysInvariants checks, over many group shapes, that a task's standbys are
// never on its owner, never twice on one member, exactly min(n, members-1) for stateful
// tasks and none for others, and that the same input gives the same answer.
func TestAssignStandbysInvariants(t *testing.T) {
	for members := 1; members <= 5; members++ {
		for n := 0; n <= 3; n++ {
			for seed := range 8 {
				var tasks []TaskID
				var stateful []bool
				warm := map[TaskID][]int{}
				prev := map[TaskID]int{}
				for i := range 7 {
					id := TaskID{i % 2, int32(i)}
					tasks = append(tasks, id)
					stateful = append(stateful, (i+seed)%3 != 0)
					if (i*seed)%4 == 1 {
						warm[id] = []int{(i + seed) % members}
					}
					if (i+seed)%2 == 0 {
						prev[id] = (i * seed) % (members + 1) // sometimes a departed member
					}
				}
				owner := assignTasks(tasks, members, prev, warm)
				got := assignStandbys(tasks, stateful, owner, members, n, warm)
				again := assignStandbys(tasks, stateful, owner, members, n, warm)
				if !reflect.DeepEqual(got, again) {
					t.Fatalf("members=%d n=%d seed=%d: not deterministic: %v then %v", members, n, seed, got, again)
				}
				for i, sb := range got {
					want := 0
					if stateful[i] {
						want = min(n, members-1)
					}
					if len(sb) != want {
						t.Errorf("members=%d n=%d seed=%d: task %v has %d standbys, want %d", members, n, seed, tasks[i], len(sb), want)
					}
					if slices.Contains(sb, owner[i]) {
						t.Errorf("members=%d n=%d seed=%d: task %v has a standby on its owner %d", members, n, seed, tasks[i], owner[i])
					}
					if len(slices.Compact(slices.Clone(sb))) != len(sb) || !slices.IsSorted(sb) {
						t.Errorf("members=%d n=%d seed=%d: task %v standbys %v repeat a member", members, n, seed, tasks[i], sb)
					}
					for _, m := range sb {
						if m < 0 || m >= members {
							t.Errorf("members=%d n=%d seed=%d: standby on member %d", members, n, seed, m)
						}
					}
				}
			}
		}
	}
}
