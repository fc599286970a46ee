package metadata

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// testQuorum runs metadata stores of one cluster in-process on loopback.
// Each node keeps its directory and address across restarts.
type testQuorum struct {
	t      *testing.T
	tmpl   StoreConfig
	voters []Voter
	dirs   map[int32]string
	addrs  map[int32]string

	mu     sync.Mutex
	lns    map[int32]net.Listener // reserved for a node's first start
	stores map[int32]*Store
}

// newTestQuorum reserves addresses for voters 1..n and observers n+1..n+obs.
func newTestQuorum(t *testing.T, n, obs int, tmpl StoreConfig) *testQuorum {
	t.Helper()
	q := &testQuorum{t: t, tmpl: tmpl, dirs: map[int32]string{}, addrs: map[int32]string{},
		lns: map[int32]net.Listener{}, stores: map[int32]*Store{}}
	if q.tmpl.HeartbeatTimeout == 0 {
		q.tmpl.HeartbeatTimeout = 200 * time.Millisecond
		q.tmpl.ElectionTimeout = 400 * time.Millisecond
	}
	if q.tmpl.StartTimeout == 0 {
		q.tmpl.StartTimeout = 10 * time.Second
	}
	for i := range n + obs {
		id := int32(i + 1)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		q.lns[id], q.addrs[id], q.dirs[id] = ln, ln.Addr().String(), t.TempDir()
		if i < n {
			q.voters = append(q.voters, Voter{ID: id, Addr: ln.Addr().String()})
		}
	}
	t.Cleanup(q.closeAll)
	return q
}

// open starts node id and returns its store or Open's error.
func (q *testQuorum) open(id int32) (*Store, error) { return q.openWith(id, nil) }

// openWith is open with the node's configuration adjusted by adjust.
func (q *testQuorum) openWith(id int32, adjust func(*StoreConfig)) (*Store, error) {
	q.mu.Lock()
	ln := q.lns[id]
	delete(q.lns, id)
	q.mu.Unlock()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", q.addrs[id]); err != nil {
			return nil, err
		}
	}
	raftLn, other := SplitListener(ln)
	go func() { // the Kafka side of the controller listener is unused here
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cfg := q.tmpl
	cfg.Dir, cfg.NodeID, cfg.Voters, cfg.Listener = q.dirs[id], id, q.voters, raftLn
	cfg.Observer = int(id) > len(q.voters)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if adjust != nil {
		adjust(&cfg)
	}
	s, err := Open(cfg)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.stores[id] = s
	q.mu.Unlock()
	return s, nil
}

// openAll starts the given nodes concurrently (a voter's Open needs a quorum).
func (q *testQuorum) openAll(ids ...int32) {
	q.t.Helper()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = q.open(id) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		q.t.Fatal(err)
	}
}

func (q *testQuorum) store(id int32) *Store {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.stores[id]
}

func (q *testQuorum) running() []*Store {
	q.mu.Lock()
	defer q.mu.Unlock()
	var ss []*Store
	for _, s := range q.stores {
		ss = append(ss, s)
	}
	return ss
}

func (q *testQuorum) stop(id int32) {
	q.t.Helper()
	q.mu.Lock()
	s := q.stores[id]
	delete(q.stores, id)
	q.mu.Unlock()
	if err := s.Close(); err != nil {
		q.t.Fatalf("close node %d: %v", id, err)
	}
}

func (q *testQuorum) closeAll() {
	for _, s := range q.running() {
		s.Close()
	}
}

// leader waits until one running node leads with a complete image.
func (q *testQuorum) leader() *Store {
	q.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range q.running() {
			if _, ok := s.LeaderTerm(); ok {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	q.t.Fatal("no leader within 10s")
	return nil
}

// converge waits until every running node has delivered index to its
// watchers and checks that all images are identical.
func (q *testQuorum) converge(index uint64) string {
	q.t.Helper()
	var want string
	var wantID int32
	for _, s := range q.running() {
		if err := s.WaitDelivered(testCtx(q.t), index); err != nil {
			q.t.Fatalf("node %d did not reach index %d (at %d): %v", s.NodeID(), index, s.Image().AppliedIndex(), err)
		}
		got := dump(s.Image())
		if want == "" {
			want, wantID = got, s.NodeID()
		} else if got != want {
			q.t.Fatalf("node %d image:\n%s\nnode %d image:\n%s", s.NodeID(), got, wantID, want)
		}
	}
	return want
}

// recorder collects the images a watcher is given.
type recorder struct {
	mu   sync.Mutex
	imgs []*Image
}

func (r *recorder) watch(prev, next *Image) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if prev != nil && (len(r.imgs) == 0 || r.imgs[len(r.imgs)-1] != prev) {
		panic("watch chain broken")
	}
	r.imgs = append(r.imgs, next)
}

// indexes lists the applied indexes seen after the first (registration) call.
func (r *recorder) indexes() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []uint64
	for _, img := range r.imgs[1:] {
		out = append(out, img.AppliedIndex())
	}
	return out
}

func topicRec(i int) TopicRecord {
	return TopicRecord{Name: fmt.Sprintf("t%03d", i), ID: [16]byte{0xC0, byte(i >> 8), byte(i)}}
}

func TestQuorumReplicatesInOrder(t *testing.T) {
	q := newTestQuorum(t, 3, 0, StoreConfig{ClusterID: testClusterID})
	q.openAll(1, 2, 3)
	leader := q.leader()

	recs := map[int32]*recorder{}
	for _, s := range q.running() {
		if s.Image().ClusterID() != testClusterID {
			t.Fatalf("node %d: cluster id %q after Open", s.NodeID(), s.Image().ClusterID())
		}
		recs[s.NodeID()] = &recorder{}
		s.Watch(recs[s.NodeID()].watch)
	}
	var last *Image
	for i := range 10 {
		last = mustApply(t, leader, topicRec(i))
	}
	q.converge(last.AppliedIndex())
	want := recs[leader.NodeID()].indexes()
	if len(want) != 10 {
		t.Fatalf("leader watcher saw %d images, want 10", len(want))
	}
	for id, r := range recs {
		if got := r.indexes(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("node %d watcher saw indexes %v, leader's %v", id, got, want)
		}
	}

	for _, s := range q.running() {
		if s == leader {
			continue
		}
		if _, err := s.Apply(testCtx(t), topicRec(100)); !errors.Is(err, ErrNotLeader) {
			t.Fatalf("Apply on follower %d: %v, want ErrNotLeader", s.NodeID(), err)
		}
		if _, ok := s.LeaderTerm(); ok {
			t.Fatalf("follower %d claims leadership", s.NodeID())
		}
		if id, ok := s.LeaderID(); !ok || id != leader.NodeID() {
			t.Fatalf("follower %d sees leader %d,%v want %d", s.NodeID(), id, ok, leader.NodeID())
		}
		if err := s.TransferLeadership(testCtx(t)); err != nil {
			t.Fatalf("TransferLeadership on a follower: %v", err)
		}
	}

	qi := leader.Quorum()
	if qi.LeaderID != leader.NodeID() || len(qi.Voters) != 3 || len(qi.Observers) != 0 ||
		qi.CommitIndex < last.AppliedIndex() || qi.AppliedIndex < last.AppliedIndex() || qi.Term == 0 {
		t.Fatalf("Quorum() = %+v", qi)
	}
	for _, v := range qi.Voters {
		if q.addrs[v.ID] != v.Addr {
			t.Fatalf("Quorum voter %+v, want address %s", v, q.addrs[v.ID])
		}
	}

	// Controlled shutdown of the active controller: leadership moves away.
	term, _ := leader.LeaderTerm()
	if err := leader.TransferLeadership(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	next := q.leader()
	if next == leader {
		t.Fatal("leadership did not move")
	}
	if nt, _ := next.LeaderTerm(); nt <= term {
		t.Fatalf("new leader term %d, old %d", nt, term)
	}
	img := mustApply(t, next, topicRec(11))
	q.converge(img.AppliedIndex())

	// A voter configured for another cluster refuses to open on this log.
	q.stop(leader.NodeID())
	_, err := q.openWith(leader.NodeID(), func(c *StoreConfig) { c.ClusterID = "BBBBBBBBBBBBBBBBBBBBBB" })
	if !errors.Is(err, ErrClusterIDMismatch) {
		t.Fatalf("reopen with another cluster id: %v, want ErrClusterIDMismatch", err)
	}
}

func TestQuorumFailoverAndObserver(t *testing.T) {
	q := newTestQuorum(t, 3, 1, StoreConfig{})
	q.openAll(1, 2, 3)
	leader := q.leader()
	mustApply(t, leader, topicRec(0))

	obs, err := q.open(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.Apply(testCtx(t), topicRec(1)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply on an unadded observer: %v", err)
	}
	for _, s := range q.running() {
		if s != leader && s != obs {
			if err := s.AddObserver(testCtx(t), 4, q.addrs[4]); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("AddObserver on a follower: %v", err)
			}
		}
	}
	if err := leader.AddObserver(testCtx(t), 2, "127.0.0.1:1"); !errors.Is(err, ErrInvalidVoters) {
		t.Fatalf("AddObserver of a voter: %v", err)
	}
	for range 2 { // idempotent
		if err := leader.AddObserver(testCtx(t), 4, q.addrs[4]); err != nil {
			t.Fatal(err)
		}
	}
	if err := obs.WaitCaughtUp(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if obs.Image().Topic("t000") == nil || obs.Image().ClusterID() != leader.Image().ClusterID() {
		t.Fatalf("observer after catching up: %s", dump(obs.Image()))
	}
	if qi := leader.Quorum(); len(qi.Observers) != 1 || qi.Observers[0] != (VoterInfo{ID: 4, Addr: q.addrs[4]}) || len(qi.Voters) != 3 {
		t.Fatalf("Quorum() = %+v", qi)
	}

	// The observer must never lead, whatever happens to the voters.
	stopWatch := make(chan struct{})
	observerLed := make(chan bool, 1)
	go func() {
		led := false
		for {
			select {
			case <-stopWatch:
				observerLed <- led
				return
			case <-time.After(5 * time.Millisecond):
				if obs.IsLeader() {
					led = true
				}
			}
		}
	}()

	// Kill the leader: a new one is elected among the remaining voters.
	oldID := leader.NodeID()
	mustApply(t, leader, topicRec(1))
	killed := time.Now()
	q.stop(oldID)
	leader = q.leader()
	if d := time.Since(killed); d > 5*time.Second {
		t.Fatalf("new leader after %v", d)
	}
	if leader.NodeID() == 4 {
		t.Fatal("the observer became leader")
	}
	// More entries than one AppendEntries carries, so that the restarted
	// node below learns the commit index in steps and Open has to wait for
	// the leader's.
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for i := range 15 {
				mustApply(t, leader, topicRec(10+w*15+i))
			}
		})
	}
	wg.Wait()
	last := mustApply(t, leader, topicRec(5))
	q.converge(last.AppliedIndex()) // the observer too

	// The old leader restarts on its directory and catches up: Open returns
	// with an image that already includes what it missed.
	old, err := q.open(oldID)
	if err != nil {
		t.Fatal(err)
	}
	if old.Image().AppliedIndex() < last.AppliedIndex() || old.Image().Topic("t005") == nil {
		t.Fatalf("restarted node opened at %d, want >= %d", old.Image().AppliedIndex(), last.AppliedIndex())
	}
	last = mustApply(t, q.leader(), topicRec(6))
	want := q.converge(last.AppliedIndex())

	close(stopWatch)
	if <-observerLed {
		t.Fatal("the observer was leader at some point")
	}
	if err := obs.TransferLeadership(testCtx(t)); err != nil {
		t.Fatal(err)
	}

	// The observer restarts and rejoins without being added again.
	q.stop(4)
	obs, err = q.open(4)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.WaitCaughtUp(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got := dump(obs.Image()); got != want {
		t.Fatalf("restarted observer:\n%s\nwant:\n%s", got, want)
	}
}

func TestQuorumSnapshotCatchUp(t *testing.T) {
	q := newTestQuorum(t, 3, 0, StoreConfig{SnapshotThreshold: 4})
	q.openAll(1, 2, 3)
	leader := q.leader()
	mustApply(t, leader, topicRec(0))
	var lagger int32
	for _, s := range q.running() {
		if s != leader {
			lagger = s.NodeID()
		}
	}
	q.stop(lagger)
	var last *Image
	for i := 1; i <= 20; i++ {
		last = mustApply(t, leader, topicRec(i))
	}
	// Compact the leader's log below what the lagging node has: it can only
	// catch up from a snapshot now.
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	s, err := q.open(lagger)
	if err != nil {
		t.Fatal(err)
	}
	if s.raft.Stats()["last_snapshot_index"] == "0" {
		t.Fatal("the lagging node caught up without installing a snapshot")
	}
	if s.Image().AppliedIndex() < last.AppliedIndex() {
		t.Fatalf("Open returned at %d, want >= %d", s.Image().AppliedIndex(), last.AppliedIndex())
	}
	// Entries after the snapshot still replicate and fold on top of it.
	r := &recorder{}
	s.Watch(r.watch)
	last = mustApply(t, leader, topicRec(21))
	q.converge(last.AppliedIndex())
	if got := r.indexes(); len(got) != 1 || got[0] != last.AppliedIndex() {
		t.Fatalf("watcher after snapshot install saw %v", got)
	}
}

func TestQuorumWithoutMajority(t *testing.T) {
	q := newTestQuorum(t, 3, 0, StoreConfig{})
	q.openAll(1, 2, 3)
	leader := q.leader()
	mustApply(t, leader, topicRec(0))
	var survivor *Store
	for _, s := range q.running() {
		if s != leader {
			survivor = s
		}
	}
	for _, s := range q.running() {
		if s != survivor {
			q.stop(s.NodeID())
		}
	}
	r := &recorder{}
	survivor.Watch(r.watch)
	before := survivor.Image()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := survivor.Apply(ctx, topicRec(1)); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ErrNotLeader) {
		t.Fatalf("Apply without a majority: %v, want a deadline or ErrNotLeader", err)
	}
	// Whether the survivor was still leader (its lease) or not, nothing may
	// have been published.
	time.Sleep(100 * time.Millisecond)
	if survivor.Image() != before || len(r.indexes()) != 0 {
		t.Fatal("an image was published without a majority")
	}
	// Close does not wait for the vanished peers.
	start := time.Now()
	q.stop(survivor.NodeID())
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

func TestQuorumOpenWithoutMajority(t *testing.T) {
	q := newTestQuorum(t, 3, 0, StoreConfig{StartTimeout: 1500 * time.Millisecond})
	// Free the other voters' ports so that dialing them is refused.
	q.lns[2].Close()
	q.lns[3].Close()
	start := time.Now()
	_, err := q.open(1)
	if !errors.Is(err, ErrNoQuorum) {
		t.Fatalf("Open: %v, want ErrNoQuorum", err)
	}
	t.Log(err)
	for _, v := range q.voters[1:] {
		if !strings.Contains(err.Error(), v.String()) {
			t.Fatalf("error does not name voter %v: %v", v, err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("failed Open took %v", d)
	}
	// The failed Open released its directory and its address.
	ln, err := net.Listen("tcp", q.addrs[1])
	if err != nil {
		t.Fatalf("address still in use: %v", err)
	}
	ln.Close()
}

func TestStoreConfigValidation(t *testing.T) {
	voters := []Voter{{1, "127.0.0.1:1"}, {2, "127.0.0.1:2"}}
	for _, tc := range []struct {
		name string
		cfg  StoreConfig
	}{
		{"observer without voters", StoreConfig{Observer: true}},
		{"voters without listener", StoreConfig{NodeID: 1, Voters: voters}},
		{"node not a voter", StoreConfig{NodeID: 3, Voters: voters, Listener: &nopListener{}}},
		{"voter as observer", StoreConfig{NodeID: 1, Voters: voters, Observer: true, Listener: &nopListener{}}},
		{"duplicate voter", StoreConfig{NodeID: 1, Voters: append(voters, Voter{1, "127.0.0.1:3"}), Listener: &nopListener{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Dir = t.TempDir()
			tc.cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			if _, err := Open(tc.cfg); !errors.Is(err, ErrInvalidVoters) {
				t.Fatalf("err %v, want ErrInvalidVoters", err)
			}
			if ln, ok := tc.cfg.Listener.(*nopListener); ok && !ln.closed {
				t.Fatal("the listener was not closed")
			}
		})
	}
}

type nopListener struct{ closed bool }

func (l *nopListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (l *nopListener) Close() error              { l.closed = true; return nil }
func (l *nopListener) Addr() net.Addr            { return raftAddr("127.0.0.1:0") }
