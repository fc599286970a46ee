package testkit

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHistoryCheck(t *testing.T) {
	errTimeout := errors.New("timed out")
	// ack, fail and read build a history entry: producer p, partition 0 of topic "t".
	ack := func(p string, seq, off int64) Send {
		return Send{Producer: p, Topic: "t", Seq: seq, Offset: off, Value: []byte(val(p, seq))}
	}
	fail := func(p string, seq int64) Send {
		return Send{Producer: p, Topic: "t", Seq: seq, Offset: -1, Value: []byte(val(p, seq)), Err: errTimeout}
	}
	read := func(c string, off int64, v string) Record {
		return Record{Consumer: c, Topic: "t", Offset: off, Value: []byte(v)}
	}
	type want struct {
		lost, dups, order, disagree, misplaced, unknown int
		failedStored                                    int
		unseen                                          map[string]int
	}
	tests := []struct {
		name  string
		sends []Send
		reads []Record
		want  want
	}{
		{
			name:  "clean",
			sends: []Send{ack("a", 0, 0), ack("a", 1, 1), ack("b", 0, 2)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-1"), read("c1", 2, "b-0"),
				read("c2", 0, "a-0"), read("c2", 1, "a-1"), read("c2", 2, "b-0"), read("c2", 1, "a-1")},
		},
		{
			name:  "an acknowledged record nobody read is lost",
			sends: []Send{ack("a", 0, 0), ack("a", 1, 1)},
			reads: []Record{read("c1", 0, "a-0")},
			want:  want{lost: 1, unseen: map[string]int{}},
		},
		{
			name:  "a consumer that missed a record another read",
			sends: []Send{ack("a", 0, 0), ack("a", 1, 1)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-1"), read("c2", 0, "a-0")},
			want:  want{unseen: map[string]int{"c2": 1}},
		},
		{
			name:  "a failed send may or may not be stored",
			sends: []Send{ack("a", 0, 0), fail("a", 1), fail("a", 2)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-1")},
			want:  want{failedStored: 1},
		},
		{
			name:  "a value at two offsets is a duplicate",
			sends: []Send{ack("a", 0, 0), ack("a", 1, 1)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-1"), read("c1", 2, "a-1")},
			want:  want{dups: 1},
		},
		{
			name:  "a failed send stored twice is a duplicate",
			sends: []Send{fail("a", 0)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-0")},
			want:  want{dups: 1, failedStored: 1},
		},
		{
			name:  "sequences out of order for one producer",
			sends: []Send{ack("a", 0, 0), ack("a", 1, 2), ack("a", 2, 1), ack("b", 0, 3)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-2"), read("c1", 2, "a-1"), read("c1", 3, "b-0")},
			want:  want{order: 1},
		},
		{
			name: "producers interleave freely",
			sends: []Send{ack("a", 0, 0), ack("b", 0, 1), ack("a", 1, 2), ack("b", 1, 3),
				{Producer: "x", Topic: "t", Seq: -1, Offset: 4, Value: []byte("free")}},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "b-0"), read("c1", 2, "a-1"), read("c1", 3, "b-1"),
				read("c1", 4, "free")},
		},
		{
			name:  "two consumers disagree on an offset",
			sends: []Send{ack("a", 0, 0), fail("a", 1)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-1"), read("c2", 0, "a-0"), read("c2", 1, "zz")},
			want:  want{disagree: 1, unknown: 1, failedStored: 1},
		},
		{
			name:  "read at another offset than acknowledged",
			sends: []Send{ack("a", 0, 0), ack("a", 1, 5)},
			reads: []Record{read("c1", 0, "a-0"), read("c1", 1, "a-1")},
			want:  want{misplaced: 1},
		},
		{
			name:  "the same partition number of another topic is another partition",
			sends: []Send{ack("a", 0, 0), {Producer: "a", Topic: "u", Seq: 0, Offset: 0, Value: []byte("u-0")}},
			reads: []Record{read("c1", 0, "a-0"), {Consumer: "c1", Topic: "u", Offset: 0, Value: []byte("u-0")}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHistory()
			for _, s := range tc.sends {
				h.Sent(s)
			}
			for _, r := range tc.reads {
				h.Read(r)
			}
			rep := h.Check()
			got := want{lost: len(rep.Lost), dups: len(rep.Duplicates), order: len(rep.OrderViolations),
				disagree: len(rep.Disagreements), misplaced: len(rep.Misplaced), unknown: len(rep.Unknown),
				failedStored: rep.FailedButStored}
			w := tc.want
			if got.lost != w.lost || got.dups != w.dups || got.order != w.order || got.disagree != w.disagree ||
				got.misplaced != w.misplaced || got.unknown != w.unknown || got.failedStored != w.failedStored {
				t.Errorf("got %+v, want %+v\n%s", got, w, rep.String())
			}
			wantOK := w.lost+w.dups+w.order+w.disagree+w.misplaced+w.unknown == 0
			if rep.OK() != wantOK {
				t.Errorf("OK() = %v, want %v", rep.OK(), wantOK)
			}
			for c, n := range w.unseen {
				if rep.Unseen[c] != n {
					t.Errorf("consumer %s missed %d, want %d", c, rep.Unseen[c], n)
				}
			}
			if rep.Sent != len(tc.sends) {
				t.Errorf("Sent = %d, want %d", rep.Sent, len(tc.sends))
			}
		})
	}
}

func TestHistoryReportNamesAnomalies(t *testing.T) {
	h := NewHistory()
	h.Sent(Send{Producer: "a", Topic: "t", Partition: 3, Seq: 0, Offset: 7, Value: []byte("gone")})
	rep := h.Check()
	s := rep.String()
	for _, want := range []string{"lost 1", `"gone"`, "t/3@7"} {
		if !strings.Contains(s, want) {
			t.Errorf("report %q does not mention %q", s, want)
		}
	}
}

// TestHistoryConcurrent records from many goroutines at once (run with -race).
func TestHistoryConcurrent(t *testing.T) {
	h := NewHistory()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := string(rune('a' + g))
			for i := range int64(200) {
				off := int64(g)*1000 + i
				h.Sent(Send{Producer: p, Topic: "t", Seq: i, Offset: off, Value: []byte(val(p, i))})
				h.Read(Record{Consumer: "c", Topic: "t", Offset: off, Value: []byte(val(p, i))})
			}
		}()
	}
	wg.Wait()
	rep := h.Check()
	if !rep.OK() || rep.Acked != 1600 || rep.Read != 1600 {
		t.Fatalf("unexpected report: %s", rep.String())
	}
	if h.Acked() != 1600 {
		t.Fatalf("Acked() = %d", h.Acked())
	}
}

func val(p string, seq int64) string { return p + "-" + strconv.FormatInt(seq, 10) }

func TestHistoryAckGap(t *testing.T) {
	h := NewHistory()
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for i, d := range []time.Duration{0, time.Second, 5 * time.Second, 6 * time.Second} {
		h.Sent(Send{Topic: "t", Value: []byte{byte(i)}, Seq: -1, Time: at(d)})
	}
	h.Sent(Send{Topic: "t", Value: []byte("failed"), Seq: -1, Time: at(3 * time.Second), Err: errors.New("x")})
	h.Sent(Send{Topic: "u", Value: []byte("other"), Seq: -1, Time: at(3 * time.Second)})
	tp := TopicPartition{Topic: "t"}
	tests := []struct {
		from, to time.Duration
		want     time.Duration
	}{
		{0, 6 * time.Second, 4 * time.Second},
		{2 * time.Second, 6 * time.Second, 3 * time.Second},
		{5 * time.Second, 10 * time.Second, 4 * time.Second},
		{7 * time.Second, 8 * time.Second, time.Second},
	}
	for _, tc := range tests {
		if got := h.AckGap(tp, at(tc.from), at(tc.to)); got != tc.want {
			t.Errorf("AckGap(%v, %v) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}
