package streams

import (
	"reflect"
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
		want    []int
	}{
		{"one member takes all", 1, nil, []int{0, 0, 0, 0}},
		{"fresh spread", 3, nil, []int{0, 1, 2, 0}},
		{"sticky within fair share", 2, map[TaskID]int{{0, 0}: 1, {1, 1}: 0}, []int{1, 0, 1, 0}},
		{"previous owner over its share gives work away", 2, map[TaskID]int{{0, 0}: 0, {0, 1}: 0, {1, 0}: 0, {1, 1}: 0}, []int{0, 0, 1, 1}},
		{"departed owner ignored", 2, map[TaskID]int{{0, 0}: 5}, []int{0, 1, 0, 1}},
	}
	for _, c := range cases {
		if got := assignTasks(tasks, c.members, c.prev); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
