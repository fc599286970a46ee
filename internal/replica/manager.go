// Package replica decides which partitions this broker hosts and keeps them in step with the
// metadata image: it opens a partition's log when the image assigns it here, closes or deletes
// it when the image says so, and answers lookups from the request handlers.
package replica

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poste-io/poste/internal/config"
	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/metadata"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// metaFile is written in every partition directory: it names the topic id the data belongs
// to, so a topic deleted and re-created under the same name never inherits old data.
const metaFile = "partition.metadata"

// TP names a partition.
type TP struct {
	Topic     string
	Partition int32
}

// Manager hosts this broker's partitions.
//
// Invariants: parts holds exactly the partitions of the last applied image that are assigned
// to this node and opened successfully; a partition that failed to open is listed in failed
// (its requests answer KAFKA_STORAGE_ERROR), as is every partition of a log dir taken offline
// (logdirs.go), which is never reopened elsewhere; a partition being moved between log dirs
// is in moving only. Apply is called by one goroutine (the metadata watcher), in image order;
// Get, LogDirs and MoveReplica may be called from any goroutine at any time.
type Manager struct {
	nodeID int32
	cfg    *config.Broker
	fs     vfs.FS
	lg     *slog.Logger
	now    func() time.Time

	mu struct {
		sync.RWMutex
		parts  map[TP]*partition.Partition
		failed map[TP]error
		dirs   map[TP]string // data directory of each hosted partition, and of those of offline log dirs
		// offline holds the log dirs taken offline by an I/O error, with the cause (logdirs.go).
		offline map[string]error
		// moving holds the partitions AlterReplicaLogDirs is copying; they answer ErrMoving.
		moving map[TP]bool
	}

	// eff is cfg with the last applied image's dynamic broker configs over it.
	eff atomic.Pointer[config.Broker]
	// image is the last applied image.
	image atomic.Pointer[metadata.Image]

	repl replication // leader/follower roles and fetchers (roles.go)

	// throttle is the cleaner's I/O budget for throttleRate (retention.go); only the cleaner
	// goroutine uses it, throttleMu guards its replacement.
	throttleMu   sync.Mutex
	throttle     *plog.Throttle
	throttleRate float64

	applied   atomic.Uint64 // AppliedIndex of the last image Apply finished
	appliedMu sync.Mutex
	appliedCh chan struct{} // closed and replaced each time applied moves
}

// New returns a manager hosting nothing yet.
func New(nodeID int32, cfg *config.Broker, fs vfs.FS, lg *slog.Logger) *Manager {
	if fs == nil {
		fs = vfs.Default
	}
	m := &Manager{nodeID: nodeID, cfg: cfg, fs: fs, lg: lg, now: time.Now}
	m.mu.parts = make(map[TP]*partition.Partition)
	m.mu.failed = make(map[TP]error)
	m.mu.dirs = make(map[TP]string)
	m.mu.offline = make(map[string]error)
	m.mu.moving = make(map[TP]bool)
	m.appliedCh = make(chan struct{})
	return m
}

// WaitApplied waits until Apply has finished an image at or past index, so a request that
// changed the metadata (CreateTopics) answers only once its partitions are open.
func (m *Manager) WaitApplied(ctx context.Context, index uint64) error {
	for {
		m.appliedMu.Lock()
		ch := m.appliedCh
		m.appliedMu.Unlock()
		if m.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AppliedIndex is the metadata index of the last image Apply finished.
func (m *Manager) AppliedIndex() uint64 { return m.applied.Load() }

func (m *Manager) markApplied(index uint64) {
	m.applied.Store(index)
	m.appliedMu.Lock()
	close(m.appliedCh)
	m.appliedCh = make(chan struct{})
	m.appliedMu.Unlock()
}

// effective is the broker configuration in effect: static plus dynamic.
func (m *Manager) effective() *config.Broker {
	if b := m.eff.Load(); b != nil {
		return b
	}
	return m.cfg
}

// ErrNotHosted means the partition is not hosted here (unknown, or not assigned to this node).
// ErrNotReplica, which matches it, says more: the partition exists but this node holds no
// replica of it (NOT_LEADER_OR_FOLLOWER to clients, whose metadata is stale).
var (
	ErrNotHosted  = errors.New("partition not hosted here")
	ErrNotReplica = fmt.Errorf("%w: no replica on this broker", ErrNotHosted)
)

// Get returns the hosted partition, ErrNotHosted, or the error that took it offline.
func (m *Manager) Get(topic string, index int32) (*partition.Partition, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	tp := TP{topic, index}
	if p, ok := m.mu.parts[tp]; ok {
		return p, nil
	}
	if err, ok := m.mu.failed[tp]; ok {
		return nil, err
	}
	if m.mu.moving[tp] {
		return nil, ErrMoving
	}
	if img := m.image.Load(); img != nil {
		if t := img.Topic(topic); t != nil && index >= 0 && int(index) < len(t.Partitions) &&
			!contains(t.Partitions[index].Replicas, m.nodeID) {
			return nil, ErrNotReplica
		}
	}
	return nil, ErrNotHosted
}

// PartitionConfig derives a partition's configuration from the broker's and its topic's.
func PartitionConfig(b *config.Broker, topicCfg map[string]string, fs vfs.FS, lg *slog.Logger) partition.Config {
	t := b.TopicConfig(topicCfg)
	tsType := record.CreateTime
	if t.TimestampType == "LogAppendTime" {
		tsType = record.LogAppendTime
	}
	before, after := t.TimestampBeforeMaxMs, t.TimestampAfterMaxMs
	if before < 0 {
		before = math.MaxInt64
	}
	if after < 0 {
		after = math.MaxInt64
	}
	pc := partition.Config{
		Log: plog.Options{
			FS:                 fs,
			SegmentBytes:       t.SegmentBytes,
			SegmentMs:          t.SegmentMs,
			IndexIntervalBytes: t.IndexIntervalBytes,
			SegmentIndexBytes:  t.SegmentIndexBytes,
			Preallocate:        t.Preallocate,
			FileDeleteDelay:    time.Duration(t.FileDeleteDelayMs) * time.Millisecond,
		},
		Retention: partition.Retention{Delete: t.Delete, Ms: t.RetentionMs, Bytes: t.RetentionBytes,
			Compact: t.Compact, DeleteRetentionMs: t.DeleteRetentionMs, MinCompactionLagMs: t.MinCompactionLagMs,
			MaxCompactionLagMs: t.MaxCompactionLagMs, MinCleanableDirtyRatio: t.MinCleanableDirtyRatio},
		Validate: record.ValidateConfig{
			MaxBatchBytes:        int(t.MessageMaxBytes),
			TimestampType:        tsType,
			BeforeMaxMs:          before,
			AfterMaxMs:           after,
			RequireKeys:          strings.Contains(t.CleanupPolicy, "compact"),
			MaxDecompressedBytes: 64 << 20,
		},
		ProducerIDExpiration: time.Duration(b.ProducerIDExpirationMs) * time.Millisecond,
		Logger:               lg,
		NodeID:               b.NodeID,
		Replicated:           len(b.Voters) > 0,
	}
	if codec, ok := codecs[t.CompressionType]; ok {
		pc.Recompress, pc.Codec = true, codec
	}
	switch b.FlushPolicy {
	case "interval":
		pc.FlushPolicy = partition.FlushInterval
		pc.FlushInterval = time.Duration(b.FlushIntervalMs) * time.Millisecond
	case "never":
		pc.FlushPolicy = partition.FlushNever
	default:
		pc.FlushPolicy = partition.FlushAlways
	}
	return pc
}

// Apply brings the hosted partitions in line with next: partitions of removed topics are
// deleted, new partitions assigned here are opened (creating their directories). prev is nil
// on the first call, after the image has been replayed at start; that call also removes data
// directories of topics that no longer exist.
func (m *Manager) Apply(prev, next *metadata.Image) {
	want := make(map[TP]wanted)
	for _, t := range next.Topics() {
		for _, p := range t.Partitions {
			if !contains(p.Replicas, m.nodeID) {
				continue
			}
			want[TP{t.Name, p.ID}] = wanted{id: t.ID, epoch: p.LeaderEpoch, cfg: next.TopicConfigs(t.Name)}
		}
	}

	// Dynamic broker configs (topic defaults among them) apply over the static ones.
	eff := m.cfg.WithDynamic(next.DefaultBrokerConfigs(), next.BrokerConfigs(m.nodeID))
	brokerChanged := prev != nil && (!maps.Equal(prev.DefaultBrokerConfigs(), next.DefaultBrokerConfigs()) ||
		!maps.Equal(prev.BrokerConfigs(m.nodeID), next.BrokerConfigs(m.nodeID)))
	m.eff.Store(eff)
	m.image.Store(next)

	m.mu.Lock()
	var drop []*partition.Partition
	for tp, p := range m.mu.parts {
		if w, ok := want[tp]; ok && w.id == p.ID {
			// Roles and leader epochs are applied by applyRoles below. A config change takes effect without reopening the log.
			if brokerChanged || prev != nil && !maps.Equal(prev.TopicConfigs(tp.Topic), w.cfg) {
				p.Reconfigure(PartitionConfig(eff, w.cfg, m.fs, m.lg))
			}
			continue
		}
		drop = append(drop, p)
		delete(m.mu.parts, tp)
		delete(m.mu.dirs, tp)
	}
	for tp := range m.mu.failed {
		if _, ok := want[tp]; !ok {
			delete(m.mu.failed, tp)
			delete(m.mu.dirs, tp)
		}
	}
	m.mu.Unlock()
	for _, p := range drop {
		m.lg.Info("deleting partition", "topic", p.Topic, "partition", p.Index)
		if err := p.Delete(); err != nil {
			m.lg.Error("deleting partition data failed", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	}

	if prev == nil {
		m.removeOrphans(want)
	}

	tps := make([]TP, 0, len(want))
	m.mu.RLock()
	for tp := range want {
		// A partition of an offline log dir stays offline: opening it elsewhere would serve
		// an empty log in place of its data.
		if _, ok := m.mu.parts[tp]; !ok && !m.mu.moving[tp] && !m.inOfflineDirLocked(tp) {
			tps = append(tps, tp)
		}
	}
	m.mu.RUnlock()
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	for _, tp := range tps {
		w := want[tp]
		p, dir, err := m.open(tp, w)
		if err != nil && dir != "" {
			// Kafka's rule: an I/O error in a log dir takes the whole dir offline.
			m.takeDirOffline(filepath.Dir(dir), err)
		}
		m.mu.Lock()
		if err != nil {
			m.lg.Error("partition offline: cannot open its log", "topic", tp.Topic, "partition", tp.Partition, "err", err)
			m.mu.failed[tp] = fmt.Errorf("%w: %v", partition.ErrStorage, err)
			if dir != "" {
				m.mu.dirs[tp] = dir
			}
		} else {
			m.mu.parts[tp] = p
			m.mu.dirs[tp] = dir
			delete(m.mu.failed, tp)
		}
		m.mu.Unlock()
	}
	m.applyRoles(next)
	m.markApplied(next.AppliedIndex())
}

// codecs maps compression.type values other than "producer" to the codec batches are stored in.
var codecs = map[string]record.Compression{
	"uncompressed": record.None, "gzip": record.Gzip, "snappy": record.Snappy, "lz4": record.LZ4, "zstd": record.Zstd,
}

type wanted struct {
	id    [16]byte
	epoch int32
	cfg   map[string]string
}

func contains(s []int32, v int32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// dirName is Kafka's partition directory name.
func dirName(tp TP) string { return tp.Topic + "-" + strconv.Itoa(int(tp.Partition)) }

// open finds or creates the partition's directory and opens it. A directory holding another
// topic id's data (a deleted topic of the same name) is removed first.
func (m *Manager) open(tp TP, w wanted) (*partition.Partition, string, error) {
	dir, err := m.findDir(tp)
	if err != nil {
		return nil, dir, err
	}
	if dir != "" {
		id, err := m.readMeta(dir)
		if err != nil || id != w.id {
			m.lg.Warn("removing partition data of an older topic incarnation", "dir", dir)
			if err := m.fs.RemoveAll(dir); err != nil {
				return nil, dir, err
			}
			dir = ""
		}
	}
	if dir == "" {
		root, err := m.pickLogDir()
		if err != nil {
			return nil, "", err
		}
		dir = filepath.Join(root, dirName(tp))
		if err := m.fs.MkdirAll(dir, 0o755); err != nil {
			return nil, dir, err
		}
		if err := m.writeMeta(dir, w.id); err != nil {
			return nil, dir, err
		}
	}
	return m.openAt(tp, dir, w.id, w.epoch, w.cfg)
}

// openAt opens the partition in dir, reporting its storage failures to takeDirOffline.
func (m *Manager) openAt(tp TP, dir string, id [16]byte, epoch int32, topicCfg map[string]string) (*partition.Partition, string, error) {
	cfg := PartitionConfig(m.effective(), topicCfg, m.fs, m.lg)
	root := filepath.Dir(dir)
	cfg.OnStorageFailure = func(err error) { m.takeDirOffline(root, err) }
	p, err := partition.Open(dir, tp.Topic, id, tp.Partition, epoch, cfg)
	return p, dir, err
}

// findDir returns the existing directory of tp in any online log dir, or "". A dir that
// cannot even be looked at is an I/O error (returned with the path that failed).
func (m *Manager) findDir(tp TP) (string, error) {
	found := ""
	for _, d := range m.cfg.LogDirs {
		if m.isOffline(d) {
			continue
		}
		dir := filepath.Join(d, dirName(tp))
		_, err := m.fs.Stat(dir)
		switch {
		case err == nil && found == "":
			found = dir
		case err == nil:
			// A move interrupted after its copy was switched in and before the old copy was
			// set aside: nothing was written to either since, so the first one is kept.
			m.lg.Warn("partition directory present in two log dirs; removing the second", "kept", found, "removed", dir)
			if err := m.discardDir(dir); err != nil {
				return dir, err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return dir, err
		}
	}
	return found, nil
}

// pickLogDir places a new partition in the online log dir hosting the fewest partitions, as
// Kafka does; ErrNoLogDir when every dir is offline.
func (m *Manager) pickLogDir() (string, error) {
	counts := make(map[string]int)
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, d := range m.mu.dirs {
		counts[filepath.Dir(d)]++
	}
	best := ""
	for _, d := range m.cfg.LogDirs {
		d = filepath.Clean(d)
		if _, off := m.mu.offline[d]; off {
			continue
		}
		if best == "" || counts[d] < counts[best] {
			best = d
		}
	}
	if best == "" {
		return "", ErrNoLogDir
	}
	return best, nil
}

func (m *Manager) writeMeta(dir string, id [16]byte) error {
	f, err := m.fs.Create(filepath.Join(dir, metaFile))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "version: 0\ntopic_id: %s\n", base64.RawURLEncoding.EncodeToString(id[:]))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = m.fs.SyncDir(filepath.Dir(dir))
	}
	return err
}

func (m *Manager) readMeta(dir string) ([16]byte, error) {
	var id [16]byte
	f, err := m.fs.Open(filepath.Join(dir, metaFile))
	if err != nil {
		return id, err
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	for _, line := range strings.Split(string(buf[:n]), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(b) != 16 {
				return id, fmt.Errorf("bad topic id in %s", metaFile)
			}
			copy(id[:], b)
			return id, nil
		}
	}
	return id, fmt.Errorf("no topic id in %s", metaFile)
}

// removeOrphans deletes partition directories that the image does not assign here (their
// topic was deleted while the broker was down, or its deletion was interrupted).
func (m *Manager) removeOrphans(want map[TP]wanted) {
	for _, d := range m.cfg.LogDirs {
		names, err := m.fs.List(d)
		if err != nil {
			continue
		}
		for _, name := range names {
			i := strings.LastIndexByte(name, '-')
			if i <= 0 {
				continue
			}
			dir := filepath.Join(d, name)
			if isMoveLeftover(name) {
				m.lg.Info("removing the leftover of an interrupted log dir move", "dir", dir)
				if err := m.fs.RemoveAll(dir); err != nil {
					m.lg.Error("removing move leftover failed", "dir", dir, "err", err)
				}
				continue
			}
			n, err := strconv.Atoi(name[i+1:])
			if err != nil || n < 0 {
				continue
			}
			if _, err := m.fs.Stat(filepath.Join(dir, metaFile)); err != nil {
				continue // not a partition directory of ours
			}
			if _, ok := want[TP{name[:i], int32(n)}]; ok {
				continue
			}
			m.lg.Info("removing data of a deleted partition", "dir", dir)
			if err := m.fs.RemoveAll(dir); err != nil {
				m.lg.Error("removing orphan partition data failed", "dir", dir, "err", err)
			}
		}
	}
}

// Close closes every hosted partition (each syncs its log).
func (m *Manager) Close() error {
	m.closeFetchers()
	m.mu.Lock()
	parts := m.mu.parts
	m.mu.parts = make(map[TP]*partition.Partition)
	m.mu.Unlock()
	var first error
	for _, p := range parts {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
