package streams

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestRecordSlicesReuseBySizeClass(t *testing.T) {
	var p recordSlices
	s := p.GetRecords(100)
	if len(s) != 100 || cap(s) != 128 {
		t.Fatalf("GetRecords(100): len %d cap %d, want 100 and 128", len(s), cap(s))
	}
	first := &s[:cap(s)][0]
	p.PutRecords(s[:cap(s)])
	if got := p.GetRecords(65); &got[0] != first || len(got) != 65 {
		t.Fatalf("a batch of the same class did not get the kept slice back (len %d)", len(got))
	}
	if got := p.GetRecords(129); cap(got) != 256 || &got[:1][0] == first {
		t.Fatalf("a larger batch got cap %d (or the smaller slice)", cap(got))
	}
	// A slice the pool did not make (capacity not a power of two) is not kept.
	p.PutRecords(make([]kgo.Record, 3))
	if got := p.GetRecords(3); cap(got) != 4 {
		t.Fatalf("GetRecords(3) returned cap %d, want a fresh 4", cap(got))
	}
	if p.kept != 0 {
		t.Fatalf("kept %d bytes with nothing free", p.kept)
	}
}

func TestRecordSlicesKeepAtMostTheirBudget(t *testing.T) {
	var p recordSlices
	per := (1 << 12) * recordSize
	n := recordSlicesKept/per + 5
	for range n {
		p.PutRecords(make([]kgo.Record, 1<<12))
	}
	if p.kept > recordSlicesKept || len(p.free[12]) != recordSlicesKept/per {
		t.Fatalf("kept %d bytes in %d slices; budget %d", p.kept, len(p.free[12]), recordSlicesKept)
	}
}

func TestOutRecordsRecycleAcknowledgedRecords(t *testing.T) {
	p := newOutRecords()
	made := map[*kgo.Record]bool{}
	var all []*kgo.Record
	for range outChunk {
		r := p.get()
		if made[r] {
			t.Fatal("get handed out a record twice")
		}
		made[r] = true
		r.Topic, r.Value = "t", []byte("v")
		all = append(all, r)
	}
	for _, r := range all {
		p.put(r)
	}
	for range outChunk {
		r := p.get()
		if !made[r] {
			t.Fatal("a full chunk of acknowledged records was not reused")
		}
		if r.Topic != "" || r.Value != nil {
			t.Fatalf("recycled record not zeroed: %+v", r)
		}
		delete(made, r)
	}
	if r := p.get(); made[r] {
		t.Fatal("the pool handed out more records than it got back")
	}
}

func TestOutRecordsBoundWhatWaits(t *testing.T) {
	p := newOutRecords()
	for range (outChunks + 3) * outChunk {
		p.put(new(kgo.Record))
	}
	if len(p.full) != outChunks || len(p.give) != 0 {
		t.Fatalf("%d chunks wait (want at most %d), %d records in the open one", len(p.full), outChunks, len(p.give))
	}
}
