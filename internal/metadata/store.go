package metadata

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// StoreConfig configures Open.
type StoreConfig struct {
	// Dir holds the raft log (raft.db) and the snapshots (snapshots/).
	Dir string
	// NodeID is this node's id, also its raft server id (in decimal).
	NodeID int32
	// Logger receives raft warnings and errors; nil means slog.Default().
	Logger *slog.Logger
	// ClusterID, if set, is written by the first leader of a new quorum; a
	// different stored id fails Open with ErrClusterIDMismatch when the log
	// already holds it, and is logged as an error when learned later. Empty
	// means a random id and no check.
	ClusterID string
	// SnapshotThreshold is the number of log entries between snapshots;
	// 0 means 1024.
	SnapshotThreshold uint64
	// Voters lists the controller quorum (controller.quorum.voters): id and
	// the host:port of its controller listener. Empty means a single voter
	// (this node) over an in-memory transport.
	Voters []Voter
	// Listener receives this node's raft connections (the raft side of
	// SplitListener); required when Voters is set. The store closes it on
	// Close, also when Open fails.
	Listener net.Listener
	// Observer makes this node a raft non-voter (process.roles=broker): it
	// never votes or leads and is added by the leader with AddObserver.
	// Requires Voters, which must not list NodeID.
	Observer bool
	// HeartbeatTimeout and ElectionTimeout tune a multi-node quorum; zero
	// means 500ms and 1s, suited to a LAN. The leader lease is 500ms or the
	// heartbeat timeout if shorter.
	HeartbeatTimeout, ElectionTimeout time.Duration
	// StartTimeout bounds how long Open waits for a leader and for this node
	// to catch up; 0 means 30s.
	StartTimeout time.Duration
}

// QuorumInfo is a point-in-time view of the metadata quorum from this node.
type QuorumInfo struct {
	LeaderID     int32 // -1 if no leader is known
	Term         uint64
	CommitIndex  uint64 // highest raft index this node knows to be committed
	AppliedIndex uint64 // highest raft index this node has applied
	Voters       []VoterInfo
	Observers    []VoterInfo
}

// VoterInfo is one member of the raft configuration. Addr is empty for the
// in-memory single-voter quorum.
type VoterInfo struct {
	ID   int32
	Addr string
}

// Store is the replicated metadata log of this node and the latest Image
// folded from it.
//
// It runs hashicorp/raft over a bbolt log and stable store and a file
// snapshot store. With no Voters configured the quorum is this node alone,
// over an in-memory transport; otherwise the voters talk over TCP (see
// SplitListener) and a broker-only node follows as a non-voter. The first
// Open of a directory on a voter bootstraps the configured voters (every
// voter bootstraps the same configuration); later Opens replay the directory.
// Whichever node becomes leader writes the cluster id if the log has none.
//
// Invariants:
//   - Image() only moves forward: every published image folds the committed
//     entries in log order, one new image per successfully applied entry (an
//     entry that does not fold is rejected and publishes nothing); a snapshot
//     installed from the leader publishes the image it holds. This holds on
//     leaders, followers and observers alike.
//   - Watch callbacks see the published images in the same order, one call per
//     image, from a single notifier goroutine.
//   - LeaderTerm reports leadership only once this node, as leader, has applied
//     every entry committed before its term, so a caller that acts on the
//     image then sees all earlier decisions.
//
// All methods are safe for concurrent use.
type Store struct {
	cfg    StoreConfig
	log    *slog.Logger
	raft   *raft.Raft
	bolt   *raftboltdb.BoltStore
	trans  *raft.InmemTransport // single voter only
	net    *commitTransport     // multi-node only
	stream *streamLayer         // multi-node only

	image atomic.Pointer[Image]
	// fsmIndex is the raft index of the last command the FSM processed or of
	// the snapshot it restored; with the log it tells whether every committed
	// command has reached the image.
	fsmIndex atomic.Uint64
	// readyTerm is the term in which this node, as leader, has applied every
	// entry committed before it.
	readyTerm atomic.Uint64

	ctx         context.Context // cancelled by Close; bounds the leadership watcher
	cancel      context.CancelFunc
	watcherDone chan struct{} // nil until raft runs

	wake         chan struct{} // cap 1: queue has events
	notifierDone chan struct{}

	mu struct {
		sync.Mutex
		queue     []notifyEvent
		closed    bool          // no more events are accepted
		delivered uint64        // AppliedIndex of the last image every watcher saw
		progress  chan struct{} // closed and replaced whenever delivered moves
	}

	closeOnce sync.Once
	closeErr  error
}

// notifyEvent is a published image or a watcher registration, queued in
// publication order for the notifier goroutine.
type notifyEvent struct {
	img   *Image
	watch func(prev, next *Image)
}

const (
	defaultStartTimeout = 30 * time.Second
	snapshotRetain      = 2
	// rpcTimeout is the I/O deadline of one raft RPC between nodes (scaled up
	// by raft for snapshot installs) and the dial timeout.
	rpcTimeout = 5 * time.Second
)

// Open starts the store in cfg.Dir.
//
// A voter returns once a leader is known, the cluster id is in the image and
// this node has applied every entry committed when it caught up (as leader:
// every entry before its term), so Image() reflects all durable state. It
// fails with ErrNoQuorum, naming the unreachable voters, if that takes longer
// than StartTimeout. An observer returns as soon as raft runs; WaitCaughtUp
// waits for the rest.
func Open(cfg StoreConfig) (*Store, error) {
	if err := checkConfig(&cfg); err != nil {
		if cfg.Listener != nil {
			_ = cfg.Listener.Close()
		}
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), notifierDone: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mu.progress = make(chan struct{})
	initial := Empty()
	s.image.Store(initial)
	go s.notify(initial)

	if err := s.start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func checkConfig(cfg *StoreConfig) error {
	if cfg.Dir == "" {
		return errors.New("metadata: StoreConfig.Dir is empty")
	}
	if cfg.NodeID < 0 {
		return fmt.Errorf("metadata: negative node id %d", cfg.NodeID)
	}
	if cfg.ClusterID != "" {
		if _, err := ParseUUID(cfg.ClusterID); err != nil {
			return err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 1024
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 500 * time.Millisecond
	}
	if cfg.ElectionTimeout <= 0 {
		cfg.ElectionTimeout = time.Second
	}
	if len(cfg.Voters) == 0 {
		if cfg.Observer {
			return fmt.Errorf("%w: an observer needs the quorum voters", ErrInvalidVoters)
		}
		return nil
	}
	if cfg.Listener == nil {
		return fmt.Errorf("%w: StoreConfig.Listener is required with voters", ErrInvalidVoters)
	}
	ids := map[int32]bool{}
	for _, v := range cfg.Voters {
		if v.ID < 0 || v.Addr == "" || ids[v.ID] {
			return fmt.Errorf("%w: voter %v", ErrInvalidVoters, v)
		}
		ids[v.ID] = true
	}
	switch {
	case cfg.Observer && ids[cfg.NodeID]:
		return fmt.Errorf("%w: node %d is a voter and cannot be an observer", ErrInvalidVoters, cfg.NodeID)
	case !cfg.Observer && !ids[cfg.NodeID]:
		return fmt.Errorf("%w: node %d is not among the voters", ErrInvalidVoters, cfg.NodeID)
	}
	return nil
}

func (s *Store) start() error {
	hlog := newRaftLogger(s.log)
	if err := os.MkdirAll(s.cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	var err error
	// The open timeout makes a second Store on the same directory fail
	// instead of waiting forever for bbolt's file lock.
	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(s.cfg.Dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return fmt.Errorf("metadata: open raft log: %w", err)
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(s.cfg.Dir, snapshotRetain, hlog.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("metadata: open snapshot store: %w", err)
	}
	snaps := indexedSnapshots{fileSnaps}
	id := raft.ServerID(strconv.FormatInt(int64(s.cfg.NodeID), 10))

	conf := raft.DefaultConfig()
	conf.LocalID = id
	conf.Logger = hlog
	conf.NoLegacyTelemetry = true
	conf.SnapshotThreshold = s.cfg.SnapshotThreshold
	conf.TrailingLogs = s.cfg.SnapshotThreshold
	conf.SnapshotInterval = 30 * time.Second

	var trans raft.Transport
	var boot raft.Configuration
	if len(s.cfg.Voters) == 0 {
		addr, inmem := raft.NewInmemTransport(raft.ServerAddress("node-" + string(id)))
		s.trans, trans = inmem, inmem
		// One voter: nobody else can start an election or must be heard from,
		// so short timeouts only make the self-election at start fast.
		conf.HeartbeatTimeout = 20 * time.Millisecond
		conf.ElectionTimeout = 20 * time.Millisecond
		conf.LeaderLeaseTimeout = 10 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		boot.Servers = []raft.Server{{Suffrage: raft.Voter, ID: id, Address: addr}}
	} else {
		s.stream = newStreamLayer(s.cfg.Listener, s.localAddr())
		s.net = newCommitTransport(raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  s.stream,
			MaxPool: 3,
			Timeout: rpcTimeout,
			Logger:  hlog.Named("net"),
		}))
		trans = s.net
		conf.HeartbeatTimeout = s.cfg.HeartbeatTimeout
		conf.ElectionTimeout = s.cfg.ElectionTimeout
		conf.LeaderLeaseTimeout = min(500*time.Millisecond, s.cfg.HeartbeatTimeout)
		conf.CommitTimeout = min(50*time.Millisecond, s.cfg.HeartbeatTimeout/2)
		for _, v := range s.cfg.Voters {
			boot.Servers = append(boot.Servers, raft.Server{
				Suffrage: raft.Voter,
				ID:       raft.ServerID(strconv.FormatInt(int64(v.ID), 10)),
				Address:  raft.ServerAddress(v.Addr),
			})
		}
	}

	existing, err := raft.HasExistingState(s.bolt, s.bolt, snaps)
	if err != nil {
		return fmt.Errorf("metadata: inspect raft state: %w", err)
	}
	// An observer never bootstraps: it learns the configuration from the
	// leader that adds it.
	if !existing && !s.cfg.Observer {
		if err := raft.BootstrapCluster(conf, s.bolt, s.bolt, snaps, trans, boot); err != nil {
			return fmt.Errorf("metadata: bootstrap: %w", err)
		}
	}
	s.raft, err = raft.NewRaft(conf, (*fsm)(s), s.bolt, s.bolt, snaps, trans)
	if err != nil {
		return fmt.Errorf("metadata: start raft: %w", err)
	}
	s.watcherDone = make(chan struct{})
	go s.watchLeadership()

	if s.cfg.Observer {
		// Only a snapshot is applied before a leader shows the commit index.
		return s.checkClusterID()
	}
	if err := s.awaitReady(); err != nil {
		return err
	}
	return s.checkClusterID()
}

// localAddr is the raft address this node is known by: its voter entry, or
// for an observer its listener's address.
func (s *Store) localAddr() string {
	for _, v := range s.cfg.Voters {
		if v.ID == s.cfg.NodeID {
			return v.Addr
		}
	}
	return s.cfg.Listener.Addr().String()
}

func (s *Store) checkClusterID() error {
	stored := s.Image().ClusterID()
	if stored != "" && s.cfg.ClusterID != "" && stored != s.cfg.ClusterID {
		return fmt.Errorf("%w: %s holds cluster %s, configured %s", ErrClusterIDMismatch, s.cfg.Dir, stored, s.cfg.ClusterID)
	}
	return nil
}

// awaitReady polls until ready or StartTimeout.
func (s *Store) awaitReady() error {
	poll := time.Millisecond
	if s.net != nil {
		poll = 5 * time.Millisecond
	}
	deadline := time.Now().Add(s.cfg.StartTimeout)
	for !s.ready() {
		if time.Now().After(deadline) {
			return s.notReadyError()
		}
		time.Sleep(poll)
	}
	return nil
}

// ready reports whether the image holds the cluster id and every entry
// committed so far, as far as this node can tell.
func (s *Store) ready() bool {
	if s.Image().ClusterID() == "" {
		return false
	}
	if _, leader := s.LeaderTerm(); leader {
		return true
	}
	if _, ok := s.LeaderID(); !ok || s.net == nil {
		return false
	}
	return s.caughtUp()
}

// caughtUp reports whether the FSM has applied every command up to the
// highest commit index a leader has announced. Only meaningful on a node
// that is not the leader (a leader uses a barrier instead).
func (s *Store) caughtUp() bool {
	lc := s.net.leaderCommit.Load()
	if lc == 0 || s.raft.AppliedIndex() < lc {
		return false
	}
	// Raft hands entries to the FSM asynchronously and skips no-ops and
	// barriers, so look for the last command at or below lc.
	for i := lc; i > s.fsmIndex.Load(); i-- {
		var l raft.Log
		if err := s.bolt.GetLog(i, &l); err != nil {
			// Compacted away: the FSM took or restored a snapshot covering it.
			return true
		}
		if l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

func (s *Store) notReadyError() error {
	if _, ok := s.LeaderID(); ok {
		return fmt.Errorf("%w: node %d did not catch up with the leader within %v", ErrNoQuorum, s.cfg.NodeID, s.cfg.StartTimeout)
	}
	if s.stream == nil {
		return fmt.Errorf("%w: not leader after %v", ErrNoQuorum, s.cfg.StartTimeout)
	}
	var down []string
	for _, v := range s.cfg.Voters {
		if v.ID == s.cfg.NodeID {
			continue
		}
		if err, ok := s.stream.dialError(v.Addr); ok && err != nil {
			down = append(down, fmt.Sprintf("%v (%v)", v, err))
		}
	}
	if len(down) == 0 {
		return fmt.Errorf("%w: no leader elected within %v among voters %v", ErrNoQuorum, s.cfg.StartTimeout, s.cfg.Voters)
	}
	return fmt.Errorf("%w: no leader elected within %v; unreachable voters: %s", ErrNoQuorum, s.cfg.StartTimeout, strings.Join(down, ", "))
}

// watchLeadership runs for the life of the store. Each time this node
// becomes leader it applies a barrier, so that everything committed before
// its term is in the image, then marks the term ready and writes the cluster
// id if the log has none yet.
func (s *Store) watchLeadership() {
	defer close(s.watcherDone)
	leaderCh := s.raft.LeaderCh()
	for {
		select {
		case <-s.ctx.Done():
			return
		case isLeader := <-leaderCh:
			if isLeader {
				s.becameLeader()
			}
		}
	}
}

func (s *Store) becameLeader() {
	term := s.raft.CurrentTerm()
	// A new leader applies earlier entries only once an entry of its own term
	// commits; the barrier is that entry.
	if err := waitFuture(s.ctx, s.raft.Barrier(s.cfg.StartTimeout)); err != nil {
		return // leadership lost or closing; LeaderCh says what comes next
	}
	if s.raft.CurrentTerm() != term || s.raft.State() != raft.Leader {
		return
	}
	s.readyTerm.Store(term)
	if s.Image().ClusterID() != "" {
		return
	}
	cid := s.cfg.ClusterID
	if cid == "" {
		cid = UUIDString(NewUUID())
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StartTimeout)
	defer cancel()
	if _, err := s.Apply(ctx, ClusterIDRecord{ClusterID: cid}); err != nil &&
		!errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrClosed) && s.ctx.Err() == nil {
		s.log.Error("metadata: write cluster id", "err", err)
	}
}

// waitFuture waits for f or ctx, whichever ends first.
func waitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan struct{})
	go func() {
		_ = f.Error() // waits for raft to finish or fail the operation
		close(done)
	}()
	select {
	case <-done:
		return f.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitCaughtUp waits until this node is a member of the raft configuration
// (for an observer: the leader has added it), a leader is known, and the
// image includes every entry that leader had committed when it was last
// heard from.
func (s *Store) WaitCaughtUp(ctx context.Context) error {
	for {
		if s.isClosed() {
			return ErrClosed
		}
		if s.ready() && s.isMember() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.closed
}

func (s *Store) serverID() raft.ServerID {
	return raft.ServerID(strconv.FormatInt(int64(s.cfg.NodeID), 10))
}

func (s *Store) isMember() bool {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, srv := range f.Configuration().Servers {
		if srv.ID == s.serverID() {
			return true
		}
	}
	return false
}

// Image returns the latest published image. Lock-free.
func (s *Store) Image() *Image { return s.image.Load() }

// IsLeader reports whether this node currently leads the metadata quorum.
func (s *Store) IsLeader() bool { return s.raft != nil && s.raft.State() == raft.Leader }

// NodeID is this node's id.
func (s *Store) NodeID() int32 { return s.cfg.NodeID }

// Voters returns the configured quorum (controller.quorum.voters); for a
// single-voter store it is this node, with no address.
func (s *Store) Voters() []Voter {
	if len(s.cfg.Voters) == 0 {
		return []Voter{{ID: s.cfg.NodeID}}
	}
	return append([]Voter(nil), s.cfg.Voters...)
}

// LeaderID returns the raft leader as this node currently knows it.
func (s *Store) LeaderID() (id int32, ok bool) {
	_, sid := s.raft.LeaderWithID()
	return parseServerID(sid)
}

func parseServerID(sid raft.ServerID) (int32, bool) {
	if sid == "" {
		return -1, false
	}
	id, err := strconv.ParseInt(string(sid), 10, 32)
	if err != nil {
		return -1, false
	}
	return int32(id), true
}

// LeaderTerm returns the current raft term and whether this node leads in
// it. isLeader becomes true only once every entry committed before the term
// is in the image, so a new term with isLeader tells the caller that it has
// just taken over with a complete image.
func (s *Store) LeaderTerm() (term uint64, isLeader bool) {
	term = s.raft.CurrentTerm()
	return term, s.raft.State() == raft.Leader && s.readyTerm.Load() == term
}

// Quorum describes the raft configuration and this node's progress.
func (s *Store) Quorum() QuorumInfo {
	q := QuorumInfo{
		LeaderID:     -1,
		Term:         s.raft.CurrentTerm(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.raft.AppliedIndex(),
	}
	if id, ok := s.LeaderID(); ok {
		q.LeaderID = id
	}
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return q
	}
	for _, srv := range f.Configuration().Servers {
		id, ok := parseServerID(srv.ID)
		if !ok {
			continue
		}
		vi := VoterInfo{ID: id}
		if s.net != nil {
			vi.Addr = string(srv.Address)
		}
		if srv.Suffrage == raft.Nonvoter {
			q.Observers = append(q.Observers, vi)
		} else {
			q.Voters = append(q.Voters, vi)
		}
	}
	return q
}

// AddObserver makes node id, reachable at addr (its controller listener),
// a non-voting member that receives the metadata log. Leader only
// (ErrNotLeader otherwise). Adding an observer that is already there with
// the same address does nothing; a voter cannot become an observer
// (ErrInvalidVoters).
func (s *Store) AddObserver(ctx context.Context, id int32, addr string) error {
	if s.net == nil {
		return fmt.Errorf("%w: a single-voter quorum takes no observers", ErrInvalidVoters)
	}
	if id < 0 || addr == "" {
		return fmt.Errorf("%w: observer %d at %q", ErrInvalidVoters, id, addr)
	}
	if s.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	sid := raft.ServerID(strconv.FormatInt(int64(id), 10))
	for _, srv := range f.Configuration().Servers {
		if srv.ID != sid {
			continue
		}
		if srv.Suffrage != raft.Nonvoter {
			return fmt.Errorf("%w: node %d is a voter", ErrInvalidVoters, id)
		}
		if srv.Address == raft.ServerAddress(addr) {
			return nil
		}
	}
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		if timeout = time.Until(d); timeout <= 0 {
			return context.DeadlineExceeded
		}
	}
	if err := waitFuture(ctx, s.raft.AddNonvoter(sid, raft.ServerAddress(addr), 0, timeout)); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return mapRaftError(err)
	}
	return nil
}

// TransferLeadership hands leadership to another voter and returns once it
// has (raft picks the most up-to-date one). It does nothing on a node that
// does not lead or in a single-voter quorum.
func (s *Store) TransferLeadership(ctx context.Context) error {
	if s.raft.State() != raft.Leader {
		return nil
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return mapRaftError(err)
	}
	voters := 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter {
			voters++
		}
	}
	if voters <= 1 {
		return nil
	}
	if err := waitFuture(ctx, s.raft.LeadershipTransfer()); err != nil {
		switch {
		case ctx.Err() != nil:
			return err
		case errors.Is(err, raft.ErrRaftShutdown):
			return ErrClosed
		case errors.Is(err, raft.ErrNotLeader):
			return nil // someone else already leads
		}
		return fmt.Errorf("metadata: leadership transfer: %w", err)
	}
	return nil
}

// applyResult is what the FSM returns to Apply through raft's future.
type applyResult struct {
	img *Image
	err error
}

// Apply proposes recs as one log entry, waits until it is committed and
// folded, and returns the image that includes it. The batch is atomic: it
// folds entirely or is rejected (ErrInvalidRecord) with nothing published.
// ErrNotLeader means this node cannot propose. If ctx ends first, Apply
// returns ctx.Err() and the entry may still commit later.
func (s *Store) Apply(ctx context.Context, recs ...Record) (*Image, error) {
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: empty batch", ErrInvalidRecord)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok {
		if timeout = time.Until(d); timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	f := s.raft.Apply(EncodeRecords(recs), timeout)
	done := make(chan struct{})
	go func() {
		_ = f.Error() // waits for the entry to be applied or to fail
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if err := f.Error(); err != nil {
		return nil, mapRaftError(err)
	}
	res, ok := f.Response().(applyResult)
	if !ok {
		return nil, fmt.Errorf("metadata: unexpected apply response %T", f.Response())
	}
	return res.img, res.err
}

func mapRaftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return context.DeadlineExceeded
	}
	return fmt.Errorf("metadata: raft: %w", err)
}

// Watch registers fn to follow the published images. Exact contract:
//   - The first call is fn(nil, cur), where cur is the image that Image()
//     returned when Watch was called (at the earliest, the state replayed
//     from disk by Open).
//   - Then fn(prev, next) once for every image published after cur, in
//     publication order, with prev equal to the next of the previous call.
//   - All watchers run on one notifier goroutine, one call at a time, never
//     concurrently with each other; a slow fn delays the others but never
//     Apply. fn must not call WaitDelivered (it would wait for itself).
//   - After Close, no call starts; Watch on a closed store does nothing.
func (s *Store) Watch(fn func(prev, next *Image)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return
	}
	s.mu.queue = append(s.mu.queue, notifyEvent{watch: fn})
	s.signalLocked()
}

// WaitDelivered waits until every watcher registered before the call has
// been given an image with AppliedIndex >= index, so that for example a topic
// created by Apply has reached the broker's watcher.
func (s *Store) WaitDelivered(ctx context.Context, index uint64) error {
	for {
		s.mu.Lock()
		delivered, progress, closed := s.mu.delivered, s.mu.progress, s.mu.closed
		s.mu.Unlock()
		if delivered >= index {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// publish makes img the current image and queues it for the watchers; the
// two happen under mu so that Watch's first image is exactly Image() then.
func (s *Store) publish(img *Image) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.image.Store(img)
	if s.mu.closed {
		return
	}
	s.mu.queue = append(s.mu.queue, notifyEvent{img: img})
	s.signalLocked()
}

func (s *Store) signalLocked() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// notify is the notifier goroutine: it owns the watcher list and the last
// delivered image. It drains the queue until the store is closed and empty.
func (s *Store) notify(delivered *Image) {
	defer close(s.notifierDone)
	var watchers []func(prev, next *Image)
	for {
		<-s.wake
		for {
			s.mu.Lock()
			batch, closed := s.mu.queue, s.mu.closed
			s.mu.queue = nil
			s.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					s.mu.Lock()
					close(s.mu.progress) // wake WaitDelivered callers to see closed
					s.mu.progress = make(chan struct{})
					s.mu.Unlock()
					return
				}
				break
			}
			for _, ev := range batch {
				if ev.watch != nil {
					ev.watch(nil, delivered)
					watchers = append(watchers, ev.watch)
					continue
				}
				for _, w := range watchers {
					w(delivered, ev.img)
				}
				delivered = ev.img
			}
			s.mu.Lock()
			s.mu.delivered = delivered.AppliedIndex()
			close(s.mu.progress)
			s.mu.progress = make(chan struct{})
			s.mu.Unlock()
		}
	}
}

// Snapshot forces a raft snapshot of the current image now (normally raft
// takes one every SnapshotThreshold entries).
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return mapRaftError(err)
	}
	return nil
}

// Close shuts raft down, closes the log store and stops the notifier after it
// has delivered every image already published. The network transport is
// closed first, so that no RPC to a vanished peer delays the shutdown.
// Idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		s.cancel()
		switch {
		case s.net != nil:
			_ = s.net.Close() // closes the listener too
		case s.cfg.Listener != nil:
			_ = s.cfg.Listener.Close() // start failed before the transport took it
		}
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				errs = append(errs, fmt.Errorf("metadata: raft shutdown: %w", err))
			}
		}
		if s.watcherDone != nil {
			<-s.watcherDone
		}
		if s.trans != nil {
			_ = s.trans.Close() // in-memory: cannot fail
		}
		if s.bolt != nil {
			if err := s.bolt.Close(); err != nil {
				errs = append(errs, fmt.Errorf("metadata: close raft log: %w", err))
			}
		}
		s.mu.Lock()
		s.mu.closed = true
		s.signalLocked()
		s.mu.Unlock()
		<-s.notifierDone
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// fsm is the Store seen as raft's state machine. Raft calls Apply, Snapshot
// and Restore from its single FSM goroutine, so folds never race each other;
// readers only ever see images through the atomic pointer.
type fsm Store

func (f *fsm) Apply(l *raft.Log) any {
	s := (*Store)(f)
	defer s.fsmIndex.Store(l.Index)
	recs, err := DecodeRecords(l.Data)
	if err != nil {
		s.log.Error("metadata: undecodable log entry skipped", "index", l.Index, "err", err)
		return applyResult{err: err}
	}
	prev := s.Image()
	next, err := prev.Fold(l.Index, recs)
	if err != nil {
		return applyResult{err: err}
	}
	s.learnClusterID(prev, next)
	s.publish(next)
	return applyResult{img: next}
}

// learnClusterID logs a cluster id arriving through the log that differs
// from the configured one. Open fails on it when the id is already there;
// later (a node that joined before the id was written) it can only be told.
func (s *Store) learnClusterID(prev, next *Image) {
	if prev.ClusterID() == "" && next.ClusterID() != "" && s.cfg.ClusterID != "" && next.ClusterID() != s.cfg.ClusterID {
		s.log.Error("metadata: the quorum belongs to another cluster than configured",
			"cluster_id", next.ClusterID(), "configured", s.cfg.ClusterID)
	}
}

// Snapshot captures the current image; immutability makes the pointer enough.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{img: (*Store)(f).Image()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := (*Store)(f)
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("metadata: read snapshot: %w", err)
	}
	img, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	s.learnClusterID(s.Image(), img)
	s.publish(img)
	index := img.AppliedIndex()
	if ir, ok := rc.(*indexedReader); ok {
		index = ir.index
	}
	s.fsmIndex.Store(index)
	return nil
}

// indexedSnapshots tags the readers it opens with the raft index of the
// snapshot, which Restore needs and raft does not pass it.
type indexedSnapshots struct{ raft.SnapshotStore }

func (s indexedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return nil, nil, err
	}
	return meta, &indexedReader{ReadCloser: rc, index: meta.Index}, nil
}

type indexedReader struct {
	io.ReadCloser
	index uint64
}

type imageSnapshot struct{ img *Image }

func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(EncodeSnapshot(s.img)); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}

var snapshotMagic = []byte("PMS1")

// EncodeSnapshot writes img in the snapshot format of the package doc.
func EncodeSnapshot(img *Image) []byte {
	b := append([]byte(nil), snapshotMagic...)
	b = binary.BigEndian.AppendUint64(b, img.AppliedIndex())
	return append(b, EncodeRecords(img.Records())...)
}

// DecodeSnapshot rebuilds the image a snapshot was written from.
func DecodeSnapshot(b []byte) (*Image, error) {
	if len(b) < len(snapshotMagic)+8 || !bytes.Equal(b[:len(snapshotMagic)], snapshotMagic) {
		return nil, fmt.Errorf("%w: not a metadata snapshot", ErrCorrupt)
	}
	index := binary.BigEndian.Uint64(b[len(snapshotMagic):])
	recs, err := DecodeRecords(b[len(snapshotMagic)+8:])
	if err != nil {
		return nil, err
	}
	img, err := Empty().Fold(index, recs)
	if err != nil {
		return nil, fmt.Errorf("%w: snapshot does not fold: %v", ErrCorrupt, err)
	}
	return img, nil
}
