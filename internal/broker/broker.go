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
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/poste-io/poste/internal/api"
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
	cfg      *config.Broker
	log      *slog.Logger
	locks    []*os.File
	store    *metadata.Store
	ctrl     *controller.Controller
	replicas *replica.Manager
	groups   *group.Coordinator
	txns     *txn.Coordinator
	srv      *server.Server
	addrs    []net.Addr
	// stopCleaner stops the retention cleaner; cleanerDone is closed when it has returned.
	stopCleaner context.CancelFunc
	cleanerDone chan struct{}
}

// Start opens the data directories, replays the metadata, opens the hosted partitions and
// starts listening. Listeners on port 0 get a free port, advertised as such.
func Start(cfg *config.Broker, lg *slog.Logger) (b *Broker, err error) {
	if lg == nil {
		lg = slog.Default()
	}
	b = &Broker{log: lg}
	defer func() {
		if err != nil {
			b.close()
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
	adv := append([]config.Listener(nil), cfg.AdvertisedListeners...)
	for _, l := range cfg.Listeners {
		ln, err := net.Listen("tcp", net.JoinHostPort(l.Host, strconv.Itoa(l.Port)))
		if err != nil {
			for _, o := range lns {
				o.Close()
			}
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

	metaDir := filepath.Join(cfg.LogDirs[0], metadataDirName)
	b.store, err = metadata.Open(metadata.StoreConfig{Dir: metaDir, NodeID: cfg.NodeID, ClusterID: cfg.ClusterID, Logger: lg.With("component", "metadata")})
	if err != nil {
		for _, o := range lns {
			o.Close()
		}
		return nil, fmt.Errorf("metadata: %w", err)
	}
	b.ctrl = controller.New(b.store, controller.Options{
		NodeID:                   cfg.NodeID,
		DefaultPartitions:        cfg.NumPartitions,
		DefaultReplicationFactor: cfg.DefaultReplicationFactor,
		ValidateTopicConfigs:     config.ValidateTopicConfigs,
		ValidateBrokerConfigs:    config.ValidateDynamicBrokerConfigs,
	})
	ctx := context.Background()
	if err := b.ctrl.RegisterBroker(ctx, registration(b.cfg)); err != nil {
		for _, o := range lns {
			o.Close()
		}
		return nil, fmt.Errorf("registering broker: %w", err)
	}
	b.replicas = replica.New(cfg.NodeID, b.cfg, vfs.Default, lg.With("component", "replica"))
	b.store.Watch(b.replicas.Apply)
	// Serve only once every hosted partition has been opened (and recovered).
	if err := b.replicas.WaitApplied(ctx, b.store.Image().AppliedIndex()); err != nil {
		for _, o := range lns {
			o.Close()
		}
		return nil, err
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

	pids := txn.NewProducerIDs(func(ctx context.Context, n int64) (int64, error) {
		return b.ctrl.AllocateProducerIDs(ctx, cfg.NodeID, n)
	})
	// The transaction coordinator, on __transaction_state, writes markers straight to the
	// hosted partitions and commits transactional offsets through the group coordinator.
	b.txns = txn.NewCoordinator(txn.Config{MaxTimeout: time.Duration(cfg.TransactionMaxTimeoutMs) * time.Millisecond},
		cfg.NodeID, func(i int32) (coord.Log, error) {
			p, err := b.replicas.Get(txn.StateTopic, i)
			if err != nil {
				return nil, err
			}
			return p, nil
		}, pids, markerWriter{b.replicas}, offsetCommitter{b.groups}, nil, lg)
	b.store.Watch(b.txns.Apply)

	h := api.NewHandlers(api.Deps{
		Config:      b.cfg,
		Meta:        b.store,
		Controller:  b.ctrl,
		Replicas:    b.replicas,
		ProducerIDs: pids,
		Groups:      b.groups,
		Txns:        b.txns,
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

// markerWriter writes transaction markers to the partitions this broker hosts.
type markerWriter struct{ replicas *replica.Manager }

func (w markerWriter) WriteMarker(tp txn.TopicPartition, pid int64, epoch int16, commit bool, coordinatorEpoch int32) error {
	p, err := w.replicas.Get(tp.Topic, tp.Partition)
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

// offsetCommitter makes a committed transaction's offsets the group's committed offsets.
type offsetCommitter struct{ groups *group.Coordinator }

func (c offsetCommitter) CommitTxnOffsets(pg txn.PendingGroup, cb func(error)) {
	req := group.CommitRequest{Group: pg.Group, Generation: pg.Generation, MemberID: pg.MemberID, InstanceID: pg.InstanceID}
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
	r := metadata.RegisterBrokerRecord{BrokerID: cfg.NodeID}
	for _, l := range cfg.AdvertisedListeners {
		r.Endpoints = append(r.Endpoints, metadata.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port)})
	}
	return r
}

// Addrs returns the bound address of each listener, in configuration order.
func (b *Broker) Addrs() []net.Addr { return b.addrs }

// Config returns the effective configuration (advertised ports resolved).
func (b *Broker) Config() *config.Broker { return b.cfg }

// Shutdown answers the requests already read, then flushes and closes every log and the
// metadata store. If ctx expires, connections are cut but logs are still closed cleanly.
func (b *Broker) Shutdown(ctx context.Context) error {
	var errs []error
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
