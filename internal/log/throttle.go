package log

import (
	"sync"
	"time"
)

// Throttle bounds a rate of bytes per second (log.cleaner.io.max.bytes.per.second): Wait
// sleeps just long enough that the bytes accounted so far never run ahead of the rate,
// measured over a window of one second, so a burst is paid for by a pause rather than
// spread evenly.
//
// A nil *Throttle does not throttle. Safe for concurrent use; callers sharing one Throttle
// share its budget.
type Throttle struct {
	rate  float64 // bytes per second
	sleep func(time.Duration)
	now   func() time.Time

	mu struct {
		sync.Mutex
		start time.Time // beginning of the current window
		bytes float64   // accounted since start
	}
}

// NewThrottle returns a throttle of bytesPerSec, or nil (no limit) when bytesPerSec is not
// positive or too large to matter.
func NewThrottle(bytesPerSec float64) *Throttle {
	if bytesPerSec <= 0 || bytesPerSec >= 1e15 {
		return nil
	}
	return &Throttle{rate: bytesPerSec, sleep: time.Sleep, now: time.Now}
}

// Wait accounts n bytes and sleeps if the rate is exceeded.
func (t *Throttle) Wait(n int) {
	if t == nil || n <= 0 {
		return
	}
	t.mu.Lock()
	now := t.now()
	if t.mu.start.IsZero() || now.Sub(t.mu.start) > time.Second {
		t.mu.start, t.mu.bytes = now, 0
	}
	t.mu.bytes += float64(n)
	due := t.mu.start.Add(time.Duration(t.mu.bytes / t.rate * float64(time.Second)))
	t.mu.Unlock()
	if d := due.Sub(now); d > 0 {
		t.sleep(d)
	}
}
