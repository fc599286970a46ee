package e2e

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/poste-io/poste/internal/testkit"
	"github.com/poste-io/poste/pkg/streams"
)

// sbEvents records what one instance reports about its restores and its standby stores.
type sbEvents struct {
	mu       sync.Mutex
	restores []streams.RestoreInfo
	standby  map[streams.TaskID]int64 // latest position of each standby task's store
}

func (e *sbEvents) restored(i streams.RestoreInfo) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.restores = append(e.restores, i)
}

func (e *sbEvents) updated(u streams.StandbyUpdate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.standby == nil {
		e.standby = map[streams.TaskID]int64{}
	}
	e.standby[u.Task] = u.Offset
}

func (e *sbEvents) position(id streams.TaskID) (int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	off, ok := e.standby[id]
	return off, ok
}

// restoreOf returns the last restore of task id's store that started from a standby.
func (e *sbEvents) restoreOf(id streams.TaskID) (streams.RestoreInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := len(e.restores) - 1; i >= 0; i-- {
		if r := e.restores[i]; r.Task == id && r.Standby {
			return r, true
		}
	}
	return streams.RestoreInfo{}, false
}

// sbAwaitCounts waits until the "counts" stores of apps, queried together, hold want.
func sbAwaitCounts(t *testing.T, want map[string]int64, apps ...*streams.App) {
	t.Helper()
	iqEventually(t, "counts", func() error {
		got := map[string]int64{}
		for _, app := range apps {
			s, err := streams.QueryKeyValueStore[string, int64](app, "counts")
			if err != nil {
				return err
			}
			all, err := s.All()
			if err != nil && !errors.Is(err, streams.ErrStoreNotAvailable) {
				return err
			}
			for _, kv := range all {
				if _, dup := got[kv.Key]; dup {
					return fmt.Errorf("key %s answered by two instances", kv.Key)
				}
				got[kv.Key] = kv.Value
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}

// TestStreamsStandbyTakesOverWithOnlyTheTail runs a count on two instances with
// num.standby.replicas=1, so each keeps a standby copy of the other's task. Once the
// standby of B's task has followed its changelog to the end, B stops: A must take the task
// over from its standby, restoring at most a few records rather than the whole changelog,
// and the counts must stay exact. In memory under at_least_once, and on Pebble under
// exactly_once_v2 (where the standby reads the changelog with read_committed).
func TestStreamsStandbyTakesOverWithOnlyTheTail(t *testing.T) {
	cases := []struct {
		name      string
		store     streams.StoreType
		guarantee string
	}{
		{"in-memory/at_least_once", streams.InMemory, streams.AtLeastOnce},
		{"persistent/exactly_once_v2", streams.Persistent, streams.ExactlyOnceV2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := testkit.StartBroker(t, map[string]string{"group.initial.rebalance.delay.ms": "0"})
			cl := client(t, b.Addr)
			adm := kadm.NewClient(cl)
			if _, err := adm.CreateTopic(ctxT(t), 2, 1, nil, iqClicksTopic); err != nil {
				t.Fatal(err)
			}
			topo := func() *streams.Topology {
				tp := streams.NewTopology()
				streams.From(tp, iqClicksTopic, streams.String(), streams.String()).GroupByKey().Count("counts")
				tp.SetStoreType("counts", c.store)
				return tp
			}
			const app = "sb"
			// No record cache: every click writes one changelog record at once, which the
			// offsets checked below count on.
			start := func(host string, ev *sbEvents) iqRunning {
				return iqStart(t, topo(), streams.Config{ApplicationID: app, Brokers: []string{b.Addr},
					ApplicationServer: host, StateDir: t.TempDir(), ProcessingGuarantee: c.guarantee,
					NumStandbyReplicas: 1, CacheMaxBytes: -1, OnRestored: ev.restored, OnStandbyUpdate: ev.updated})
			}
			evA, evB := &sbEvents{}, &sbEvents{}
			a := start("a.example:1", evA)
			bb := start("b.example:2", evB)

			// Each instance runs one task and keeps the other's as a standby.
			var bTask streams.TaskID
			iqEventually(t, "assignment", func() error {
				md := a.app.AllMetadata()
				if len(md) != 2 || len(md[0].Tasks) != 1 || len(md[1].Tasks) != 1 ||
					fmt.Sprint(md[0].StandbyTasks) != fmt.Sprint(md[1].Tasks) ||
					fmt.Sprint(md[1].StandbyTasks) != fmt.Sprint(md[0].Tasks) {
					return fmt.Errorf("metadata %+v", md)
				}
				if fmt.Sprint(bb.app.AllMetadata()) != fmt.Sprint(md) {
					return fmt.Errorf("instances disagree: %+v and %+v", md, bb.app.AllMetadata())
				}
				bTask = md[1].Tasks[0]
				return nil
			})

			want := map[string]int64{}
			perPartition := map[int32]int64{}
			send := func(n int, prefix string) {
				for i := range n {
					u := fmt.Sprintf("%s%d", prefix, i%40)
					r := iqClick(t, cl, u, iqBase.Add(time.Duration(i)*time.Second))
					want[u]++
					perPartition[r.Partition]++
				}
			}
			send(150, "u")
			sbAwaitCounts(t, want, a.app, bb.app)
			if perPartition[bTask.Partition] < 20 {
				t.Fatalf("B's partition got only %d clicks: %v", perPartition[bTask.Partition], perPartition)
			}

			// A's standby copy of B's task is not queryable; the key's metadata names A as
			// its standby host.
			var bKey string
			for u := range want {
				md, err := streams.MetadataForKey(a.app, "counts", u)
				if err != nil {
					t.Fatal(err)
				}
				if md.Task == bTask {
					bKey = u
					if md.Host != "b.example:2" || fmt.Sprint(md.StandbyHosts) != "[a.example:1]" {
						t.Errorf("metadata of %s: %+v", u, md)
					}
				}
			}
			s, err := streams.QueryKeyValueStore[string, int64](a.app, "counts")
			if err != nil {
				t.Fatal(err)
			}
			if _, found, err := s.Get(bKey); found || err != nil {
				t.Errorf("A answered %s from its standby: found=%v err=%v", bKey, found, err)
			}

			// Wait until A's standby reached the end of B's changelog partition: one record
			// per click (plus markers under exactly_once_v2).
			changelog := app + "-counts-changelog"
			iqEventually(t, "standby caught up", func() error {
				ends, err := adm.ListCommittedOffsets(ctxT(t), changelog)
				if err != nil {
					return err
				}
				end, _ := ends.Lookup(changelog, bTask.Partition)
				pos, ok := evA.position(bTask)
				if end.Offset < perPartition[bTask.Partition] || !ok || pos < end.Offset {
					return fmt.Errorf("changelog end %d (%d clicks), standby at %d (%v)", end.Offset, perPartition[bTask.Partition], pos, ok)
				}
				return nil
			})

			bb.stop()
			iqEventually(t, "takeover", func() error {
				if md := a.app.AllMetadata(); len(md) != 1 || len(md[0].Tasks) != 2 || len(md[0].StandbyTasks) != 0 {
					return fmt.Errorf("metadata %+v", md)
				}
				if _, ok := evA.restoreOf(bTask); !ok {
					return errors.New("no restore from the standby yet")
				}
				return nil
			})
			r, _ := evA.restoreOf(bTask)
			if r.Records > 5 || r.Wiped || r.From < perPartition[bTask.Partition] {
				t.Errorf("takeover restored %+v: want at most a few records past the standby's %d", r, perPartition[bTask.Partition])
			}
			sbAwaitCounts(t, want, a.app)
			send(40, "v")
			sbAwaitCounts(t, want, a.app)
		})
	}
}
