package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
	"github.com/poste-io/poste/pkg/streams"
)

// These tests run applications against an in-process broker: persistent stores with their
// iqCheckpoints, interactive queries and the key → instance lookup.

const iqClicksTopic = "clicks"

var iqBase = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// iqClicksTopology counts clicks per user three ways, all in one sub-topology: in total
// ("counts"), per minute ("per-minute", a window store) and per session ("sessions").
func iqClicksTopology() *streams.Topology {
	t := streams.NewTopology()
	g := streams.From(t, iqClicksTopic, streams.String(), streams.String()).GroupByKey()
	g.Count("counts")
	streams.WindowedCount(g.WindowedBy(streams.TumblingWindows(time.Minute, time.Hour)), "per-minute")
	streams.SessionCount(g.SessionBy(streams.SessionWindows{Gap: 5 * time.Minute, Grace: time.Hour}), "sessions")
	return t
}

// iqRestores sums what OnRestored reports.
type iqRestores struct {
	mu      sync.Mutex
	records map[string]int64 // by store
	wiped   int
	calls   int
}

func (r *iqRestores) listen(i streams.RestoreInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.records == nil {
		r.records = map[string]int64{}
	}
	r.records[i.Store] += i.Records
	r.calls++
	if i.Wiped {
		r.wiped++
	}
}

func (r *iqRestores) get() (map[string]int64, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int64{}
	for k, v := range r.records {
		out[k] = v
	}
	return out, r.wiped, r.calls
}

type iqRunning struct {
	app  *streams.App
	stop func()
}

func iqStart(t *testing.T, topo *streams.Topology, cfg streams.Config) iqRunning {
	t.Helper()
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = 100 * time.Millisecond
	}
	cfg.Logger = testkit.Logger()
	app, err := streams.New(topo, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("app %s: %v", cfg.ApplicationServer, err)
				}
			case <-time.After(30 * time.Second):
				t.Error("app did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return iqRunning{app, stop}
}

func iqBroker(t *testing.T, partitions int32) (string, *kgo.Client) {
	t.Helper()
	b := testkit.StartBroker(t, nil)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, iqClicksTopic); err != nil {
		t.Fatal(err)
	}
	return b.Addr, cl
}

func iqClick(t *testing.T, cl *kgo.Client, user string, at time.Time) *kgo.Record {
	t.Helper()
	r := &kgo.Record{Topic: iqClicksTopic, Key: []byte(user), Value: []byte("click"), Timestamp: at}
	if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return r
}

// iqEventually retries check until it returns nil or 30 s pass.
func iqEventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// iqAwaitCommitted waits until group has committed offset want on the clicks partition.
func iqAwaitCommitted(t *testing.T, cl *kgo.Client, group string, want int64) {
	t.Helper()
	adm := kadm.NewClient(cl)
	iqEventually(t, "committed offsets", func() error {
		offs, err := adm.FetchOffsets(context.Background(), group)
		if err != nil {
			return err
		}
		if o, ok := offs.Lookup(iqClicksTopic, 0); !ok || o.At != want {
			return fmt.Errorf("committed %+v, want %d", o, want)
		}
		return nil
	})
}

// iqAwaitCounts waits until the app's "counts" store, read by interactive queries, is want.
func iqAwaitCounts(t *testing.T, app *streams.App, want map[string]int64) {
	t.Helper()
	iqEventually(t, "counts", func() error {
		s, err := streams.QueryKeyValueStore[string, int64](app, "counts")
		if err != nil {
			return err
		}
		all, err := s.All()
		if err != nil {
			return err
		}
		got := map[string]int64{}
		for _, kv := range all {
			got[kv.Key] = kv.Value
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}

func TestStreamsInteractiveQueriesOnPersistentStores(t *testing.T) {
	addr, cl := iqBroker(t, 2)
	rs := &iqRestores{}
	r := iqStart(t, iqClicksTopology(), streams.Config{ApplicationID: "iq", Brokers: []string{addr},
		StateDir: t.TempDir(), DefaultStoreType: streams.Persistent, OnRestored: rs.listen})
	// ann: two sessions (0-2 min, 10 min); bob: one iqClick; cid: three in one minute.
	for _, c := range []struct {
		user string
		at   time.Duration
	}{{"ann", 0}, {"ann", 2 * time.Minute}, {"ann", 10 * time.Minute}, {"bob", time.Minute}, {"cid", 30 * time.Second}, {"cid", 40 * time.Second}, {"cid", 50 * time.Second}} {
		iqClick(t, cl, c.user, iqBase.Add(c.at))
	}
	iqAwaitCounts(t, r.app, map[string]int64{"ann": 3, "bob": 1, "cid": 3})

	kv, err := streams.QueryKeyValueStore[string, int64](r.app, "counts")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok, err := kv.Get("cid"); v != 3 || !ok || err != nil {
		t.Errorf("Get(cid) = %d %v %v", v, ok, err)
	}
	if _, ok, err := kv.Get("dan"); ok || err != nil {
		t.Errorf("Get(dan) found=%v err=%v", ok, err)
	}
	rng, err := kv.Range("b", "c~")
	if err != nil || fmt.Sprint(rng) != "[{bob 1} {cid 3}]" {
		t.Errorf("Range(b, c~) = %v, %v", rng, err)
	}
	if n, err := kv.Len(); n != 3 || err != nil {
		t.Errorf("Len = %d, %v", n, err)
	}

	ws, err := streams.QueryWindowStore[string, int64](r.app, "per-minute")
	if err != nil {
		t.Fatal(err)
	}
	wins, err := ws.FetchRange("ann", iqBase, iqBase.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range wins {
		got = append(got, fmt.Sprintf("%s@%v=%d", w.Key.Key, w.Key.Start.Sub(iqBase), w.Value))
	}
	if fmt.Sprint(got) != "[ann@0s=1 ann@2m0s=1 ann@10m0s=1]" {
		t.Errorf("FetchRange(ann) = %v", got)
	}
	if v, ok, err := ws.Fetch("cid", iqBase); v != 3 || !ok || err != nil {
		t.Errorf("Fetch(cid, 0) = %d %v %v", v, ok, err)
	}

	ss, err := streams.QuerySessionStore[string, int64](r.app, "sessions")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ss.Fetch("ann")
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, s := range sess {
		got = append(got, fmt.Sprintf("[%v,%v]=%d", s.Key.Start.Sub(iqBase), s.Key.End.Sub(iqBase), s.Value))
	}
	if fmt.Sprint(got) != "[[0s,2m0s]=2 [10m0s,10m0s]=1]" {
		t.Errorf("sessions of ann = %v", got)
	}

	if _, err := streams.QueryWindowStore[string, int64](r.app, "counts"); !errors.Is(err, streams.ErrUnknownStore) {
		t.Errorf("window query of a key-value store: %v", err)
	}
	if _, err := streams.QueryKeyValueStore[string, int64](r.app, "nope"); !errors.Is(err, streams.ErrUnknownStore) {
		t.Errorf("query of an unknown store: %v", err)
	}
	r.stop()
	if _, _, err := kv.Get("cid"); !errors.Is(err, streams.ErrStoreNotAvailable) {
		t.Errorf("query after stop: %v, want ErrStoreNotAvailable", err)
	}
}

func iqCheckpoints(t *testing.T, dir, app string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, app, "*", ".checkpoint"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStreamsCheckpointRestoresOnlyTheTail(t *testing.T) {
	addr, cl := iqBroker(t, 2)
	topo := func() *streams.Topology {
		tp := streams.NewTopology()
		streams.From(tp, iqClicksTopic, streams.String(), streams.String()).GroupByKey().Count("counts")
		tp.SetStoreType("counts", streams.Persistent)
		tp.SetStoreCaching("counts", false) // one changelog record per click, counted below
		return tp
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	want := map[string]int64{}
	send := func(n int, prefix string) {
		for i := range n {
			u := fmt.Sprintf("%s%d", prefix, i%5)
			iqClick(t, cl, u, iqBase.Add(time.Duration(i)*time.Second))
			want[u]++
		}
	}

	// A processes 20 clicks and stops cleanly: its stores are checkpointed at their ends.
	restA := &iqRestores{}
	a := iqStart(t, topo(), streams.Config{ApplicationID: "ck", Brokers: []string{addr}, StateDir: dirA, OnRestored: restA.listen})
	send(20, "u")
	iqAwaitCounts(t, a.app, want)
	a.stop()
	if n := len(iqCheckpoints(t, dirA, "ck")); n != 2 {
		_, _, calls := restA.get()
		t.Fatalf("%d checkpoint files after a clean stop, want one per task (2); iqRestores reported: %d", n, calls)
	}

	// B, elsewhere, iqRestores everything (20 changelog records) and adds 6 more clicks.
	restB := &iqRestores{}
	b := iqStart(t, topo(), streams.Config{ApplicationID: "ck", Brokers: []string{addr}, StateDir: dirB, OnRestored: restB.listen})
	send(6, "v")
	iqAwaitCounts(t, b.app, want)
	b.stop()
	if rec, wiped, _ := restB.get(); rec["counts"] != 20 || wiped != 2 {
		t.Errorf("B restored %v (wiped %d), want all 20 records into fresh stores", rec, wiped)
	}

	// A again: only B's 6 changelog records follow its iqCheckpoints.
	restA2 := &iqRestores{}
	a2 := iqStart(t, topo(), streams.Config{ApplicationID: "ck", Brokers: []string{addr}, StateDir: dirA, OnRestored: restA2.listen})
	iqAwaitCounts(t, a2.app, want)
	rec, wiped, calls := restA2.get()
	if rec["counts"] != 6 || wiped != 0 || calls != 2 {
		t.Errorf("A restored %v (wiped %d, %d partitions), want only the 6-record tail", rec, wiped, calls)
	}
	send(3, "w")
	iqAwaitCounts(t, a2.app, want)
}

// iqPutZombie writes a key into a stopped instance's persistent store, as the uncommitted
// writes of a transaction open at a crash would leave it.
func iqPutZombie(t *testing.T, dir string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: iqQuietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("zombie"), []byte{0, 0, 0, 0, 0, 0, 0, 9}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

type iqQuietPebble struct{}

func (iqQuietPebble) Infof(string, ...any)           {}
func (iqQuietPebble) Errorf(string, ...any)          {}
func (iqQuietPebble) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }

func TestStreamsExactlyOnceWithoutCheckpointWipesAndRestoresFully(t *testing.T) {
	addr, cl := iqBroker(t, 1)
	topo := func() *streams.Topology {
		tp := streams.NewTopology()
		streams.From(tp, iqClicksTopic, streams.String(), streams.String()).GroupByKey().Count("counts")
		tp.SetStoreCaching("counts", false) // one changelog record per click, counted below
		return tp
	}
	dir := t.TempDir()
	cfg := streams.Config{ApplicationID: "eos", Brokers: []string{addr}, StateDir: dir,
		ProcessingGuarantee: streams.ExactlyOnceV2, DefaultStoreType: streams.Persistent,
		CommitInterval: 100 * time.Millisecond}
	want := map[string]int64{}
	for i := range 10 {
		u := fmt.Sprint("u", i%3)
		iqClick(t, cl, u, iqBase)
		want[u]++
	}
	a := iqStart(t, topo(), cfg)
	iqAwaitCounts(t, a.app, want)
	if ck := iqCheckpoints(t, dir, "eos"); len(ck) != 0 {
		t.Errorf("checkpoint %v present while running under exactly_once_v2", ck)
	}
	// Queries see writes before their transaction commits; a stop that interrupts that commit
	// aborts it and rightly leaves no checkpoint. Wait until the input offsets are committed,
	// and a few commit intervals more, so that the stores hold only committed state.
	iqAwaitCommitted(t, cl, "eos", 10)
	time.Sleep(3 * cfg.CommitInterval)
	a.stop()
	ck := iqCheckpoints(t, dir, "eos")
	if len(ck) != 1 {
		t.Fatalf("iqCheckpoints after a clean stop: %v", ck)
	}

	// A clean restart iqRestores nothing.
	rest := &iqRestores{}
	cfg.OnRestored = rest.listen
	b := iqStart(t, topo(), cfg)
	iqAwaitCounts(t, b.app, want)
	b.stop()
	if rec, wiped, calls := rest.get(); rec["counts"] != 0 || wiped != 0 || calls != 1 {
		t.Errorf("clean restart restored %v (wiped %d, calls %d), want nothing", rec, wiped, calls)
	}

	// A crash leaves no checkpoint and possibly uncommitted writes in the store.
	if err := os.Remove(ck[0]); err != nil {
		t.Fatal(err)
	}
	iqPutZombie(t, filepath.Join(filepath.Dir(ck[0]), "counts"))
	rest = &iqRestores{}
	cfg.OnRestored = rest.listen
	c := iqStart(t, topo(), cfg)
	iqAwaitCounts(t, c.app, want) // the zombie key is gone: All would show it
	if rec, wiped, _ := rest.get(); rec["counts"] != 10 || wiped != 1 {
		t.Errorf("after a crash restored %v (wiped %d), want the whole changelog (10) into a wiped store", rec, wiped)
	}
}

func TestStreamsMetadataForKeyNamesTheOwner(t *testing.T) {
	const parts = 4
	addr, cl := iqBroker(t, parts)
	topo := func() *streams.Topology {
		tp := streams.NewTopology()
		streams.From(tp, iqClicksTopic, streams.String(), streams.String()).GroupByKey().Count("counts")
		return tp
	}
	apps := map[string]*streams.App{}
	for _, host := range []string{"a.example:7001", "b.example:7002"} {
		apps[host] = iqStart(t, topo(), streams.Config{ApplicationID: "meta", Brokers: []string{addr},
			StateDir: t.TempDir(), ApplicationServer: host}).app
	}
	// Both instances see the same two-instance assignment.
	iqEventually(t, "assignment", func() error {
		var views []string
		for _, app := range apps {
			md := app.AllMetadata()
			if len(md) != 2 || len(md[0].Tasks)+len(md[1].Tasks) != parts {
				return fmt.Errorf("metadata %v", md)
			}
			views = append(views, fmt.Sprint(md))
		}
		if views[0] != views[1] {
			return fmt.Errorf("instances disagree: %v", views)
		}
		return nil
	})
	// One key per partition, sent with the producer's default partitioner.
	keys := map[int32]string{}
	for i := 0; len(keys) < parts; i++ {
		k := fmt.Sprint("user-", i)
		r := iqClick(t, cl, k, iqBase)
		if _, ok := keys[r.Partition]; !ok {
			keys[r.Partition] = k
		}
	}
	for p, k := range keys {
		iqEventually(t, "owner of "+k, func() error {
			var owner string
			for _, app := range apps {
				md, err := streams.MetadataForKey(app, "counts", k)
				if err != nil {
					return err
				}
				if md.Partition != p || md.Task.Partition != p {
					return fmt.Errorf("key %s: partition %d, the producer chose %d", k, md.Partition, p)
				}
				if owner != "" && md.Host != owner {
					return fmt.Errorf("key %s: instances disagree (%s, %s)", k, owner, md.Host)
				}
				owner = md.Host
			}
			for host, app := range apps {
				s, err := streams.QueryKeyValueStore[string, int64](app, "counts")
				if err != nil {
					return err
				}
				_, found, err := s.Get(k)
				if err != nil && !errors.Is(err, streams.ErrStoreNotAvailable) {
					return err
				}
				if found != (host == owner) {
					return fmt.Errorf("key %s: owner %s, but %s has it: %v", k, owner, host, found)
				}
			}
			return nil
		})
	}
}

// TestStreamsExactlyOnceCommitsAfterIdleIntervals: under exactly_once_v2 a commit interval in
// which nothing was consumed or written ends no transaction (as in Kafka Streams); the
// transaction left open through idle intervals must carry the next record's writes and
// offsets to a normal commit, round after round.
func TestStreamsExactlyOnceCommitsAfterIdleIntervals(t *testing.T) {
	addr, cl := iqBroker(t, 1)
	tp := streams.NewTopology()
	streams.From(tp, iqClicksTopic, streams.String(), streams.String()).GroupByKey().Count("counts")
	cfg := streams.Config{ApplicationID: "idle", Brokers: []string{addr}, StateDir: t.TempDir(),
		ProcessingGuarantee: streams.ExactlyOnceV2, CommitInterval: 20 * time.Millisecond}
	a := iqStart(t, tp, cfg)
	defer a.stop()
	for round := 1; round <= 3; round++ {
		time.Sleep(10 * cfg.CommitInterval) // idle intervals
		iqClick(t, cl, "u", iqBase)
		iqAwaitCounts(t, a.app, map[string]int64{"u": int64(round)})
		iqAwaitCommitted(t, cl, "idle", int64(round))
	}
}
