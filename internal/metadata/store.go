package metadata

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
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
	// NodeID is this node's id, also its raft server id.
	NodeID int32
	// Logger receives raft warnings and errors; nil means slog.Default().
	Logger *slog.Logger
	// ClusterID, if set, is written at the first bootstrap; on later starts a
	// different stored id fails Open with ErrClusterIDMismatch. Empty means a
	// random id at bootstrap and no check later.
	ClusterID string
	// SnapshotThreshold is the number of log entries between snapshots;
	// 0 means 1024.
	SnapshotThreshold uint64
}

// Store is the replicated metadata log of this node and the latest Image
// folded from it.
//
// Today it runs hashicorp/raft with one voter (this node) over an in-memory
// transport, a bbolt log and stable store, and a file snapshot store; the
// first Open of a directory bootstraps that configuration, later Opens replay
// it (latest snapshot, then the log after it).
//
// Invariants:
//   - Image() only moves forward: every published image folds the committed
//     entries in log order, one new image per successfully applied entry (an
//     entry that does not fold is rejected and publishes nothing).
//   - Watch callbacks see the published images in the same order, one call per
//     image, from a single notifier goroutine.
//
// All methods are safe for concurrent use.
type Store struct {
	cfg   StoreConfig
	log   *slog.Logger
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	trans *raft.InmemTransport

	image atomic.Pointer[Image]

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
	startTimeout   = 30 * time.Second
	snapshotRetain = 2
)

// Open starts the store in cfg.Dir and returns once this node is the leader
// and every entry already in the log is applied, so Image() reflects all
// durable state. On the first start of a directory it bootstraps a one-voter
// cluster and writes the cluster id.
func Open(cfg StoreConfig) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("metadata: StoreConfig.Dir is empty")
	}
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("metadata: negative node id %d", cfg.NodeID)
	}
	if cfg.ClusterID != "" {
		if _, err := ParseUUID(cfg.ClusterID); err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = 1024
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), notifierDone: make(chan struct{})}
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

func (s *Store) start() error {
	hlog := newRaftLogger(s.log)
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
	snaps, err := raft.NewFileSnapshotStoreWithLogger(s.cfg.Dir, snapshotRetain, hlog.Named("snapshot"))
	if err != nil {
		return fmt.Errorf("metadata: open snapshot store: %w", err)
	}
	id := strconv.FormatInt(int64(s.cfg.NodeID), 10)
	addr, trans := raft.NewInmemTransport(raft.ServerAddress("node-" + id))
	s.trans = trans

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(id)
	conf.Logger = hlog
	conf.NoLegacyTelemetry = true
	// One voter: nobody else can start an election or must be heard from, so
	// short timeouts only make the self-election at start fast.
	conf.HeartbeatTimeout = 20 * time.Millisecond
	conf.ElectionTimeout = 20 * time.Millisecond
	conf.LeaderLeaseTimeout = 10 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = s.cfg.SnapshotThreshold
	conf.TrailingLogs = s.cfg.SnapshotThreshold
	conf.SnapshotInterval = 30 * time.Second

	existing, err := raft.HasExistingState(s.bolt, s.bolt, snaps)
	if err != nil {
		return fmt.Errorf("metadata: inspect raft state: %w", err)
	}
	if !existing {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: conf.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(conf, s.bolt, s.bolt, snaps, trans, boot); err != nil {
			return fmt.Errorf("metadata: bootstrap: %w", err)
		}
	}
	s.raft, err = raft.NewRaft(conf, (*fsm)(s), s.bolt, s.bolt, snaps, trans)
	if err != nil {
		return fmt.Errorf("metadata: start raft: %w", err)
	}

	deadline := time.Now().Add(startTimeout)
	for s.raft.State() != raft.Leader {
		if time.Now().After(deadline) {
			return fmt.Errorf("metadata: not leader after %v", startTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	// A new leader applies earlier entries only once an entry of its own term
	// commits; the barrier is that entry, so the replay is complete after it.
	if err := s.raft.Barrier(startTimeout).Error(); err != nil {
		return fmt.Errorf("metadata: replay: %w", err)
	}

	stored := s.Image().ClusterID()
	switch {
	case stored == "":
		cid := s.cfg.ClusterID
		if cid == "" {
			cid = UUIDString(NewUUID())
		}
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		if _, err := s.Apply(ctx, ClusterIDRecord{ClusterID: cid}); err != nil {
			return fmt.Errorf("metadata: write cluster id: %w", err)
		}
	case s.cfg.ClusterID != "" && s.cfg.ClusterID != stored:
		return fmt.Errorf("%w: %s holds cluster %s, configured %s", ErrClusterIDMismatch, s.cfg.Dir, stored, s.cfg.ClusterID)
	}
	return nil
}

// Image returns the latest published image. Lock-free.
func (s *Store) Image() *Image { return s.image.Load() }

// IsLeader reports whether this node currently leads the metadata quorum.
func (s *Store) IsLeader() bool { return s.raft != nil && s.raft.State() == raft.Leader }

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
// has delivered every image already published. Idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.raft != nil {
			if err := s.raft.Shutdown().Error(); err != nil {
				errs = append(errs, fmt.Errorf("metadata: raft shutdown: %w", err))
			}
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
	recs, err := DecodeRecords(l.Data)
	if err != nil {
		s.log.Error("metadata: undecodable log entry skipped", "index", l.Index, "err", err)
		return applyResult{err: err}
	}
	next, err := s.Image().Fold(l.Index, recs)
	if err != nil {
		return applyResult{err: err}
	}
	s.publish(next)
	return applyResult{img: next}
}

// Snapshot captures the current image; immutability makes the pointer enough.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{img: (*Store)(f).Image()}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("metadata: read snapshot: %w", err)
	}
	img, err := DecodeSnapshot(b)
	if err != nil {
		return err
	}
	(*Store)(f).publish(img)
	return nil
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
