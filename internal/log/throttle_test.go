package log

import (
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	if NewThrottle(0) != nil || NewThrottle(-1) != nil || NewThrottle(1e300) != nil {
		t.Fatal("no limit must give a nil throttle")
	}
	var nilT *Throttle
	nilT.Wait(1 << 30) // does not sleep or panic

	clock := time.Unix(1000, 0)
	var slept time.Duration
	th := NewThrottle(1000) // 1000 B/s
	th.now = func() time.Time { return clock }
	th.sleep = func(d time.Duration) { slept += d; clock = clock.Add(d) }
	th.Wait(500) // half the budget: at the start of the window, so half a second is due
	if slept != 500*time.Millisecond {
		t.Fatalf("after 500 B slept %v, want 500ms", slept)
	}
	th.Wait(500)
	if slept != time.Second {
		t.Fatalf("after 1000 B slept %v, want 1s", slept)
	}
	// Time that passed doing other work counts: no sleep is due.
	clock = clock.Add(3 * time.Second)
	slept = 0
	th.Wait(100)
	if slept != 100*time.Millisecond {
		t.Fatalf("new window: slept %v, want 100ms", slept)
	}
}
