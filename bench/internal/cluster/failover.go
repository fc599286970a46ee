package cluster

import (
	"slices"
	"sync"
	"time"
)

// Send is one produced record as the failover producer saw it: when
// Produce was called and when its promise ran, with the promise's error.
// Acked is zero while the record is pending.
type Send struct {
	Sent  time.Time
	Acked time.Time
	Err   error
}

// AckLog records every record the failover producer sends and the outcome
// of each. The producer goroutine calls Sent, the client's promise goroutine
// Acked, and the driver Since; all may run at once.
type AckLog struct {
	mu struct {
		sync.Mutex
		sends []Send
	}
}

// Sent records a record about to be produced at t and returns its index.
func (l *AckLog) Sent(t time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.sends = append(l.mu.sends, Send{Sent: t})
	return len(l.mu.sends) - 1
}

// Acked records the outcome of record i at t.
func (l *AckLog) Acked(i int, t time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.sends[i].Acked, l.mu.sends[i].Err = t, err
}

// Since copies the records sent at or after from, and before them those
// still pending or completed after from: what Measure needs about one kill.
// It relies on the producer's order: records are sent in order and, all
// going to one partition, acknowledged in order, so the walk back stops at
// the first record completed before from.
func (l *AckLog) Since(from time.Time) []Send {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.mu.sends
	i, _ := slices.BinarySearchFunc(s, from, func(x Send, t time.Time) int { return x.Sent.Compare(t) })
	for i > 0 && (s[i-1].Acked.IsZero() || s[i-1].Acked.After(from)) {
		i--
	}
	return slices.Clone(s[i:])
}

// Totals counts every record: acknowledged, failed and still pending.
func (l *AckLog) Totals() (acked, failed, pending int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.mu.sends {
		switch {
		case s.Acked.IsZero():
			pending++
		case s.Err != nil:
			failed++
		default:
			acked++
		}
	}
	return acked, failed, pending
}

// Errors lists the distinct errors records failed with, in first-seen order.
func (l *AckLog) Errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.mu.sends {
		if s.Err != nil && !slices.Contains(out, s.Err.Error()) {
			out = append(out, s.Err.Error())
		}
	}
	return out
}

// Outage is what the acknowledgements say about one kill at Kill.
type Outage struct {
	// FirstNewAck is from the kill to the acknowledgement of the first
	// record sent after it (the earliest such acknowledgement); 0 if none yet.
	FirstNewAck time.Duration
	// FirstAnyAck is from the kill to the earliest successful
	// acknowledgement after it, whenever its record was sent; 0 if none yet.
	FirstAnyAck time.Duration
	// Failed counts records completed with an error after the kill.
	Failed int
	// InFlight counts records sent before the kill and not acknowledged
	// by then: the ones the old leader left unanswered.
	InFlight int
}

// Measure computes the Outage of a kill at kill from sends (every record
// that matters, as AckLog.Since returns them).
func Measure(sends []Send, kill time.Time) Outage {
	var o Outage
	for _, s := range sends {
		if s.Sent.Before(kill) && (s.Acked.IsZero() || s.Acked.After(kill)) {
			o.InFlight++
		}
		if s.Acked.IsZero() || !s.Acked.After(kill) {
			continue
		}
		if s.Err != nil {
			o.Failed++
			continue
		}
		d := s.Acked.Sub(kill)
		if o.FirstAnyAck == 0 || d < o.FirstAnyAck {
			o.FirstAnyAck = d
		}
		if s.Sent.After(kill) && (o.FirstNewAck == 0 || d < o.FirstNewAck) {
			o.FirstNewAck = d
		}
	}
	return o
}

// Dist summarizes a sample of durations by nearest rank.
type Dist struct {
	N                  int
	Min, P50, P90, Max time.Duration
	Sorted             []time.Duration
}

// Summarize sorts a copy of xs and takes its nearest-rank percentiles.
func Summarize(xs []time.Duration) Dist {
	s := slices.Clone(xs)
	slices.Sort(s)
	d := Dist{N: len(s), Sorted: s}
	if len(s) == 0 {
		return d
	}
	d.Min, d.Max = s[0], s[len(s)-1]
	d.P50, d.P90 = Rank(s, 50), Rank(s, 90)
	return d
}

// Rank is the nearest-rank p-th percentile (0 < p <= 100) of sorted, or 0
// when sorted is empty.
func Rank(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	r := int(p/100*float64(len(sorted)) + 0.999999999)
	return sorted[min(max(r, 1), len(sorted))-1]
}

// MedianFloat is the median of xs (the mean of the middle two for an even
// count), 0 for none.
func MedianFloat(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
