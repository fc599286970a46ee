package testkit

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Send is the outcome of one produced record, as the producer saw it.
type Send struct {
	// Producer names the producing client; order is checked per producer.
	Producer  string
	Topic     string
	Partition int32
	Key       []byte
	// Value identifies the record: every value recorded in one History must be unique.
	Value []byte
	// Seq is the record's position in its producer's stream to this partition (0, 1, 2 …,
	// assigned in the order the records were handed to the client), or -1 when the record
	// takes no part in the order check.
	Seq int64
	// Offset is the acknowledged offset; ignored when Err is set.
	Offset int64
	// Err is why the record was not acknowledged (nil: acknowledged). A failed record may
	// still be in the log: the producer cannot know.
	Err  error
	Time time.Time
}

// Record is one record read by a consumer.
type Record struct {
	Consumer  string
	Topic     string
	Partition int32
	Offset    int64
	Value     []byte
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// Duplicate is a value read at more than one offset.
type Duplicate struct {
	Value   string
	Offsets []TopicPartitionOffset
}

// TopicPartitionOffset is a position in the log.
type TopicPartitionOffset struct {
	TopicPartition
	Offset int64
}

func (o TopicPartitionOffset) String() string {
	return fmt.Sprintf("%s@%d", o.TopicPartition, o.Offset)
}

// OrderViolation is a record of a producer stored after a later record of the same
// producer and partition.
type OrderViolation struct {
	TopicPartition
	Producer            string
	Offset, Seq         int64 // the record out of order
	PrevOffset, PrevSeq int64 // the earlier offset holding a higher sequence
}

// Disagreement is an offset at which two reads returned different values.
type Disagreement struct {
	TopicPartitionOffset
	// Values maps each distinct value to the consumers that read it there.
	Values map[string][]string
}

// Misplaced is an acknowledged record read at another offset than the one acknowledged.
type Misplaced struct {
	Value  string
	Acked  TopicPartitionOffset
	ReadAt TopicPartitionOffset
}

// Report is what History.Check found. Lost, Duplicates, OrderViolations, Disagreements,
// Misplaced and Unknown are anomalies; the counts describe the run.
type Report struct {
	Sent, Acked, Failed int
	// FailedButStored counts failed sends whose value was read: allowed, the producer could
	// not know the outcome.
	FailedButStored int
	// Read counts distinct offsets read, over every consumer.
	Read int
	// Lost lists acknowledged sends no consumer read.
	Lost []Send
	// Unseen counts, per consumer, the acknowledged values that consumer did not read
	// (meaningful when every consumer read to the end).
	Unseen          map[string]int
	Duplicates      []Duplicate
	OrderViolations []OrderViolation
	Disagreements   []Disagreement
	Misplaced       []Misplaced
	// Unknown lists reads of values never sent through this History.
	Unknown []Record
}

// OK reports whether the history shows no anomaly.
func (r *Report) OK() bool {
	return len(r.Lost) == 0 && len(r.Duplicates) == 0 && len(r.OrderViolations) == 0 &&
		len(r.Disagreements) == 0 && len(r.Misplaced) == 0 && len(r.Unknown) == 0
}

// String summarises the report with up to ten examples of each anomaly.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d, acked %d, failed %d (%d of them stored), offsets read %d; lost %d, duplicates %d, order violations %d, disagreements %d, misplaced %d, unknown %d",
		r.Sent, r.Acked, r.Failed, r.FailedButStored, r.Read, len(r.Lost), len(r.Duplicates),
		len(r.OrderViolations), len(r.Disagreements), len(r.Misplaced), len(r.Unknown))
	for c, n := range r.Unseen {
		if n > 0 {
			fmt.Fprintf(&b, "\n  consumer %s missed %d acknowledged values", c, n)
		}
	}
	const examples = 10
	for i, s := range r.Lost[:min(examples, len(r.Lost))] {
		fmt.Fprintf(&b, "\n  lost[%d]: %q acked at %s/%d@%d by %s at %s", i, s.Value, s.Topic, s.Partition, s.Offset,
			s.Producer, s.Time.Format("15:04:05.000"))
	}
	for i, d := range r.Duplicates[:min(examples, len(r.Duplicates))] {
		fmt.Fprintf(&b, "\n  duplicate[%d]: %q at %v", i, d.Value, d.Offsets)
	}
	for i, o := range r.OrderViolations[:min(examples, len(r.OrderViolations))] {
		fmt.Fprintf(&b, "\n  order[%d]: %s producer %s: seq %d at offset %d after seq %d at offset %d", i,
			o.TopicPartition, o.Producer, o.Seq, o.Offset, o.PrevSeq, o.PrevOffset)
	}
	for i, d := range r.Disagreements[:min(examples, len(r.Disagreements))] {
		fmt.Fprintf(&b, "\n  disagreement[%d]: %s: %v", i, d.TopicPartitionOffset, d.Values)
	}
	for i, m := range r.Misplaced[:min(examples, len(r.Misplaced))] {
		fmt.Fprintf(&b, "\n  misplaced[%d]: %q acked at %s, read at %s", i, m.Value, m.Acked, m.ReadAt)
	}
	for i, u := range r.Unknown[:min(examples, len(r.Unknown))] {
		fmt.Fprintf(&b, "\n  unknown[%d]: %q at %s/%d@%d read by %s", i, u.Value, u.Topic, u.Partition, u.Offset, u.Consumer)
	}
	return b.String()
}

// History records what producers sent and what consumers read during a test, and checks
// the two against each other: every acknowledged record is read, at its acknowledged
// offset, once; every producer's records are stored in the order it sent them; all
// consumers agree on the value at each offset.
//
// Values identify records, so each send must carry a distinct value. All methods may be
// called from any goroutine.
type History struct {
	mu struct {
		sync.Mutex
		sends map[string]*Send // by value
		order []string         // values in the order sends were recorded
		// reads: per partition, per offset, per value, the consumers that read it.
		reads map[TopicPartition]map[int64]map[string][]string
		// consumers that recorded at least one read, and what each read.
		consumers map[string]map[string]bool
		lastAck   map[TopicPartition]time.Time
		ackTimes  map[TopicPartition][]time.Time // in the order recorded
	}
}

// NewHistory returns an empty history.
func NewHistory() *History {
	h := &History{}
	h.mu.sends = make(map[string]*Send)
	h.mu.reads = make(map[TopicPartition]map[int64]map[string][]string)
	h.mu.consumers = make(map[string]map[string]bool)
	h.mu.lastAck = make(map[TopicPartition]time.Time)
	h.mu.ackTimes = make(map[TopicPartition][]time.Time)
	return h
}

// Sent records the outcome of one send. A second outcome for the same value replaces the
// first (a test may record a failure, then learn better).
func (h *History) Sent(s Send) {
	if s.Time.IsZero() {
		s.Time = time.Now()
	}
	s.Value = slices.Clone(s.Value)
	s.Key = slices.Clone(s.Key)
	v := string(s.Value)
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.mu.sends[v]; !ok {
		h.mu.order = append(h.mu.order, v)
	}
	h.mu.sends[v] = &s
	if s.Err == nil {
		tp := TopicPartition{s.Topic, s.Partition}
		if s.Time.After(h.mu.lastAck[tp]) {
			h.mu.lastAck[tp] = s.Time
		}
		h.mu.ackTimes[tp] = append(h.mu.ackTimes[tp], s.Time)
	}
}

// Read records one record read by a consumer. Reading the same record again (after a
// consumer's reset) is harmless.
func (h *History) Read(r Record) {
	tp := TopicPartition{r.Topic, r.Partition}
	v := string(r.Value)
	h.mu.Lock()
	defer h.mu.Unlock()
	byOff := h.mu.reads[tp]
	if byOff == nil {
		byOff = make(map[int64]map[string][]string)
		h.mu.reads[tp] = byOff
	}
	byVal := byOff[r.Offset]
	if byVal == nil {
		byVal = make(map[string][]string)
		byOff[r.Offset] = byVal
	}
	if !slices.Contains(byVal[v], r.Consumer) {
		byVal[v] = append(byVal[v], r.Consumer)
	}
	seen := h.mu.consumers[r.Consumer]
	if seen == nil {
		seen = make(map[string]bool)
		h.mu.consumers[r.Consumer] = seen
	}
	seen[v] = true
}

// LastAck returns when the latest acknowledgement for a partition was recorded (zero if
// none).
func (h *History) LastAck(tp TopicPartition) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.lastAck[tp]
}

// AckGap returns the longest time within [from, to] during which no record of the
// partition was acknowledged: how long producers to it saw it unavailable.
func (h *History) AckGap(tp TopicPartition, from, to time.Time) time.Duration {
	h.mu.Lock()
	ts := slices.Clone(h.mu.ackTimes[tp])
	h.mu.Unlock()
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	gap, prev := time.Duration(0), from
	for _, t := range ts {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			break
		}
		gap = max(gap, t.Sub(prev))
		prev = t
	}
	return max(gap, to.Sub(prev))
}

// Acked returns how many sends were acknowledged so far.
func (h *History) Acked() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.mu.sends {
		if s.Err == nil {
			n++
		}
	}
	return n
}

// Check compares the sends with the reads recorded so far.
func (h *History) Check() Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := Report{Unseen: make(map[string]int)}

	// Where each value was read, and the disagreements, partition by partition in offset
	// order so that the results are stable.
	readAt := make(map[string][]TopicPartitionOffset)
	tps := make([]TopicPartition, 0, len(h.mu.reads))
	for tp := range h.mu.reads {
		tps = append(tps, tp)
	}
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	for _, tp := range tps {
		byOff := h.mu.reads[tp]
		offs := make([]int64, 0, len(byOff))
		for o := range byOff {
			offs = append(offs, o)
		}
		slices.Sort(offs)
		// last sequence per producer, with its offset
		type pos struct{ seq, off int64 }
		last := make(map[string]pos)
		for _, o := range offs {
			byVal := byOff[o]
			r.Read++
			at := TopicPartitionOffset{tp, o}
			if len(byVal) > 1 {
				d := Disagreement{TopicPartitionOffset: at, Values: make(map[string][]string, len(byVal))}
				for v, cs := range byVal {
					d.Values[v] = slices.Sorted(slices.Values(cs))
				}
				r.Disagreements = append(r.Disagreements, d)
			}
			for _, v := range slices.Sorted(maps.Keys(byVal)) {
				firstRead := len(readAt[v]) == 0
				readAt[v] = append(readAt[v], at)
				s, ok := h.mu.sends[v]
				if !ok {
					r.Unknown = append(r.Unknown, Record{Consumer: byVal[v][0], Topic: tp.Topic, Partition: tp.Partition, Offset: o, Value: []byte(v)})
					continue
				}
				// Only the first copy takes part in the order check: a second copy is
				// reported as a duplicate, not again as disorder.
				if s.Seq < 0 || !firstRead {
					continue
				}
				if p, ok := last[s.Producer]; ok && s.Seq <= p.seq {
					r.OrderViolations = append(r.OrderViolations, OrderViolation{TopicPartition: tp, Producer: s.Producer,
						Offset: o, Seq: s.Seq, PrevOffset: p.off, PrevSeq: p.seq})
					continue
				}
				last[s.Producer] = pos{s.Seq, o}
			}
		}
	}

	for _, v := range h.mu.order {
		s := h.mu.sends[v]
		r.Sent++
		at := readAt[v]
		if len(at) > 1 {
			r.Duplicates = append(r.Duplicates, Duplicate{Value: v, Offsets: at})
		}
		if s.Err != nil {
			r.Failed++
			if len(at) > 0 {
				r.FailedButStored++
			}
			continue
		}
		r.Acked++
		if len(at) == 0 {
			r.Lost = append(r.Lost, *s)
			continue
		}
		acked := TopicPartitionOffset{TopicPartition{s.Topic, s.Partition}, s.Offset}
		if !slices.Contains(at, acked) {
			r.Misplaced = append(r.Misplaced, Misplaced{Value: v, Acked: acked, ReadAt: at[0]})
		}
		for c, seen := range h.mu.consumers {
			if !seen[v] {
				r.Unseen[c]++
			}
		}
	}
	// Values read at several offsets that were never sent are duplicates too.
	for _, v := range slices.Sorted(maps.Keys(readAt)) {
		if _, ok := h.mu.sends[v]; !ok && len(readAt[v]) > 1 {
			r.Duplicates = append(r.Duplicates, Duplicate{Value: v, Offsets: readAt[v]})
		}
	}
	return r
}
