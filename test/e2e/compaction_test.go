package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/poste-io/poste/internal/testkit"
)

// readUpTo consumes topic (partition 0) from the start until it has read the record at offset
// last, and returns every record read before it.
func readUpTo(t *testing.T, addr, topic string, last int64) []*kgo.Record {
	t.Helper()
	cl := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s up to offset %d: %v", topic, last, err)
		}
		for _, r := range fs.Records() {
			if r.Offset == last {
				cl.Close()
				return out
			}
			out = append(out, r)
		}
	}
}

// TestCompaction: keyed records with tombstones on a compacted topic whose segments roll
// every few milliseconds; the background cleaner leaves exactly the latest value of each live
// key, removes the tombstoned keys once delete.retention.ms (0) passed, and keeps offsets.
func TestCompaction(t *testing.T) {
	b := testkit.StartBroker(t, map[string]string{"log.retention.check.interval.ms": "50"})
	cfg := func(s string) *string { return &s }
	createTopic(t, b.Addr, "compacted", 1, map[string]*string{
		"cleanup.policy":            cfg("compact"),
		"segment.ms":                cfg("100"),
		"min.cleanable.dirty.ratio": cfg("0.01"),
		"delete.retention.ms":       cfg("0"),
		"file.delete.delay.ms":      cfg("0"),
	})
	cl := client(t, b.Addr)
	const keys, rounds = 20, 10
	offsets := map[string]int64{} // key → offset of its latest record
	for round := range rounds {
		var recs []*kgo.Record
		for k := range keys {
			r := &kgo.Record{Topic: "compacted", Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "v%d", round)}
			if round == rounds-1 && k < 5 {
				r.Value = nil // tombstone
			}
			recs = append(recs, r)
		}
		if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			offsets[string(r.Key)] = r.Offset
		}
	}
	end, err := cl.ProduceSync(ctxT(t), &kgo.Record{Topic: "compacted", Key: []byte("end"), Value: []byte("x")}).First()
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		got := readUpTo(t, b.Addr, "compacted", end.Offset)
		seen := map[string]int{}
		ok := true
		for _, r := range got {
			k := string(r.Key)
			seen[k]++
			if r.Offset != offsets[k] || r.Value == nil {
				ok = false // an old value or a tombstone not yet removed
			}
			if string(r.Value) != fmt.Sprintf("v%d", rounds-1) && r.Value != nil {
				ok = false
			}
		}
		for k := 5; k < keys; k++ {
			ok = ok && seen[fmt.Sprintf("k%d", k)] == 1
		}
		if ok && len(got) == keys-5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log not compacted after 30s: %d records before the end marker, want %d", len(got), keys-5)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
