package replica

// Several log dirs: what each holds (DescribeLogDirs), taking a failed dir offline, and moving
// a partition between dirs (AlterReplicaLogDirs).
//
// A dir goes offline, as in Kafka, when any partition in it hits an I/O error (the partition
// reports it through partition.Config.OnStorageFailure) or cannot be opened: every partition
// of the dir is closed and answers KAFKA_STORAGE_ERROR, no new partition is placed there, and
// the other dirs keep serving. The state is in memory: a restart tries the dir again.

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"

	"github.com/poste-io/poste/internal/partition"
)

// Errors of log dir operations (mapped to Kafka codes by internal/api).
var (
	// ErrNoLogDir: every log dir is offline, so a partition cannot be placed. KAFKA_STORAGE_ERROR.
	ErrNoLogDir = fmt.Errorf("%w: no online log dir", partition.ErrStorage)
	// ErrLogDirNotFound: a path that is not one of log.dirs. LOG_DIR_NOT_FOUND.
	ErrLogDirNotFound = errors.New("not a configured log dir")
	// ErrLogDirOffline: the dir named is offline. KAFKA_STORAGE_ERROR.
	ErrLogDirOffline = fmt.Errorf("%w: log dir offline", partition.ErrStorage)
	// ErrMoving: the partition is being copied to another log dir and is briefly unavailable.
	// NOT_LEADER_OR_FOLLOWER, which clients retry after refreshing metadata.
	ErrMoving = errors.New("partition moving between log dirs")
)

// Suffixes of directories a move leaves while it runs: the copy being built, and the old
// copy set aside before it is removed. Both are removed at start if a crash left them.
const (
	moveSuffix    = ".move"
	discardSuffix = ".discard"
)

func isMoveLeftover(name string) bool {
	return strings.HasSuffix(name, moveSuffix) || strings.HasSuffix(name, discardSuffix)
}

// LogDir describes one configured log dir.
type LogDir struct {
	Path string
	// Err is why the dir is offline; nil when it serves.
	Err error
	// TotalBytes and UsableBytes are the filesystem's size and the space left to this process,
	// -1 when unknown (an in-memory filesystem, or an offline dir).
	TotalBytes, UsableBytes int64
	// Partitions are the partitions hosted in the dir, by topic and index.
	Partitions []LogDirPartition
}

// LogDirPartition is one partition of a log dir and the size of its segments.
type LogDirPartition struct {
	TP
	Size int64
}

// LogDirs describes every configured log dir in configuration order.
func (m *Manager) LogDirs() []LogDir {
	m.mu.RLock()
	out := make([]LogDir, len(m.cfg.LogDirs))
	index := make(map[string]int, len(out))
	for i, d := range m.cfg.LogDirs {
		d = filepath.Clean(d)
		out[i] = LogDir{Path: d, Err: m.mu.offline[d], TotalBytes: -1, UsableBytes: -1}
		index[d] = i
	}
	for tp, p := range m.mu.parts {
		if i, ok := index[filepath.Dir(m.mu.dirs[tp])]; ok {
			out[i].Partitions = append(out[i].Partitions, LogDirPartition{TP: tp, Size: p.LogSize()})
		}
	}
	m.mu.RUnlock()
	for i := range out {
		ps := out[i].Partitions
		sort.Slice(ps, func(a, b int) bool {
			if ps[a].Topic != ps[b].Topic {
				return ps[a].Topic < ps[b].Topic
			}
			return ps[a].Partition < ps[b].Partition
		})
		if out[i].Err == nil && m.osFS() {
			out[i].TotalBytes, out[i].UsableBytes = diskSpace(out[i].Path)
		}
	}
	return out
}

// isOffline reports whether the log dir d is offline.
func (m *Manager) isOffline(d string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, off := m.mu.offline[filepath.Clean(d)]
	return off
}

// inOfflineDirLocked reports whether tp's last known directory is in an offline log dir.
func (m *Manager) inOfflineDirLocked(tp TP) bool {
	dir, ok := m.mu.dirs[tp]
	if !ok {
		return false
	}
	_, off := m.mu.offline[filepath.Dir(dir)]
	return off
}

// takeDirOffline marks the log dir root offline after err and closes its partitions, which
// from then on answer KAFKA_STORAGE_ERROR. A root that is not a configured dir, or is already
// offline, is left alone. Safe from any goroutine.
func (m *Manager) takeDirOffline(root string, err error) {
	root = filepath.Clean(root)
	m.mu.Lock()
	configured := false
	for _, d := range m.cfg.LogDirs {
		configured = configured || filepath.Clean(d) == root
	}
	if _, off := m.mu.offline[root]; off || !configured {
		m.mu.Unlock()
		return
	}
	m.mu.offline[root] = fmt.Errorf("%w: %v", partition.ErrStorage, err)
	var closing []*partition.Partition
	for tp, dir := range m.mu.dirs {
		if filepath.Dir(dir) != root {
			continue
		}
		if p, ok := m.mu.parts[tp]; ok {
			closing = append(closing, p)
			delete(m.mu.parts, tp)
		}
		m.mu.failed[tp] = fmt.Errorf("%w: log dir %s offline: %v", partition.ErrStorage, root, err)
	}
	online := len(m.cfg.LogDirs) - len(m.mu.offline)
	m.mu.Unlock()
	m.lg.Error("log dir offline after an I/O error; its partitions answer KAFKA_STORAGE_ERROR",
		"dir", root, "partitions", len(closing), "online_dirs", online, "err", err)
	for _, p := range closing {
		if err := p.Close(); err != nil {
			m.lg.Warn("closing partition of offline log dir", "topic", p.Topic, "partition", p.Index, "err", err)
		}
	}
}

// MoveReplica moves a hosted partition to the log dir dest (AlterReplicaLogDirs). The
// partition is closed, its files are copied into dest and synced, the copy is switched in
// with a rename, the old copy is set aside and removed, and the partition reopens from dest.
// Meanwhile its requests answer ErrMoving (retriable), for as long as the copy takes. A
// failure before the switch leaves the partition where it was. Moving to its current dir
// does nothing.
func (m *Manager) MoveReplica(topic string, index int32, dest string) error {
	tp := TP{topic, index}
	dest = filepath.Clean(dest)
	m.mu.Lock()
	configured := false
	for _, d := range m.cfg.LogDirs {
		configured = configured || filepath.Clean(d) == dest
	}
	p, hosted := m.mu.parts[tp]
	src := m.mu.dirs[tp]
	_, destOff := m.mu.offline[dest]
	switch {
	case !configured:
		m.mu.Unlock()
		return ErrLogDirNotFound
	case destOff:
		m.mu.Unlock()
		return ErrLogDirOffline
	case !hosted:
		err, failed := m.mu.failed[tp]
		moving := m.mu.moving[tp]
		m.mu.Unlock()
		switch {
		case failed:
			return err
		case moving:
			return ErrMoving
		}
		return ErrNotHosted
	case filepath.Dir(src) == dest:
		m.mu.Unlock()
		return nil
	}
	delete(m.mu.parts, tp)
	m.mu.moving[tp] = true
	m.mu.Unlock()

	id, epoch := p.ID, p.LeaderEpoch()
	cfg := m.topicConfig(topic)
	m.lg.Info("moving partition to another log dir", "topic", topic, "partition", index, "from", src, "to", dest)
	if err := p.Close(); err != nil {
		m.lg.Warn("closing partition before a move", "topic", topic, "partition", index, "err", err)
	}
	final := filepath.Join(dest, dirName(tp))
	moveErr := m.copyDir(src, final)
	dir := final
	if moveErr != nil {
		dir = src
		m.lg.Error("moving partition failed; it stays where it was", "topic", topic, "partition", index, "err", moveErr)
	} else if err := m.discardDir(src); err != nil {
		// The new copy is in place; the old one is set aside on the next start at the latest.
		m.lg.Warn("removing the old copy of a moved partition failed", "dir", src, "err", err)
	}
	np, _, err := m.openAt(tp, dir, id, epoch, cfg)
	m.mu.Lock()
	delete(m.mu.moving, tp)
	if err != nil {
		m.mu.failed[tp] = fmt.Errorf("%w: %v", partition.ErrStorage, err)
	} else {
		m.mu.parts[tp] = np
	}
	m.mu.dirs[tp] = dir
	m.mu.Unlock()
	if err != nil {
		m.takeDirOffline(filepath.Dir(dir), err)
		return fmt.Errorf("%w: %v", partition.ErrStorage, err)
	}
	if moveErr != nil {
		return fmt.Errorf("%w: %v", partition.ErrStorage, moveErr)
	}
	return nil
}

// topicConfig is the topic's configs in the last applied image.
func (m *Manager) topicConfig(topic string) map[string]string {
	if img := m.image.Load(); img != nil {
		return img.TopicConfigs(topic)
	}
	return nil
}

// copyDir copies the files of src into final through a temporary sibling directory,
// syncing every file and both directories, then renames it into place.
func (m *Manager) copyDir(src, final string) error {
	tmp := final + moveSuffix
	if err := m.fs.RemoveAll(tmp); err != nil {
		return err
	}
	if err := m.fs.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	names, err := m.fs.List(src)
	if err == nil {
		for _, name := range names {
			if err = m.copyFile(filepath.Join(src, name), filepath.Join(tmp, name)); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = m.fs.SyncDir(tmp)
	}
	if err == nil {
		err = m.fs.Rename(tmp, final)
	}
	if err == nil {
		err = m.fs.SyncDir(filepath.Dir(final))
	}
	if err != nil {
		_ = m.fs.RemoveAll(tmp)
	}
	return err
}

func (m *Manager) copyFile(from, to string) error {
	in, err := m.fs.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := m.fs.Create(to)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, io.NewSectionReader(in, 0, 1<<62))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// discardDir removes a partition directory: renamed aside first, so that a crash midway never
// leaves a half-deleted directory under the partition's name.
func (m *Manager) discardDir(dir string) error {
	aside := dir + discardSuffix
	if err := m.fs.RemoveAll(aside); err != nil {
		return err
	}
	if err := m.fs.Rename(dir, aside); err != nil {
		return err
	}
	if err := m.fs.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return m.fs.RemoveAll(aside)
}
