package streams

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// stateDir is one instance's state.dir for one application, laid out as Kafka Streams lays
// out its own:
//
//	<state.dir>/<application.id>/<task id>/<store>/   one Pebble database per persistent store
//	<state.dir>/<application.id>/<task id>/.checkpoint  changelog offsets the stores reflect
//
// A checkpoint line "<offset> <store>" says that the store holds every changelog record
// before offset, durably; restoring resumes there. Under at_least_once the file is rewritten
// after every commit that moved an offset. Under exactly_once_v2 a store may hold writes of
// an open transaction, so the file is deleted when the task opens and written only when the
// task closes with nothing uncommitted: after a crash there is no checkpoint, and a store
// without one is wiped and restored in full.
//
// Immutable after construction; its methods touch only the directories of the task they are
// given, so each is called from the goroutine that owns that task.
type stateDir struct {
	root        string // <state.dir>/<application.id>
	eos         bool
	defaultType StoreType
	log         *slog.Logger
}

// diskStore is the on-disk side of one persistent store instance.
type diskStore struct {
	kv   *pebbleKV
	ckpt int64 // offset read from the checkpoint when the task opened; -1: none
}

const checkpointName = ".checkpoint"
const checkpointHeader = "poste-streams-checkpoint 1"

func newStateDir(stateDirRoot, app string, eos bool, def StoreType, log *slog.Logger) *stateDir {
	return &stateDir{root: filepath.Join(stateDirRoot, app), eos: eos, defaultType: def, log: log}
}

// persistent reports whether spec's instances live on disk.
func (d *stateDir) persistent(spec *storeSpec) bool {
	if d == nil || spec.global {
		return false
	}
	return spec.typ == Persistent || (spec.typ == DefaultStore && d.defaultType == Persistent)
}

func (d *stateDir) taskDir(id TaskID) string { return filepath.Join(d.root, id.String()) }

// openTask creates the task's directory and reads its checkpoint; under exactly_once_v2 it
// then deletes the file, so that a crash from here on leaves the stores unchecked.
func (d *stateDir) openTask(id TaskID) (map[string]int64, error) {
	dir := d.taskDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStateStore, err)
	}
	path := filepath.Join(dir, checkpointName)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrStateStore, err)
	}
	ck, perr := parseCheckpoint(b)
	if perr != nil {
		d.log.Warn("streams: ignoring unreadable checkpoint; its stores are restored in full", "task", id.String(), "err", perr)
		ck = map[string]int64{}
	}
	if d.eos {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrStateStore, err)
		}
		if err := syncDir(dir); err != nil {
			return nil, err
		}
	}
	return ck, nil
}

// openStore opens the task's database for store.
func (d *stateDir) openStore(id TaskID, store string) (*diskStore, error) {
	kv, err := openPebbleKV(filepath.Join(d.taskDir(id), store), d.log)
	if err != nil {
		return nil, err
	}
	return &diskStore{kv: kv, ckpt: -1}, nil
}

// writeCheckpoint replaces the task's checkpoint file atomically (write, fsync, rename,
// fsync the directory).
func (d *stateDir) writeCheckpoint(id TaskID, offsets map[string]int64) error {
	dir := d.taskDir(id)
	tmp := filepath.Join(dir, checkpointName+".tmp")
	f, err := os.Create(tmp)
	if err == nil {
		_, err = f.Write(formatCheckpoint(offsets))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, checkpointName))
	}
	if err != nil {
		return fmt.Errorf("%w: checkpoint of task %s: %w", ErrStateStore, id, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err == nil {
		err = f.Sync()
		_ = f.Close()
	}
	if err != nil {
		return fmt.Errorf("%w: sync %s: %w", ErrStateStore, dir, err)
	}
	return nil
}

func formatCheckpoint(offsets map[string]int64) []byte {
	var b bytes.Buffer
	b.WriteString(checkpointHeader + "\n")
	for _, s := range sortedKeys(offsets) {
		fmt.Fprintf(&b, "%d %s\n", offsets[s], s)
	}
	return b.Bytes()
}

func parseCheckpoint(b []byte) (map[string]int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	if !sc.Scan() || sc.Text() != checkpointHeader {
		return nil, fmt.Errorf("%w: bad checkpoint header", ErrStateStore)
	}
	out := map[string]int64{}
	for sc.Scan() {
		off, store, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil || n < 0 || store == "" {
			return nil, fmt.Errorf("%w: bad checkpoint line %q", ErrStateStore, sc.Text())
		}
		out[store] = n
	}
	return out, sc.Err()
}

// wipe empties the store by deleting its database and creating a new one.
func (s *pebbleKV) wipe(log *slog.Logger) error {
	if s.db != nil {
		_ = s.db.Close()
		s.db = nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("%w: wipe %s: %w", ErrStateStore, s.dir, err)
	}
	db, err := pebble.Open(s.dir, &pebble.Options{Logger: pebbleLogger{log}})
	if err != nil {
		return fmt.Errorf("%w: open %s: %w", ErrStateStore, s.dir, err)
	}
	s.db, s.failure = db, nil
	return nil
}

// checkpointOffsets lists the offsets the task's persistent logged stores reflect; ok is
// false when one of them is unknown.
func (t *task) checkpointOffsets() (map[string]int64, bool) {
	m := map[string]int64{}
	for name, si := range t.stores {
		if si.disk == nil || si.changelog == "" {
			continue
		}
		pos := si.pos.Load()
		if pos < 0 {
			return nil, false
		}
		m[name] = pos
	}
	return m, true
}

// checkpoint makes the task's persistent stores durable and records the changelog offsets
// they reflect, unless nothing moved since the last checkpoint. Task goroutine only.
func (t *task) checkpoint() error {
	if t.state == nil {
		return nil
	}
	offs, ok := t.checkpointOffsets()
	if !ok || len(offs) == 0 || maps.Equal(offs, t.saved) {
		return nil
	}
	for _, si := range t.stores {
		if si.disk != nil {
			if err := si.disk.kv.sync(); err != nil {
				return err
			}
		}
	}
	if err := t.state.writeCheckpoint(t.id, offs); err != nil {
		return err
	}
	t.saved = offs
	return nil
}

// dirty reports whether any store was written since the last committed transaction.
func (t *task) dirty() bool {
	for _, si := range t.stores {
		if si.dirty {
			return true
		}
	}
	return false
}

// markCommitted records that everything written so far is committed (exactly_once_v2).
func (t *task) markCommitted() {
	for _, si := range t.stores {
		si.dirty = false
	}
}

// closeStores closes the task's stores, first checkpointing the persistent ones when
// checkpoint is set and the task holds nothing uncommitted.
func (t *task) closeStores(checkpoint bool) error {
	t.dropCaches()
	var first error
	if checkpoint && t.state != nil && !(t.state.eos && t.dirty()) {
		first = t.checkpoint()
	}
	for _, si := range t.stores {
		if err := si.kv.close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// dropCheckpoint deletes the task's checkpoint file if there is one (a standby task becoming
// active under exactly_once_v2: from now on its stores may hold uncommitted writes).
func (d *stateDir) dropCheckpoint(id TaskID) error {
	dir := d.taskDir(id)
	err := os.Remove(filepath.Join(dir, checkpointName))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStateStore, err)
	}
	return syncDir(dir)
}

// checkpointedTasks lists the tasks whose directory holds a checkpoint: state this instance
// can resume from, which the balancer prefers to place on it. A missing or unreadable
// state directory lists nothing.
func (d *stateDir) checkpointedTasks() []TaskID {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		return nil
	}
	var ids []TaskID
	for _, e := range entries {
		id, ok := parseTaskID(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(d.root, e.Name(), checkpointName)); err == nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// parseTaskID reads a task directory's name, "<sub-topology>_<partition>".
func parseTaskID(s string) (TaskID, bool) {
	a, b, ok := strings.Cut(s, "_")
	sub, err1 := strconv.ParseUint(a, 10, 30)
	p, err2 := strconv.ParseUint(b, 10, 31)
	if !ok || err1 != nil || err2 != nil {
		return TaskID{}, false
	}
	return TaskID{int(sub), int32(p)}, true
}
