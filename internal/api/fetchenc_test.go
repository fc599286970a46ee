package api

import (
	"bytes"
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	plog "github.com/poste-io/poste/internal/log"
	"github.com/poste-io/poste/internal/partition"
	"github.com/poste-io/poste/internal/vfs"
)

// rawBytes flattens a raw body by reading its file ranges.
func rawBytes(t *testing.T, r *Raw) []byte {
	var out []byte
	for _, c := range r.Chunks {
		if c.B != nil {
			out = append(out, c.B...)
			continue
		}
		b := make([]byte, c.File.N)
		if _, err := c.File.R.ReadAt(b, c.File.Off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	if len(out) != r.Size() {
		t.Fatalf("Size %d, bytes %d", r.Size(), len(out))
	}
	return out
}

// The hand-written fetch encoder must produce exactly what kmsg decodes, for every version served.
func TestEncodeFetchDecodesWithKmsg(t *testing.T) {
	fs := vfs.NewMem()
	f, err := fs.Create("/seg")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("0123456789"), 30)
	f.Write(payload)
	id := [16]byte{1, 2, 3}
	topics := []fetchTopic{
		{name: "a", id: id, parts: []fetchPart{
			{partition: 0, hw: 10, lso: 10, lso0: 0, records: plog.Slice{File: f, Pos: 5, Size: 100}},
			{partition: 1, errCode: 1, hw: -1, lso: -1, lso0: -1},
			{partition: 2, hw: 3, lso: 3, lso0: 1, committed: true, records: plog.Slice{File: f, Pos: 200, Size: 50},
				aborted: []partition.AbortedTxn{{ProducerID: 5, FirstOffset: 1, LastOffset: 2}, {ProducerID: 6, FirstOffset: 2, LastOffset: 9}}},
		}},
		{name: "b", id: [16]byte{9}, parts: []fetchPart{{partition: 7, hw: 0, lso: 0, lso0: 0}}},
	}
	for v := int16(4); v <= 16; v++ {
		raw := encodeFetch(v, 0, 0, topics)
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = v
		if err := resp.ReadFrom(rawBytes(t, raw)); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 3 {
			t.Fatalf("v%d: shape %+v", v, resp)
		}
		if v >= 13 && resp.Topics[0].TopicID != id {
			t.Fatalf("v%d: topic id", v)
		}
		if v < 13 && resp.Topics[0].Topic != "a" {
			t.Fatalf("v%d: topic name %q", v, resp.Topics[0].Topic)
		}
		p0 := resp.Topics[0].Partitions[0]
		if !bytes.Equal(p0.RecordBatches, payload[5:105]) || p0.HighWatermark != 10 {
			t.Fatalf("v%d: partition 0 %+v", v, p0)
		}
		p2 := resp.Topics[0].Partitions[2]
		if !bytes.Equal(p2.RecordBatches, payload[200:250]) || (v >= 5 && p2.LogStartOffset != 1) {
			t.Fatalf("v%d: partition 2 %+v", v, p2)
		}
		if p2.AbortedTransactions == nil || p0.AbortedTransactions != nil {
			t.Fatalf("v%d: aborted transactions null/empty mixed up", v)
		}
		if at := p2.AbortedTransactions; len(at) != 2 || at[0].ProducerID != 5 || at[0].FirstOffset != 1 ||
			at[1].ProducerID != 6 || at[1].FirstOffset != 2 {
			t.Fatalf("v%d: aborted transactions %+v", v, at)
		}
		if resp.Topics[0].Partitions[1].ErrorCode != 1 || resp.Topics[1].Partitions[0].Partition != 7 {
			t.Fatalf("v%d: %+v", v, resp.Topics)
		}
		if v >= 11 && p0.PreferredReadReplica != -1 {
			t.Fatalf("v%d: preferred read replica %d", v, p0.PreferredReadReplica)
		}
	}
	// Top-level error and session id.
	raw := encodeFetch(12, 70, 0, nil)
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = 12
	if err := resp.ReadFrom(rawBytes(t, raw)); err != nil || resp.ErrorCode != 70 {
		t.Fatalf("error response: %v %+v", err, resp)
	}
}
