package replica

// Leader and follower roles: after every image the manager makes each hosted partition the
// leader or a follower as the metadata says, moves followed partitions between fetchers,
// and, for the partitions it leads, proposes ISR changes to the controller.

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/poste-io/poste/internal/controller"
	"github.com/poste-io/poste/internal/metadata"
	"github.com/poste-io/poste/internal/partition"
)

// Cluster is what the manager needs to replicate: where brokers are, and the controller to
// send ISR changes to. A single node needs none of it (SetCluster is not called).
type Cluster struct {
	Fetch FetcherConfig
	// Listener is the name of the inter-broker listener whose endpoint followers dial.
	Listener string
	// ProposeISR sends ISR changes to the active controller (AlterPartition).
	ProposeISR func(ctx context.Context, changes []controller.ISRChange) []controller.ISRResult
	// LagMax is replica.lag.time.max.ms.
	LagMax time.Duration
	// Fetchers is num.replica.fetchers: fetchers per source broker (at least 1).
	Fetchers int
}

// replication is the manager's replication state.
type replication struct {
	cluster *Cluster // nil on a single node
	mu      struct {
		sync.Mutex
		fetchers map[fetcherKey]*fetcher
		follows  map[TP]int32      // followed partition → leader id
		addrs    map[int32]string  // leader id → address its fetcher dials
		led      map[TP]leaderMeta // partitions led here
	}
}

type leaderMeta struct {
	topicID [16]byte
}

// SetCluster enables replication; call it before the first Apply.
func (m *Manager) SetCluster(c *Cluster) {
	m.repl.cluster = c
}

// applyRoles gives every hosted partition the role next assigns it. Called at the end of
// Apply, by the metadata watcher.
func (m *Manager) applyRoles(next *metadata.Image) {
	now := m.now()
	m.repl.mu.Lock()
	defer m.repl.mu.Unlock()
	if m.repl.mu.fetchers == nil {
		m.repl.mu.fetchers = make(map[fetcherKey]*fetcher)
		m.repl.mu.follows = make(map[TP]int32)
		m.repl.mu.addrs = make(map[int32]string)
		m.repl.mu.led = make(map[TP]leaderMeta)
	}
	m.mu.RLock()
	parts := make(map[TP]*partition.Partition, len(m.mu.parts))
	for tp, p := range m.mu.parts {
		parts[tp] = p
	}
	m.mu.RUnlock()

	led := make(map[TP]leaderMeta)
	follows := make(map[TP]int32)
	for tp, p := range parts {
		t := next.Topic(tp.Topic)
		if t == nil || int(tp.Partition) >= len(t.Partitions) || t.ID != p.ID {
			continue
		}
		mp := &t.Partitions[tp.Partition]
		if mp.Leader == m.nodeID {
			st := partition.LeaderState{LeaderEpoch: mp.LeaderEpoch, PartitionEpoch: mp.PartitionEpoch,
				Replicas: slices.Clone(mp.Replicas), ISR: slices.Clone(mp.ISR),
				MinISR: int(m.effective().TopicConfig(next.TopicConfigs(tp.Topic)).MinInsyncReplicas)}
			// Every difference counts, not only the epochs: a partition just created, or just
			// opened, has the epochs of the image but not yet its ISR, and a change of
			// min.insync.replicas moves no epoch.
			if !p.SameLeaderState(st) {
				if err := p.BecomeLeader(m.nodeID, st, now); err != nil {
					m.lg.Error("becoming leader failed", "topic", tp.Topic, "partition", tp.Partition, "err", err)
					continue
				}
			}
			led[tp] = leaderMeta{topicID: t.ID}
			continue
		}
		if p.IsLeader() || p.Leader() != mp.Leader || p.LeaderEpoch() != mp.LeaderEpoch || p.PartitionEpoch() != mp.PartitionEpoch {
			if err := p.BecomeFollower(mp.Leader, mp.LeaderEpoch, mp.PartitionEpoch); err != nil {
				m.lg.Error("becoming follower failed", "topic", tp.Topic, "partition", tp.Partition, "err", err)
				continue
			}
		}
		if mp.Leader >= 0 && m.repl.cluster != nil {
			follows[tp] = mp.Leader
			m.followLocked(next, tp, p, t.ID, mp.Leader, mp.LeaderEpoch)
		}
	}
	// Stop following what is no longer followed (or followed from another leader).
	for tp, leader := range m.repl.mu.follows {
		if l, ok := follows[tp]; !ok || l != leader {
			if f := m.repl.mu.fetchers[m.fetcherKey(leader, tp)]; f != nil {
				f.remove(tp)
			}
		}
	}
	m.repl.mu.follows = follows
	m.repl.mu.led = led
	for id, f := range m.repl.mu.fetchers {
		if f.size() == 0 {
			f.close()
			delete(m.repl.mu.fetchers, id)
		}
	}
}

// followLocked hands tp to the fetcher of leader, creating it (or recreating it when the
// leader's address changed).
func (m *Manager) followLocked(img *metadata.Image, tp TP, p *partition.Partition, topicID [16]byte, leader, epoch int32) {
	addr := m.brokerAddr(img, leader)
	if addr == "" {
		m.lg.Warn("leader has no inter-broker endpoint", "leader", leader, "listener", m.repl.cluster.Listener)
		return
	}
	key := m.fetcherKey(leader, tp)
	f := m.repl.mu.fetchers[key]
	if f != nil && f.addr != addr {
		f.close()
		f = nil
	}
	if f == nil {
		var err error
		f, err = newFetcher(&m.repl.cluster.Fetch, leader, addr, m.lg)
		if err != nil {
			m.lg.Error("starting replica fetcher failed", "leader", leader, "err", err)
			delete(m.repl.mu.fetchers, key)
			return
		}
		m.repl.mu.fetchers[key] = f
	}
	f.add(tp, p, topicID, epoch)
}

// fetcherKey names one of the num.replica.fetchers fetchers of a source broker; a partition
// always goes to the same one. Each fetcher fetches, appends and fsyncs in its own loop, so
// several of them keep several fetches in flight per source broker.
type fetcherKey struct {
	leader int32
	slot   int
}

func (m *Manager) fetcherKey(leader int32, tp TP) fetcherKey {
	n := m.repl.cluster.Fetchers
	if n <= 1 {
		return fetcherKey{leader: leader}
	}
	h := fnv.New32a()
	h.Write([]byte(tp.Topic))
	return fetcherKey{leader: leader, slot: int((h.Sum32() + uint32(tp.Partition)) % uint32(n))}
}

func (m *Manager) brokerAddr(img *metadata.Image, id int32) string {
	return img.Broker(id).Addr(m.repl.cluster.Listener)
}

// RunISR proposes ISR changes for the partitions led here until ctx ends: every 250 ms each
// leader is asked whether a follower should leave (lagging for LagMax) or join (caught up).
func (m *Manager) RunISR(ctx context.Context) {
	if m.repl.cluster == nil {
		return
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.proposeISR(ctx)
	}
}

func (m *Manager) proposeISR(ctx context.Context) {
	m.repl.mu.Lock()
	led := make(map[TP]leaderMeta, len(m.repl.mu.led))
	for tp, l := range m.repl.mu.led {
		led[tp] = l
	}
	m.repl.mu.Unlock()
	now := m.now()
	var changes []controller.ISRChange
	var props []*partition.Partition
	for tp, l := range led {
		p, err := m.Get(tp.Topic, tp.Partition)
		if err != nil || !p.IsLeader() {
			continue
		}
		isr, ok := p.ISRUpdate(now, m.repl.cluster.LagMax)
		if !ok {
			continue
		}
		changes = append(changes, controller.ISRChange{TopicID: l.topicID, Partition: tp.Partition,
			LeaderEpoch: p.LeaderEpoch(), PartitionEpoch: p.PartitionEpoch(), NewISR: isr})
		props = append(props, p)
	}
	if len(changes) == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res := m.repl.cluster.ProposeISR(pctx, changes)
	for i, r := range res {
		if r.Err != nil {
			// A replica that fetches but may not join yet (still fenced after a restart) is
			// refused until it is unfenced: expected, so not worth a warning each time.
			lvl := slog.LevelWarn
			if errors.Is(r.Err, controller.ErrIneligibleReplica) {
				lvl = slog.LevelDebug
			}
			m.lg.Log(ctx, lvl, "ISR change refused", "topic", props[i].Topic, "partition", props[i].Index, "err", r.Err)
			props[i].ISRProposalFailed()
		}
	}
}

// closeFetchers stops every fetcher (at Close).
func (m *Manager) closeFetchers() {
	m.repl.mu.Lock()
	defer m.repl.mu.Unlock()
	for id, f := range m.repl.mu.fetchers {
		f.close()
		delete(m.repl.mu.fetchers, id)
	}
}

// LeaderUnreachable reports whether this node follows partitions of leader and its fetch
// requests to it have been failing (refused or broken connections): the leader is most
// likely gone, even though the controller has not fenced it yet.
func (m *Manager) LeaderUnreachable(leader int32) bool {
	m.repl.mu.Lock()
	defer m.repl.mu.Unlock()
	for k, f := range m.repl.mu.fetchers {
		if k.leader == leader && f.failingSince.Load() != 0 {
			return true
		}
	}
	return false
}
