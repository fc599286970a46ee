package partition

// Log lifecycle: DeleteRecords, retention and run-time reconfiguration.

import (
	"errors"

	plog "github.com/poste-io/poste/internal/log"
)

// Retention is the part of a topic's configuration that the retention cleaner applies.
type Retention struct {
	// Delete is set when cleanup.policy holds "delete"; without it only segments below the
	// log start offset (DeleteRecords) are removed.
	Delete bool
	// Ms and Bytes are retention.ms and retention.bytes; negative means unlimited.
	Ms, Bytes int64
	// Compact is set when cleanup.policy holds "compact"; the other fields are the topic's
	// compaction settings (see Partition.Compact).
	Compact                                                   bool
	DeleteRetentionMs, MinCompactionLagMs, MaxCompactionLagMs int64
	MinCleanableDirtyRatio                                    float64
}

// Reconfigure applies a changed topic configuration without reopening the log: validation,
// recompression and retention take effect for the next operation, segment rolling from the
// next append. The flush policy, producer expiry and logger fixed at Open are kept.
func (p *Partition) Reconfigure(cfg Config) {
	cfg.FlushPolicy, cfg.FlushInterval = p.cfg.FlushPolicy, p.cfg.FlushInterval
	cfg.ProducerIDExpiration, cfg.Logger = p.cfg.ProducerIDExpiration, p.cfg.Logger
	cfg.Log.Logger = p.lg
	p.dyn.Store(&cfg)
	p.log.Reconfigure(cfg.Log)
}

// DeleteRecords moves the log start offset to before (DeleteRecords) on a leader: -1 means the high
// watermark; an offset past the high watermark is ErrOffsetOutOfRange. The new start is
// durable when it returns; it is the low watermark reported to the client. Segments wholly
// below it are removed after file.delete.delay.ms.
func (p *Partition) DeleteRecords(before int64) (int64, error) {
	if p.failed.Load() {
		return 0, ErrStorage
	}
	if !p.leader.Load() {
		// Only a leader moves the log start; followers learn it from their leader.
		return p.log.StartOffset(), ErrNotLeader
	}
	hw := p.hw.Load()
	if before == -1 {
		before = hw
	}
	if before < 0 || before > hw {
		return p.log.StartOffset(), ErrOffsetOutOfRange
	}
	start, err := p.log.AdvanceStartOffset(before)
	if err != nil {
		if errors.Is(err, plog.ErrOffsetOutOfRange) {
			return start, ErrOffsetOutOfRange
		}
		p.fail(err)
		return start, ErrStorage
	}
	p.mu.Lock()
	p.dropSnapshotsBelowLocked(start)
	p.mu.Unlock()
	return start, nil
}

// FollowLogStart moves a follower's log start offset up to its leader's (which DeleteRecords
// or retention moved), never past this replica's high watermark, so a record deleted on the
// leader does not come back when this replica leads. Only followers call it.
func (p *Partition) FollowLogStart(leaderStart int64) error {
	if p.failed.Load() {
		return ErrStorage
	}
	if p.leader.Load() {
		return ErrNotLeader
	}
	target := min(leaderStart, p.hw.Load())
	if target <= p.log.StartOffset() {
		return nil
	}
	start, err := p.log.AdvanceStartOffset(target)
	if err != nil {
		if errors.Is(err, plog.ErrOffsetOutOfRange) {
			return ErrOffsetOutOfRange
		}
		p.fail(err)
		return ErrStorage
	}
	p.mu.Lock()
	p.dropSnapshotsBelowLocked(start)
	p.mu.Unlock()
	return nil
}

// EnforceRetention rolls the active segment if segment.ms says so, then removes the old
// segments that retention.ms, retention.bytes or the log start offset condemn, never at or
// above the high watermark, and the files of segments removed file.delete.delay.ms ago. It
// is called by the retention cleaner; an I/O error fails the partition.
func (p *Partition) EnforceRetention() (plog.RetentionResult, error) {
	if p.failed.Load() {
		return plog.RetentionResult{}, ErrStorage
	}
	if err := p.log.MaybeRoll(); err != nil {
		return plog.RetentionResult{}, p.retentionError(err)
	}
	r := p.dyn.Load().Retention
	pol := plog.RetentionPolicy{RetentionMs: -1, RetentionBytes: -1, Limit: p.hw.Load()}
	if r.Delete {
		pol.RetentionMs, pol.RetentionBytes = r.Ms, r.Bytes
	}
	res, err := p.log.EnforceRetention(pol)
	// Either may have rolled with no append since to take the snapshot.
	p.mu.Lock()
	p.maybeSnapshotLocked()
	p.dropSnapshotsBelowLocked(p.log.StartOffset())
	p.mu.Unlock()
	if err != nil {
		return res, p.retentionError(err)
	}
	if res.Deleted > 0 {
		p.lg.Info("retention removed segments", "segments", res.Deleted, "bytes", res.Bytes, "log_start_offset", p.log.StartOffset())
	}
	return res, nil
}

func (p *Partition) retentionError(err error) error {
	if errors.Is(err, plog.ErrClosed) {
		return ErrClosed
	}
	p.fail(err)
	return ErrStorage
}

// LogSize is the size in bytes of the partition's segments.
func (p *Partition) LogSize() int64 { return p.log.Size() }

// Dir is the partition's log directory.
func (p *Partition) Dir() string { return p.log.Dir() }
