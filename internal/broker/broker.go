// Package broker wires a Poste broker together: it builds every service in dependency order,
// starts them, and stops them in reverse. It holds no domain state of its own.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"github.com/poste-io/poste/internal/api"
	"github.com/poste-io/poste/internal/cluster"
	"github.com/poste-io/poste/internal/config"
	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/coord"
	"github.com/poste-io/poste/internal/group"
	"github.com/poste-io/poste/internal/metadata"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/replica"
	"github.com/poste-io/poste/internal/server"
	"github.com/poste-io/poste/internal/txn"
	"github.com/poste-io/poste/internal/vfs"
)

// metadataDirName is where the metadata quorum keeps its log, in the first log dir (Kafka's
// name for the same thing). It holds no partition.metadata file, so it is never taken for a
// partition.
const metadataDirName = "__cluster_metadata-0"

// Broker is a running broker. Start and Shutdown are called by one goroutine.
type Broker struct {
	cfg     *config.Broker
	log     *slog.Logger
	locks   []*os.File
	store   *metadata.Store
	ctrl    *controller.Controller
	channel *cluster.Channel    // to the active controller; nil on a single node
	router  *cluster.Router     // controller calls, local or remote
	member  *cluster.Membership // registration and heartbeats
	// memberRef publishes member to the goroutines that read the broker epoch (fetchers,
	// ISR proposals), which start before the registration.
	memberRef atomic.Pointer[cluster.Membership]
	peers     cluster.Peers // clients to other brokers (transaction markers)
	replicas  *replica.Manager
	groups    *group.Coordinator
	txns      *txn.Coordinator
	srv       *server.Server
	addrs     []net.Addr
	// stopCleaner stops the retention cleaner; cleanerDone is closed when it has returned.
	stopCleaner context.CancelFunc
	cleanerDone chan struct{}
	// stopLoops stops the controller tick and ISR loops; loops counts them.
	stopLoops context.CancelFunc
	loops     sync.WaitGroup
}

// Start opens the data directories, replays the metadata, opens the hosted partitions and
// starts listening. Listeners on port 0 get a free port, advertised as such.
func Start(cfg *config.Broker, lg *slog.Logger) (b *Broker, err error) {
	if lg == nil {
		lg = slog.Default()
	}
	nb := &Broker{log: lg}
	b = nb
	defer func() {
		if err != nil {
			nb.close()
		}
	}()
	for _, d := range cfg.LogDirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("log dir %s: %w", d, err)
		}
		f, err := lockDir(d)
		if err != nil {
			return nil, err
		}
		b.locks = append(b.locks, f)
	}

	// Bind first: a port conflict should fail before any state is touched, and the actual
	// ports of ":0" listeners must be known to advertise them.
	var lns []net.Listener
	closeLns := func() {
		for _, o := range lns {
			o.Close()
		}
	}
	adv := append([]config.Listener(nil), cfg.AdvertisedListeners...)
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.Host, strconv.Itoa(l.Port)))
		if err != nil {
			closeLns()
			return nil, fmt.Errorf("listener %s: %w", l.Name, err)
		}
		lns = append(lns, ln)
		b.addrs = append(b.addrs, ln.Addr())
		port := ln.Addr().(*net.TCPAddr).Port
		for i := range adv {
			if adv[i].Name == l.Name && adv[i].Port == 0 {
				adv[i].Port = port
			}
		}
	}
	c := *cfg
	c.AdvertisedListeners = adv
	b.cfg = &c

	// A controller listener carries the quorum's raft traffic beside Kafka requests; a
	// broker-only node receives the metadata log as a raft observer on its first advertised
	// listener (the address it registers first).
	var raftLn net.Listener
	if len(cfg.Voters) > 0 {
		var name string
		if cfg.Controller {
			name = cfg.ControllerListeners[0]
		} else {
			name = adv[0].Name
		}
		i := slices.IndexFunc(cfg.Listeners, func(l config.Listener) bool { return l.Name == name })
		var kafkaLn net.Listener
		raftLn, kafkaLn = metadata.SplitListener(lns[i])
		lns[i] = kafkaLn
	}
	metaDir := filepath.Join(cfg.LogDirs[0], metadataDirName)
	sc := metadata.StoreConfig{Dir: metaDir, NodeID: cfg.NodeID, ClusterID: cfg.ClusterID, Logger: lg.With("component", "metadata"),
		Listener: raftLn, Observer: !cfg.Controller}
	voterAddrs := map[int32]string{}
	for _, v := range cfg.Voters {
		sc.Voters = append(sc.Voters, metadata.Voter{ID: v.ID, Addr: v.Addr()})
		voterAddrs[v.ID] = v.Addr()
	}
	b.store, err = metadata.Open(sc)
	if err != nil {
		if raftLn != nil {
			raftLn.Close()
		}
		closeLns()
		return nil, fmt.Errorf("metadata: %w", err)
	}
	b.ctrl = controller.New(b.store, controller.Options{
		NodeID:                   cfg.NodeID,
		DefaultPartitions:        cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		ValidateTopicConfigs:     config.ValidateTopicConfigs,
		ValidateBrokerConfigs:    config.ValidateDynamicBrokerConfigs,
		SessionTimeout:           time.Duration(cfg.BrokerSessionTimeoutMs) * time.Millisecond,
		// A broker whose heartbeat connection closed reconnects within an interval if alive.
		LostGrace:                    2 * time.Duration(cfg.BrokerHeartbeatIntervalMs) * time.Millisecond,
		AutoLeaderRebalance:          cfg.AutoLeaderRebalance,
		LeaderImbalanceCheckInterval: time.Duration(cfg.LeaderImbalanceCheckIntervalS) * time.Second,
		LeaderImbalancePercentage:    int(cfg.LeaderImbalancePercentage),
		DefaultMinISR:                int(cfg.MinInsyncReplicas),
		UncleanLeaderElection:        cfg.UncleanLeaderElection,
	})
	b.router = &cluster.Router{Local: b.ctrl, IsLeader: b.store.IsLeader}
	if len(cfg.Voters) > 0 {
		b.channel = cluster.NewChannel(voterAddrs, b.store.LeaderID, lg.With("component", "controller-channel"))
		b.router.Remote = &cluster.Remote{Channel: b.channel, ClusterID: func() string { return b.store.Image().ClusterID() }}
	}
	ctx := context.Background()
	lctx, stopLoops := context.WithCancel(context.Background())
	b.stopLoops = stopLoops
	b.loops.Add(1)
	go func() {
		defer b.loops.Done()
		b.tickController(lctx)
	}()

	b.replicas = replica.New(cfg.NodeID, b.cfg, vfs.Default, lg.With("component", "replica"))
	if len(cfg.Voters) > 0 {
		b.replicas.SetCluster(&replica.Cluster{
			Listener: b.cfg.InterBrokerListener,
			LagMax:   time.Duration(cfg.ReplicaLagTimeMaxMs) * time.Millisecond,
			Fetchers: int(cfg.NumReplicaFetchers),
			Fetch: replica.FetcherConfig{
				NodeID:        cfg.NodeID,
				BrokerEpoch:   b.brokerEpoch,
				MaxWait:       time.Duration(cfg.ReplicaFetchWaitMaxMs) * time.Millisecond,
				MinBytes:      cfg.ReplicaFetchMinBytes,
				MaxBytes:      cfg.ReplicaFetchResponseMaxBytes,
				PartitionMax:  cfg.ReplicaFetchMaxBytes,
				Backoff:       time.Duration(cfg.ReplicaFetchBackoffMs) * time.Millisecond,
				Rack:          deref(cfg.Rack),
				DurableAppend: cfg.FlushPolicy == "always",
			},
			ProposeISR: func(ctx context.Context, changes []controller.ISRChange) []controller.ISRResult {
				return b.router.AlterPartition(ctx, cfg.NodeID, b.brokerEpoch(), changes)
			},
		})
	}
	b.store.Watch(b.replicas.Apply)
	b.loops.Add(1)
	go func() {
		defer b.loops.Done()
		b.replicas.RunISR(lctx)
	}()
	if err := b.replicas.WaitApplied(ctx, b.store.Image().AppliedIndex()); err != nil {
		closeLns()
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if cfg.BrokerRole {
		if err := b.register(rctx); err != nil {
			closeLns()
			return nil, err
		}
	}
	cctx, cancel := context.WithCancel(context.Background())
	b.stopCleaner, b.cleanerDone = cancel, make(chan struct{})
	go func() {
		defer close(b.cleanerDone)
		b.replicas.RunRetention(cctx, time.Duration(cfg.RetentionCheckIntervalMs)*time.Millisecond)
	}()

	// The group coordinator loads a shard for each __consumer_offsets partition led here; its
	// watcher runs after the replica manager's, so the partitions are open by then.
	b.groups = group.NewCoordinator(groupConfig(b.cfg), cfg.NodeID, func(i int32) (coord.Log, error) {
		p, err := b.replicas.Get(group.OffsetsTopic, i)
		if err != nil {
			return nil, err
		}
		return p, nil
	}, nil, lg)
	b.store.Watch(b.groups.Apply)

	peer := peerFinder{store: b.store, self: cfg.NodeID, listener: b.cfg.InterBrokerListener}
	if len(cfg.Voters) > 0 {
		peer.peers = &b.peers
	}
	pids := txn.NewProducerIDs(func(ctx context.Context, n int64) (int64, error) {
		return b.router.AllocateProducerIDs(ctx, cfg.NodeID, n)
	})
	// The transaction coordinator, on __transaction_state, writes markers straight to the
	// hosted partitions and commits transactional offsets through the group coordinator.
	b.txns = txn.NewCoordinator(txn.Config{MaxTimeout: time.Duration(cfg.TransactionMaxTimeoutMs) * time.Millisecond,
		IDExpiration: time.Duration(cfg.TransactionalIDExpirationMs) * time.Millisecond},
		cfg.NodeID, func(i int32) (coord.Log, error) {
			p, err := b.replicas.Get(txn.StateTopic, i)
			if err != nil {
				return nil, err
			}
			return p, nil
		}, pids, markerWriter{replicas: b.replicas, peer: peer}, offsetCommitter{groups: b.groups, peer: peer}, nil, lg)
	b.store.Watch(b.txns.Apply)

	h := api.NewHandlers(api.Deps{
		Config:      b.cfg,
		Meta:        b.store,
		Controller:  b.ctrl,
		Replicas:    b.replicas,
		ProducerIDs: pids,
		Groups:      b.groups,
		Txns:        b.txns,
		Channel:     b.channel,
		Peers:       peer.peers,
		Logger:      lg,
	})
	b.srv = server.New(server.Config{MaxRequestBytes: cfg.SocketRequestMaxBytes, Logger: lg.With("component", "server")}, h)
	for i, ln := range lns {
		b.srv.Serve(cfg.Listeners[i].Name, ln)
		lg.Info("listening", "listener", cfg.Listeners[i].Name, "addr", ln.Addr().String())
	}
	lg.Info("broker started", "node.id", cfg.NodeID, "cluster.id", b.store.Image().ClusterID(), "log.dirs", cfg.LogDirs)
	return b, nil
}

// register registers this broker with the active controller and waits to be unfenced: the
// controller then gives it back the leaderships it can take, and serving starts once those
// are applied here.
func (b *Broker) register(ctx context.Context) error {
	cfg := b.cfg
	rctx := ctx
	var err error
	b.member, err = cluster.StartMembership(rctx, cluster.MembershipConfig{
		Registration: registration(b.cfg),
		Interval:     time.Duration(cfg.BrokerHeartbeatIntervalMs) * time.Millisecond,
		Applied:      b.replicas.AppliedIndex,
		Controller:   b.router,
		Logger:       b.log.With("component", "membership"),
	})
	if err != nil {
		return fmt.Errorf("registering broker: %w", err)
	}
	b.memberRef.Store(b.member)
	if err := b.member.WaitUnfenced(rctx); err != nil {
		return fmt.Errorf("waiting to be unfenced by the controller: %w", err)
	}
	// The controller said so; serve once this node's own metadata says so too.
	for bi := b.store.Image().Broker(cfg.NodeID); bi == nil || bi.Fenced; bi = b.store.Image().Broker(cfg.NodeID) {
		if rctx.Err() != nil {
			return fmt.Errorf("waiting for the unfencing to reach this node: %w", rctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b.replicas.WaitApplied(rctx, b.store.Image().AppliedIndex())
}

// startTimeout bounds the wait for the quorum, the registration and the unfencing at start.
const startTimeout = 60 * time.Second

// tickInterval is how often the active controller checks broker sessions and leader balance.
const tickInterval = 100 * time.Millisecond

// tickController runs the controller's periodic duties while this node may be the active
// controller (Tick is a no-op elsewhere).
func (b *Broker) tickController(ctx context.Context) {
	if !b.cfg.Controller {
		return
	}
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.ctrl.Tick(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("controller tick failed", "err", err)
		}
	}
}

// brokerEpoch is this broker's current registration epoch, -1 before it registered.
func (b *Broker) brokerEpoch() int64 {
	if m := b.memberRef.Load(); m != nil {
		return m.Epoch()
	}
	return -1
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// markerWriter writes transaction markers: to the partitions this broker leads directly, to
// the others with WriteTxnMarkers to their leader.
type markerWriter struct {
	replicas *replica.Manager
	peer     peerFinder
}

func (w markerWriter) WriteMarker(tp txn.TopicPartition, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	p, err := w.replicas.Get(tp.Topic, tp.Partition)
	if w.peer.peers != nil && (errors.Is(err, replica.ErrNotReplica) || err == nil && !p.IsLeader()) {
		return w.writeRemote(tp, pid, epoch, commit, coordinatorEpoch)
	}
	if errors.Is(err, replica.ErrNotHosted) {
		return txn.ErrPartitionGone
	}
	if err != nil {
		return err
	}
	res, err := p.AppendMarker(pid, epoch, commit, coordinatorEpoch)
	if errors.Is(err, partition.ErrInvalidEpoch) {
		return nil // a newer epoch already closed the producer's transaction here
	}
	if err != nil {
		return err
	}
	return p.AwaitCommitted(res.LastOffset+1, time.Now().Add(30*time.Second))
}

// writeRemote sends one marker to the partition's leader and waits for its answer.
func (w markerWriter) writeRemote(tp txn.TopicPartition, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	leader, addr, _, err := w.peer.leaderOf(tp.Topic, tp.Partition)
	if err != nil {
		return err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, coordinatorEpoch
	mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
	mt.Topic, mt.Partitions = tp.Topic, []int32{tp.Partition}
	m.Topics = append(m.Topics, mt)
	req.Markers = append(req.Markers, m)
	ctx, cancel := context.WithTimeout(context.Background(), 35*time.Second)
	defer cancel()
	kresp, err := w.peer.peers.Request(ctx, leader, addr, req)
	if err != nil {
		return err
	}
	for _, rm := range kresp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				switch rp.ErrorCode {
				case 0, kerr.InvalidProducerEpoch.Code: // done, or closed already by a newer epoch
					return nil
				case kerr.UnknownTopicOrPartition.Code:
					return txn.ErrPartitionGone
				default:
					return kerr.ErrorForCode(rp.ErrorCode)
				}
			}
		}
	}
	return fmt.Errorf("no answer for %s-%d from broker %d", tp.Topic, tp.Partition, leader)
}

// offsetCommitter makes a committed transaction's offsets the group's committed offsets:
// through the group coordinator here, or with an OffsetCommit to the broker that coordinates
// the group.
type offsetCommitter struct {
	groups *group.Coordinator
	peer   peerFinder
}

func (c offsetCommitter) CommitTxnOffsets(id string, pg txn.PendingGroup, cb func(error)) {
	if p, ok := c.groups.PartitionFor(pg.Group); ok && c.peer.peers != nil {
		if node, addr, local, err := c.peer.leaderOf(group.OffsetsTopic, p); err == nil && !local {
			go func() { cb(c.commitRemote(node, addr, id, pg)) }()
			return
		}
	}
	req := group.CommitRequest{Group: pg.Group, Generation: pg.Generation, MemberID: pg.MemberID, InstanceID: pg.InstanceID,
		Transactional: true}
	offs := make([]group.CommitOffset, 0, len(pg.Offsets))
	for tp, o := range pg.Offsets {
		offs = append(offs, group.CommitOffset{TopicPartition: group.TopicPartition{Topic: tp.Topic, Partition: tp.Partition},
			Offset: group.Offset{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}})
	}
	c.groups.Commit(req, offs, func(err error, errs []error) {
		if err == nil {
			err = errors.Join(errs...)
		}
		cb(err)
	})
}

func (c offsetCommitter) commitRemote(node int32, addr, id string, pg txn.PendingGroup) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation, req.MemberID, req.InstanceID = pg.Group, pg.Generation, pg.MemberID, pg.InstanceID
	// The group's broker checked these offsets when the TxnOffsetCommit passed through it;
	// the tag tells it that a transaction's commit is completing them (api.TagTxnOffsetsOf).
	req.UnknownTags.Set(api.TagTxnOffsetsOf, []byte(id))
	byTopic := map[string]int{}
	for tp, o := range pg.Offsets {
		i, ok := byTopic[tp.Topic]
		if !ok {
			t := kmsg.NewOffsetCommitRequestTopic()
			t.Topic = tp.Topic
			req.Topics = append(req.Topics, t)
			i = len(req.Topics) - 1
			byTopic[tp.Topic] = i
		}
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = tp.Partition, o.Offset, o.LeaderEpoch
		md := o.Metadata
		p.Metadata = &md
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kresp, err := c.peer.peers.Request(ctx, node, addr, req)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range kresp.(*kmsg.OffsetCommitResponse).Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				errs = append(errs, fmt.Errorf("%s-%d: %w", t.Topic, p.Partition, err))
			}
		}
	}
	return errors.Join(errs...)
}

// peerFinder locates the leader of a partition among the brokers.
type peerFinder struct {
	store    *metadata.Store
	peers    *cluster.Peers // nil on a single node
	self     int32
	listener string // inter-broker listener
}

// leaderOf returns the leader of topic-partition, its inter-broker address, and whether it is
// this broker.
func (f peerFinder) leaderOf(topic string, partition int32) (int32, string, bool, error) {
	leader, addr, err := f.store.Image().LeaderAddr(topic, partition, f.listener)
	switch {
	case errors.Is(err, metadata.ErrUnknownPartition):
		return -1, "", false, txn.ErrPartitionGone
	case leader == f.self:
		return leader, "", true, nil
	}
	return leader, addr, false, err
}

// groupConfig derives the group coordinator's configuration from the broker's.
func groupConfig(cfg *config.Broker) group.Config {
	ms := func(v int64) time.Duration { return time.Duration(v) * time.Millisecond }
	gc := group.Config{
		MinSessionTimeout:     ms(int64(cfg.GroupMinSessionTimeoutMs)),
		MaxSessionTimeout:     ms(int64(cfg.GroupMaxSessionTimeoutMs)),
		InitialRebalanceDelay: ms(int64(cfg.GroupInitialRebalanceDelayMs)),
		OffsetsRetention:      ms(cfg.OffsetsRetentionMs),
	}
	if cfg.GroupMaxSize < math.MaxInt32 {
		gc.MaxSize = int(cfg.GroupMaxSize)
	}
	return gc
}

func registration(cfg *config.Broker) metadata.RegisterBrokerRecord {
	r := metadata.RegisterBrokerRecord{BrokerID: cfg.NodeID, Rack: cfg.Rack}
	for _, l := range cfg.AdvertisedListeners {
		r.Endpoints = append(r.Endpoints, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port),
			SecurityProtocol: securityProtocols[l.SecurityProtocol]})
	}
	return r
}

// securityProtocols numbers the protocols as Kafka does.
var securityProtocols = map[string]int16{"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}

// Addrs returns the bound address of each listener, in configuration order.
func (b *Broker) Addrs() []net.Addr { return b.addrs }

// Config returns the effective configuration (advertised ports resolved).
func (b *Broker) Config() *config.Broker { return b.cfg }

// Shutdown answers the requests already read, then flushes and closes every log and the
// metadata store. If ctx expires, connections are cut but logs are still closed cleanly.
func (b *Broker) Shutdown(ctx context.Context) error {
	var errs []error
	if b.member != nil && b.channel != nil && b.cfg.ControlledShutdown {
		// Controlled shutdown: the controller moves this broker's leaderships away first, so
		// clients fail over at once instead of after the session timeout.
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := b.member.ShutDown(sctx); err != nil {
			b.log.Warn("controlled shutdown did not complete", "err", err)
		}
		cancel()
	}
	if b.store != nil && b.channel != nil && b.store.IsLeader() {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := b.store.TransferLeadership(tctx); err != nil {
			b.log.Warn("handing over the controller role failed", "err", err)
		}
		cancel()
	}
	if b.srv != nil {
		if err := b.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("server: %w", err))
		}
	}
	errs = append(errs, b.close())
	b.log.Info("broker stopped")
	return errors.Join(errs...)
}

func (b *Broker) close() error {
	var errs []error
	if b.member != nil {
		b.member.Close()
	}
	if b.stopLoops != nil {
		b.stopLoops()
		b.loops.Wait()
	}
	if b.stopCleaner != nil {
		b.stopCleaner()
		<-b.cleanerDone
	}
	// Coordinator shards write to their partitions: stop them first.
	if b.txns != nil {
		b.txns.Close()
	}
	if b.groups != nil {
		b.groups.Close()
	}
	if b.replicas != nil {
		if err := b.replicas.Close(); err != nil {
			errs = append(errs, fmt.Errorf("partitions: %w", err))
		}
	}
	if b.channel != nil {
		b.channel.Close()
	}
	b.peers.Close()
	if b.store != nil {
		if err := b.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("metadata: %w", err))
		}
	}
	for _, f := range b.locks {
		f.Close()
	}
	b.locks = nil
	return errors.Join(errs...)
}

// lockDir takes an exclusive lock on a log dir so two brokers never share one.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log dir %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("log dir %s is in use by another process: %w", dir, err)
	}
	return f, nil
}

// Replicas returns the broker's partition manager (tests inspect replicas through it).
func (b *Broker) Replicas() *replica.Manager { return b.replicas }

// Metadata returns the broker's metadata store (tests read the image through it).
func (b *Broker) Metadata() *metadata.Store { return b.store }
