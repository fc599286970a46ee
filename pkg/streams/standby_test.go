package streams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func standbyTestApp(t *testing.T, updates *[]StandbyUpdate, store StoreType) *App {
	t.Helper()
	tp := NewTopology()
	From(tp, "in", String(), String()).GroupByKey().Count("counts")
	tp.SetStoreType("counts", store)
	a, err := New(tp, Config{ApplicationID: "app", StateDir: t.TempDir(), NumStandbyReplicas: 1,
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnStandbyUpdate: func(u StandbyUpdate) { *updates = append(*updates, u) }})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestStandbyApplyHandsOverActiveTasks checks how an assignment is applied: standby tasks
// that become active are handed over with their stores, the wanted set never holds an active
// task, and a change wakes the standby goroutine only when the held set must change.
func TestStandbyApplyHandsOverActiveTasks(t *testing.T) {
	var updates []StandbyUpdate
	a := standbyTestApp(t, &updates, InMemory)
	sb := a.standby
	held := func(ids ...TaskID) {
		sb.mu.tasks = map[TaskID]*task{}
		for _, id := range ids {
			tk, err := a.newTask(id)
			if err != nil {
				t.Fatal(err)
			}
			sb.mu.tasks[id] = tk
		}
	}
	cases := []struct {
		name        string
		held        []TaskID
		assigned    []TaskID
		active      []TaskID
		wantTaken   string
		wantWant    string
		wantChanged bool
	}{
		{"nothing changes", []TaskID{{0, 1}}, []TaskID{{0, 1}}, []TaskID{{0, 0}}, "map[]", "map[0_1:true]", false},
		{"standby becomes active", []TaskID{{0, 1}}, []TaskID{{0, 0}}, []TaskID{{0, 1}}, "[0_1]", "map[0_0:true]", true},
		{"new standby", nil, []TaskID{{0, 2}}, []TaskID{{0, 0}}, "map[]", "map[0_2:true]", true},
		{"standby dropped", []TaskID{{0, 1}, {0, 2}}, []TaskID{{0, 2}}, nil, "map[]", "map[0_2:true]", true},
		{"an active task is never wanted as a standby", nil, []TaskID{{0, 3}}, []TaskID{{0, 3}}, "map[]", "map[]", false},
	}
	for _, c := range cases {
		held(c.held...)
		sb.mu.changed = false
		select {
		case <-sb.wake:
		default:
		}
		sb.setAssigned(c.assigned)
		active := map[TaskID]bool{}
		for _, id := range c.active {
			active[id] = true
		}
		taken := sb.apply(active)
		gotTaken := fmt.Sprint(taken)
		if len(taken) > 0 {
			var ids []TaskID
			for id, tk := range taken {
				if tk.id != id {
					t.Errorf("%s: task %v handed over as %v", c.name, tk.id, id)
				}
				if _, still := sb.mu.tasks[id]; still {
					t.Errorf("%s: %v handed over but still held", c.name, id)
				}
				ids = append(ids, id)
			}
			gotTaken = fmt.Sprint(ids)
		}
		woken := len(sb.wake) == 1
		if gotTaken != c.wantTaken || fmt.Sprint(sb.mu.want) != c.wantWant || sb.mu.changed != c.wantChanged || woken != c.wantChanged {
			t.Errorf("%s: taken %s, want %v, changed %v, woken %v; expected %s, %s, %v",
				c.name, gotTaken, sb.mu.want, sb.mu.changed, woken, c.wantTaken, c.wantWant, c.wantChanged)
		}
		for _, tk := range sb.mu.tasks {
			_ = tk.closeStores(false)
		}
		for _, tk := range taken {
			_ = tk.closeStores(false)
		}
	}
}

// TestStandbyApplyLockedWritesOnlyHeldStores feeds fetched changelog records to a standby:
// records of held tasks are applied from the store's position on (earlier ones were applied
// already), others are ignored, and each moved partition is reported once per batch. In
// memory and on Pebble, where a partition's run is written as one batch.
func TestStandbyApplyLockedWritesOnlyHeldStores(t *testing.T) {
	for _, store := range []StoreType{InMemory, Persistent} {
		t.Run(store.String(), func(t *testing.T) { testStandbyApplyLocked(t, store) })
	}
}

func testStandbyApplyLocked(t *testing.T, store StoreType) {
	const cl = "app-counts-changelog"
	var updates []StandbyUpdate
	a := standbyTestApp(t, &updates, store)
	sb := a.standby
	tk, err := a.newTask(TaskID{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tk.closeStores(false) }()
	sb.mu.tasks[tk.id] = tk
	si := tk.stores["counts"]
	if (si.disk != nil) != (store == Persistent) {
		t.Fatalf("store %v opened with disk %v", store, si.disk != nil)
	}
	si.pos.Store(10)
	rec := func(topic string, p int32, off int64, k, v string) *kgo.Record {
		r := &kgo.Record{Topic: topic, Partition: p, Offset: off, Key: []byte(k)}
		if v != "" {
			r.Value = []byte(v)
		}
		return r
	}
	marker := func(off int64) *kgo.Record {
		r := rec(cl, 1, off, "marker", "m")
		r.Attrs = kgo.NewRecordAttrs(kgo.RecordAttrsOpts{Control: true, Transactional: true})
		return r
	}
	fetches := kgo.Fetches{{Topics: []kgo.FetchTopic{
		{Topic: cl, Partitions: []kgo.FetchPartition{
			{Partition: 1, Records: []*kgo.Record{
				rec(cl, 1, 8, "old", "x"), // before the position: applied already
				rec(cl, 1, 10, "a", "1"),
				rec(cl, 1, 11, "b", "2"),
				rec(cl, 1, 13, "a", ""), // a tombstone after a compacted gap
				marker(14),              // moves the position, not counted
			}},
			{Partition: 0, Records: []*kgo.Record{rec(cl, 0, 0, "z", "9")}}, // no standby here
		}},
		{Topic: "other", Partitions: []kgo.FetchPartition{{Partition: 1, Records: []*kgo.Record{rec("other", 1, 20, "q", "1")}}}},
	}}}
	sb.applyLocked(fetches)
	if _, ok := si.kv.get([]byte("a")); ok {
		t.Error("tombstone not applied")
	}
	if v, ok := si.kv.get([]byte("b")); !ok || string(v) != "2" {
		t.Errorf("b = %q %v", v, ok)
	}
	if _, ok := si.kv.get([]byte("old")); ok || si.kv.len() != 1 {
		t.Errorf("store holds %d keys, want only b", si.kv.len())
	}
	if si.pos.Load() != 15 {
		t.Errorf("position %d, want 15", si.pos.Load())
	}
	want := "[{counts 0_1 app-counts-changelog 1 3 15}]"
	if fmt.Sprint(updates) != want {
		t.Errorf("updates %v, want %s", updates, want)
	}
	// The same batch again (a fetch that raced a handover) changes nothing.
	updates = nil
	sb.applyLocked(fetches)
	if si.pos.Load() != 15 || si.kv.len() != 1 || len(updates) != 0 {
		t.Errorf("replayed batch applied: position %d, %d keys, updates %v", si.pos.Load(), si.kv.len(), updates)
	}
	// A fetch holding the partition twice (two brokers' answers) applies and reports both
	// runs, from the position on.
	fetches = kgo.Fetches{
		{Topics: []kgo.FetchTopic{{Topic: cl, Partitions: []kgo.FetchPartition{{Partition: 1, Records: []*kgo.Record{rec(cl, 1, 15, "c", "3")}}}}}},
		{Topics: []kgo.FetchTopic{{Topic: cl, Partitions: []kgo.FetchPartition{{Partition: 1, Records: []*kgo.Record{rec(cl, 1, 15, "c", "x"), rec(cl, 1, 16, "d", "4")}}}}}},
	}
	sb.applyLocked(fetches)
	if v, _ := si.kv.get([]byte("c")); string(v) != "3" || si.kv.len() != 3 || si.pos.Load() != 17 {
		t.Errorf("after two runs: c = %q, %d keys, position %d", v, si.kv.len(), si.pos.Load())
	}
	if want := "[{counts 0_1 app-counts-changelog 1 2 17}]"; fmt.Sprint(updates) != want {
		t.Errorf("updates %v, want %s", updates, want)
	}
}

// TestRetriableListErr: a changelog created a moment ago answers LEADER_NOT_AVAILABLE, which
// kadm reports as a failed request rather than a partition's error; the first offset lookup
// of a restore or a standby gave up on it instead of retrying (the standby takeover test
// failed under load). Errors that a retry cannot cure still end the lookup.
func TestRetriableListErr(t *testing.T) {
	shard := func(err error) error {
		return &kadm.ShardErrors{Name: "ListOffsets", AllFailed: true, Errs: []kadm.ShardError{{Err: err}}}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"no leader yet", shard(kerr.LeaderNotAvailable), true},
		{"leader moved", shard(kerr.NotLeaderForPartition), true},
		{"topic not known yet", fmt.Errorf("wrapped: %w", kerr.UnknownTopicOrPartition), true},
		{"broker unreachable", shard(errors.New("dial tcp: connection refused")), true},
		{"not authorized", &kadm.AuthError{Err: kerr.TopicAuthorizationFailed}, false},
		{"invalid request", shard(kerr.InvalidRequest), false},
		{"cancelled", context.Canceled, false},
		{"deadline", fmt.Errorf("list: %w", context.DeadlineExceeded), false},
	}
	for _, tt := range tests {
		if got := retriableListErr(tt.err); got != tt.want {
			t.Errorf("%s: retriableListErr(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}
