package partition

// Leader epochs (KIP-101, KIP-320): which offset each leader epoch started at, kept in the
// partition directory's leader-epoch-checkpoint file in Kafka's format, and the
// OffsetForLeaderEpoch answer computed from it.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/poste-io/poste/internal/record"
	"github.com/poste-io/poste/internal/vfs"
)

// EpochCheckpointFile is the name of the leader-epoch checkpoint in a partition directory:
// a version line ("0"), a count line, then one "epoch startOffset" line per epoch.
const EpochCheckpointFile = "leader-epoch-checkpoint"

const epochCheckpointVersion = "0"

// EpochEntry says that leader epoch Epoch wrote its first batch at StartOffset. In a list of
// entries both fields strictly increase.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// ErrBadEpochCheckpoint: a leader-epoch checkpoint that does not parse or is not ordered.
var ErrBadEpochCheckpoint = errors.New("damaged leader-epoch checkpoint")

// SetLeaderEpoch moves the partition to a newer leader epoch (the metadata changed its
// leader). An epoch at or below the current one is ignored: epochs never go back. The
// checkpoint gets the new epoch with the first batch appended in it.
func (p *Partition) SetLeaderEpoch(epoch int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if epoch > p.mu.leaderEpoch {
		p.lg.Info("new leader epoch", "epoch", epoch, "previous", p.mu.leaderEpoch)
		p.mu.leaderEpoch = epoch
	}
}

// EpochEntries returns a copy of the leader-epoch entries (the checkpoint's content).
func (p *Partition) EpochEntries() []EpochEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.epochs)
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for a requested epoch: the largest known
// epoch ≤ requested and the offset at which it ended (the start of the next larger epoch, or
// the log end offset for the current epoch). A requested epoch older than every epoch still
// in the log answers that epoch with the log's first epoch start, as Kafka does, so that a
// client or follower resumes from data the leader still has; an undefined (negative) or
// unknown newer epoch answers -1, -1.
func (p *Partition) EndOffsetForEpoch(requested int32) (epoch int32, endOffset int64, err error) {
	if p.failed.Load() {
		return -1, -1, ErrStorage
	}
	p.mu.Lock()
	entries := p.mu.epochs
	cur := p.mu.leaderEpoch
	start, end := p.log.StartOffset(), p.log.EndOffset()
	p.mu.Unlock()
	epoch, endOffset = EndOffsetFor(entries, cur, requested, start, end)
	return epoch, endOffset, nil
}

// EndOffsetFor is the pure computation behind EndOffsetForEpoch over entries, the current
// leader epoch cur and the log's bounds. The current epoch counts as started at logEnd when
// no batch of it was written yet (a leader's epoch starts when it becomes leader). Entries
// wholly below logStart (removed by retention or DeleteRecords) are not known any more.
func EndOffsetFor(entries []EpochEntry, cur, requested int32, logStart, logEnd int64) (int32, int64) {
	if requested < 0 {
		return -1, -1
	}
	// Entries still in the log: drop those whose successor starts at or below logStart.
	for len(entries) > 1 && entries[1].StartOffset <= logStart {
		entries = entries[1:]
	}
	if len(entries) == 0 || cur > entries[len(entries)-1].Epoch {
		entries = append(slices.Clip(entries), EpochEntry{Epoch: cur, StartOffset: logEnd})
	}
	latest := entries[len(entries)-1]
	if requested == latest.Epoch {
		return requested, logEnd
	}
	hi := -1 // first entry with a larger epoch
	for i, e := range entries {
		if e.Epoch > requested {
			hi = i
			break
		}
	}
	switch {
	case hi < 0:
		return -1, -1
	case hi == 0:
		return requested, max(entries[0].StartOffset, logStart)
	default:
		return entries[hi-1].Epoch, entries[hi].StartOffset
	}
}

// assignEpochLocked records the current epoch's start at offset base if the batch about to be
// appended there is the epoch's first, making the checkpoint durable before the batch is
// written: a crash in between leaves an entry at the log end, which Open drops.
func (p *Partition) assignEpochLocked(base int64) error {
	e := p.mu.leaderEpoch
	if e < 0 || len(p.mu.epochs) > 0 && p.mu.epochs[len(p.mu.epochs)-1].Epoch >= e {
		return nil
	}
	next := append(slices.Clone(p.mu.epochs), EpochEntry{Epoch: e, StartOffset: base})
	if err := p.writeEpochCheckpoint(next); err != nil {
		return err
	}
	p.mu.epochs = next
	return nil
}

// fsys is the filesystem the partition's log lives on.
func (p *Partition) fsys() vfs.FS {
	if p.cfg.Log.FS == nil {
		return vfs.Default
	}
	return p.cfg.Log.FS
}

// observeEpochLocked folds a batch header met while scanning the log at Open into the
// entries: a batch of a newer epoch than the last entry starts that epoch. Like the other
// Open-time helpers it runs before the partition is shared, so mu need not be held.
func (p *Partition) observeEpochLocked(h *record.Header) {
	e := h.PartitionLeaderEpoch
	if e < 0 {
		return
	}
	if n := len(p.mu.epochs); n == 0 || p.mu.epochs[n-1].Epoch < e {
		p.mu.epochs = append(p.mu.epochs, EpochEntry{Epoch: e, StartOffset: h.BaseOffset})
	}
}

// loadEpochsLocked reads the checkpoint at Open, keeping only entries that start below the
// log end (an entry at or past it was written for a batch that never reached the disk, or
// the log's tail was cut by recovery). A missing or damaged file leaves no entries: the scan
// of the log that follows (and the producer-state snapshot, see snapshot.go) rebuilds them.
func (p *Partition) loadEpochsLocked() []EpochEntry {
	dir := p.log.Dir()
	_ = p.fsys().Remove(filepath.Join(dir, EpochCheckpointFile+".tmp"))
	entries, err := p.readEpochCheckpoint()
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.lg.Warn("rebuilding the leader-epoch checkpoint from the log", "err", err)
		}
		return nil
	}
	end := p.log.EndOffset()
	k := len(entries)
	for k > 0 && entries[k-1].StartOffset >= end {
		k--
	}
	if k < len(entries) {
		p.lg.Warn("dropping leader-epoch entries past the log end", "log_end_offset", end, "dropped", len(entries)-k)
	}
	p.mu.epochs = entries[:k]
	return entries
}

// finishEpochsLocked persists the entries rebuilt at Open when they differ from the file.
func (p *Partition) finishEpochsLocked(onDisk []EpochEntry) error {
	if slices.Equal(onDisk, p.mu.epochs) {
		return nil
	}
	return p.writeEpochCheckpoint(p.mu.epochs)
}

func (p *Partition) readEpochCheckpoint() ([]EpochEntry, error) {
	f, err := p.fsys().Open(filepath.Join(p.log.Dir(), EpochCheckpointFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	if n, err := f.ReadAt(buf, 0); n < len(buf) {
		return nil, err
	}
	return ParseEpochCheckpoint(buf)
}

// ParseEpochCheckpoint decodes a leader-epoch checkpoint, checking that epochs and start
// offsets strictly increase.
func ParseEpochCheckpoint(b []byte) ([]EpochEntry, error) {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 || lines[0] != epochCheckpointVersion {
		return nil, fmt.Errorf("%w: bad header", ErrBadEpochCheckpoint)
	}
	n, err := strconv.Atoi(lines[1])
	if err != nil || n < 0 || n != len(lines)-2 {
		return nil, fmt.Errorf("%w: count %q for %d entries", ErrBadEpochCheckpoint, lines[1], len(lines)-2)
	}
	entries := make([]EpochEntry, 0, n)
	for _, line := range lines[2:] {
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %q", ErrBadEpochCheckpoint, line)
		}
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		off, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || off < 0 {
			return nil, fmt.Errorf("%w: line %q", ErrBadEpochCheckpoint, line)
		}
		if k := len(entries); k > 0 && (entries[k-1].Epoch >= int32(e) || entries[k-1].StartOffset >= off) {
			return nil, fmt.Errorf("%w: entries out of order at %q", ErrBadEpochCheckpoint, line)
		}
		entries = append(entries, EpochEntry{Epoch: int32(e), StartOffset: off})
	}
	return entries, nil
}

// FormatEpochCheckpoint encodes entries in the checkpoint format.
func FormatEpochCheckpoint(entries []EpochEntry) []byte {
	b := make([]byte, 0, 8+len(entries)*16)
	b = append(b, epochCheckpointVersion+"\n"...)
	b = strconv.AppendInt(b, int64(len(entries)), 10)
	b = append(b, '\n')
	for _, e := range entries {
		b = strconv.AppendInt(b, int64(e.Epoch), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, e.StartOffset, 10)
		b = append(b, '\n')
	}
	return b
}

// writeEpochCheckpoint replaces the checkpoint atomically (see writeFileAtomic).
func (p *Partition) writeEpochCheckpoint(entries []EpochEntry) error {
	return writeFileAtomic(p.fsys(), p.log.Dir(), EpochCheckpointFile, FormatEpochCheckpoint(entries))
}
