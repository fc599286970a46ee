package cluster

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestMeasure(t *testing.T) {
	boom := errors.New("boom")
	kill := at(100)
	tests := []struct {
		name  string
		sends []Send
		want  Outage
	}{
		{
			name: "in-flight records retried to the new leader, new records after",
			sends: []Send{
				{Sent: at(90), Acked: at(95)},    // done before the kill: ignored
				{Sent: at(98), Acked: at(1700)},  // in flight, acked by the new leader
				{Sent: at(99), Acked: at(1701)},  // in flight
				{Sent: at(101), Acked: at(1702)}, // first record sent after the kill
				{Sent: at(150), Acked: at(1710)},
			},
			want: Outage{FirstAnyAck: 1600 * time.Millisecond, FirstNewAck: 1602 * time.Millisecond, InFlight: 2},
		},
		{
			name: "an answer already on its way counts as any ack, not a new one",
			sends: []Send{
				{Sent: at(99), Acked: at(101)},
				{Sent: at(120), Acked: at(2100)},
			},
			want: Outage{FirstAnyAck: time.Millisecond, FirstNewAck: 2000 * time.Millisecond, InFlight: 1},
		},
		{
			name: "failures are counted, never taken for acknowledgements",
			sends: []Send{
				{Sent: at(99), Acked: at(500), Err: boom},
				{Sent: at(110), Acked: at(600), Err: boom},
				{Sent: at(120)}, // pending
			},
			want: Outage{Failed: 2, InFlight: 1},
		},
		{
			name:  "nothing acknowledged yet",
			sends: []Send{{Sent: at(99)}, {Sent: at(101)}},
			want:  Outage{InFlight: 1},
		},
	}
	for _, tt := range tests {
		if got := Measure(tt.sends, kill); got != tt.want {
			t.Errorf("%s: Measure = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestAckLogSince(t *testing.T) {
	var l AckLog
	// Acknowledgements come in order, as from one partition.
	for i, s := range []Send{
		{Sent: at(10), Acked: at(20)},
		{Sent: at(30), Acked: at(40)},
		{Sent: at(50), Acked: at(150)}, // in flight at 100
		{Sent: at(60)},                 // pending
		{Sent: at(110), Acked: at(160)},
	} {
		if got := l.Sent(s.Sent); got != i {
			t.Fatalf("Sent returned %d, want %d", got, i)
		}
		if !s.Acked.IsZero() {
			l.Acked(i, s.Acked, nil)
		}
	}
	got := l.Since(at(100))
	var sent []time.Time
	for _, s := range got {
		sent = append(sent, s.Sent)
	}
	if want := []time.Time{at(50), at(60), at(110)}; !slices.Equal(sent, want) {
		t.Errorf("Since(100) sent times = %v, want %v", sent, want)
	}
	if got := l.Since(at(5)); len(got) != 5 {
		t.Errorf("Since(5) returned %d records, want 5", len(got))
	}
	l.Acked(3, at(170), errors.New("x"))
	l.Sent(at(200))
	if a, f, p := l.Totals(); a != 4 || f != 1 || p != 1 {
		t.Errorf("Totals = %d, %d, %d; want 4, 1, 1", a, f, p)
	}
	if e := l.Errors(); len(e) != 1 || e[0] != "x" {
		t.Errorf("Errors = %v", e)
	}
}

func TestAckLogConcurrent(t *testing.T) {
	var l AckLog
	var wg sync.WaitGroup
	idx := make(chan int, 1000)
	wg.Go(func() {
		defer close(idx)
		for range 1000 {
			idx <- l.Sent(time.Now())
		}
	})
	wg.Go(func() {
		for i := range idx {
			l.Acked(i, time.Now(), nil)
		}
	})
	wg.Go(func() {
		for range 100 {
			Measure(l.Since(t0), t0)
		}
	})
	wg.Wait()
	if a, f, p := l.Totals(); a != 1000 || f != 0 || p != 0 {
		t.Errorf("Totals = %d, %d, %d", a, f, p)
	}
}

func TestSummarize(t *testing.T) {
	d := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		in                 []time.Duration
		min, p50, p90, max time.Duration
	}{
		{in: nil},
		{in: d(7), min: d(7)[0], p50: d(7)[0], p90: d(7)[0], max: d(7)[0]},
		// 20 values 1..20 out of order: nearest rank p50 = 10th, p90 = 18th.
		{in: d(20, 1, 19, 2, 18, 3, 17, 4, 16, 5, 15, 6, 14, 7, 13, 8, 12, 9, 11, 10),
			min: d(1)[0], p50: d(10)[0], p90: d(18)[0], max: d(20)[0]},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		got := Summarize(tt.in)
		if got.N != len(tt.in) || got.Min != tt.min || got.P50 != tt.p50 || got.P90 != tt.p90 || got.Max != tt.max {
			t.Errorf("Summarize(%v) = %+v", tt.in, got)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Summarize sorted its argument")
		}
	}
}

func TestMedianFloat(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := MedianFloat(tt.in); got != tt.want {
			t.Errorf("MedianFloat(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
