package partition

import (
	"errors"

	plog "github.com/poste-io/poste/internal/log"
)

// Compact runs a compaction pass over the log if the topic's cleanup.policy holds "compact"
// and its settings say one is due (plog.Log.Compact). Only data below the last stable offset
// is cleaned, so undecided transactions and uncommitted data are never touched. It is called
// by the background cleaner, with its I/O throttle (nil: none). An I/O error while writing cleaned files leaves the log as it
// was and is returned; one while swapping them in fails the partition.
func (p *Partition) Compact(th *plog.Throttle) (plog.CompactionResult, error) {
	if p.failed.Load() {
		return plog.CompactionResult{}, ErrStorage
	}
	r := p.dyn.Load().Retention
	if !r.Compact {
		return plog.CompactionResult{}, nil
	}
	res, err := p.log.Compact(plog.CompactionPolicy{
		Limit:                  p.LastStableOffset(),
		DeleteRetentionMs:      r.DeleteRetentionMs,
		MinCompactionLagMs:     r.MinCompactionLagMs,
		MaxCompactionLagMs:     r.MaxCompactionLagMs,
		MinCleanableDirtyRatio: r.MinCleanableDirtyRatio,
		Throttle:               th,
	})
	switch {
	case errors.Is(err, plog.ErrClosed):
		return res, ErrClosed
	case err != nil:
		if _, serr := p.log.Sync(); serr != nil {
			// The log itself failed (a swap went wrong): take the partition offline.
			p.fail(serr)
			return res, ErrStorage
		}
		p.lg.Warn("compaction pass failed; the log is unchanged", "err", err)
		return res, err
	}
	if res.Segments > 0 {
		p.lg.Info("compacted log", "segments", res.Segments, "bytes_read", res.BytesRead,
			"bytes_written", res.BytesWritten, "records_removed", res.RecordsRemoved)
	}
	return res, nil
}
