package replica

import (
	"context"
	"errors"
	"time"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/partition"
)

// RetentionPause is how long the retention cleaner waits after a partition whose pass
// removed files before it moves on to the next: deleting segments is bursty metadata I/O
// (renames, unlinks that free blocks), and spreading it keeps produce and fetch latency flat.
const RetentionPause = 10 * time.Millisecond

// RunRetention is the retention cleaner: every interval it walks the hosted partitions one
// at a time and applies segment.ms, retention.ms, retention.bytes, the log start offset and
// file.delete.delay.ms (partition.EnforceRetention), then compacts the partitions of topics
// with cleanup.policy=compact (partition.Compact). Only one partition is worked on at once,
// and it pauses RetentionPause after each partition that did I/O, so the cleaner never takes
// more than a sliver of the disk from produce and fetch. It returns when ctx is done. Run it
// on one goroutine.
func (m *Manager) RunRetention(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.RetentionPass(ctx)
	}
}

// RetentionPass runs one pass of the retention cleaner over every hosted partition and
// returns the number of segments it removed from the logs.
func (m *Manager) RetentionPass(ctx context.Context) int {
	m.mu.RLock()
	parts := make([]*partition.Partition, 0, len(m.mu.parts))
	for _, p := range m.mu.parts {
		parts = append(parts, p)
	}
	m.mu.RUnlock()
	deleted := 0
	for _, p := range parts {
		if ctx.Err() != nil {
			return deleted
		}
		res, err := p.EnforceRetention()
		if err != nil && !errors.Is(err, partition.ErrClosed) {
			m.lg.Error("retention failed; partition offline", "topic", p.Topic, "partition", p.Index, "err", err)
		}
		deleted += res.Deleted
		// Compaction runs in the same pass, one partition at a time, so the cleaner's I/O
		// stays bounded to one partition's segments.
		cres, err := p.Compact(m.cleanerThrottle())
		if err != nil && !errors.Is(err, partition.ErrClosed) {
			m.lg.Warn("compaction failed", "topic", p.Topic, "partition", p.Index, "err", err)
		}
		if res.Deleted > 0 || res.Removed > 0 || cres.Segments > 0 || cres.Removed > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(RetentionPause):
			}
		}
	}
	return deleted
}

// cleanerThrottle is the cleaner's I/O budget, log.cleaner.io.max.bytes.per.second, shared by
// every partition's pass; it follows dynamic changes of the key.
func (m *Manager) cleanerThrottle() *plog.Throttle {
	rate := m.effective().CleanerIOMaxBytesPerSecond
	m.throttleMu.Lock()
	defer m.throttleMu.Unlock()
	if m.throttle == nil || m.throttleRate != rate {
		m.throttle, m.throttleRate = plog.NewThrottle(rate), rate
	}
	return m.throttle
}
